#!/usr/bin/env bash
# Reproduce benchmarks/RESULTS.md: both workloads, `tiny` (a generated 0.85 M-parameter Llama, 3 repeats) and `real`
# (SmolLM2-135M-Instruct on real Auto-J/GSM8K pairs and real RewardBench rows; needs the checkpoint packages and
# RMFLOW_SHARED_DATA, else it is reported as skipped). About 25 minutes on an idle 2-core machine; run it alone, as
# any other busy process changes the numbers. `--workloads tiny` runs one. Uses the project's .venv; installs the
# benchmark extra (a pinned TRL) into it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
make .venv/.installed >/dev/null
.venv/bin/python -c "import trl" 2>/dev/null || .venv/bin/pip install --quiet -e '.[bench]'
exec .venv/bin/python benchmarks/bench.py --out benchmarks/RESULTS.md "$@"

#!/usr/bin/env bash
# Reproduce benchmarks/RESULTS.md (about 6-8 minutes on 2 cores). Uses the project's .venv; installs the
# benchmark extra (a pinned TRL) into it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
make .venv/.installed >/dev/null
.venv/bin/python -c "import trl" 2>/dev/null || .venv/bin/pip install --quiet -e '.[bench]'
exec .venv/bin/python benchmarks/bench.py --out benchmarks/RESULTS.md "$@"

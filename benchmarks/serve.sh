#!/usr/bin/env bash
# Reproduce benchmarks/SERVING.md: `rmflow serve` against a one-request-at-a-time transformers server on the same
# model at 1, 8 and 32 concurrent clients (benchmarks/serve_load.py says how). About 5-10 minutes on an idle 2-core
# machine; run it alone. Uses the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
make .venv/.installed >/dev/null
exec .venv/bin/python benchmarks/serve_load.py --out benchmarks/SERVING.md "$@"

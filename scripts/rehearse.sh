#!/usr/bin/env bash
# The paper run rehearsed offline (README, "Rehearsing the paper run"): build the rehearsal hub, start the local
# one-node SLURM cluster, and run the paper DAG through the SLURM profile (CPU-sized overlay, the same sbatch path)
# against the hub with HF_HUB_OFFLINE=1, to rehearsal/results/leaderboard.csv.
#
#   scripts/rehearse.sh [SNAKEMAKE ARGS...]     (make rehearse; needs root and scripts/local-slurm.sh install)
#   REHEARSE_EXECUTOR=local scripts/rehearse.sh  the same DAG on the local executor (no SLURM, no root)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${REHEARSE_DIR:-$ROOT/rehearsal}
HUB=$WORK/hub
mkdir -p "$WORK"
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}  # this checkout's rmflow, as the workflow's jobs use
[ -f "$HUB/rehearsal-manifest.json" ] || python -m rmflow rehearsal-hub --out "$HUB"
export HF_HOME=$HUB HF_HUB_OFFLINE=1
CONFIGS=(config/config.yaml config/paper.yaml config/rehearsal.yaml)
if [ "${REHEARSE_EXECUTOR:-slurm}" = local ]; then
  PROFILE=$ROOT/profiles/local
else
  PROFILE=$WORK/profile
  python -m rmflow rehearsal-profile --source profiles/slurm --out "$PROFILE"
  SLURM_BASE=$(mktemp -d /tmp/rmflow-slurm-XXXX); chmod 755 "$SLURM_BASE"
  scripts/local-slurm.sh up "$SLURM_BASE"
  trap 'scripts/local-slurm.sh down "$SLURM_BASE" >/dev/null 2>&1 || true' EXIT
fi
# a hung snakemake ignores SIGTERM; -k ends it either way
timeout -k 30 "${REHEARSE_TIMEOUT:-7200}" python -m snakemake --profile "$PROFILE" all --snakefile "$ROOT/Snakefile" \
  --directory "$WORK" --configfile "${CONFIGS[@]/#/$ROOT/}" "$@"
python - "$WORK" <<'PY'
import json, sys
from pathlib import Path
import polars as pl
work = Path(sys.argv[1])
board = pl.read_csv(work / "results/leaderboard.csv")
runs = sorted((work / "results").glob("*/*/*/model/rmflow_run.json")) + sorted((work / "results/models").glob("*/*/rmflow_run.json"))
print(f"rehearsal: leaderboard.csv has {board.height} rows; {len(runs)} models recorded")
PY

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
[ -f "$HUB/rehearsal-manifest.json" ] || python -m rmflow rehearsal-hub --out "$HUB" --local-root "$WORK"
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
# the rehearsal's own check: a leaderboard row for every planned pair, every model citing a hub id and its commit
import json, sys
from pathlib import Path
import polars as pl
results = Path(sys.argv[1]) / "results"
board = pl.read_csv(results / "leaderboard.csv")
runs = sorted(p for p in results.rglob("rmflow_run.json") if "scratch" not in p.parts)
unpinned = [str(p) for p in runs if not any((r or {}).get("commit") for r in (
    json.loads(p.read_text()).get("hub") or {}).values() if isinstance(r, dict))]
print(f"rehearsal: {board.height} leaderboard rows ({board['Method'].n_unique()} methods), {len(runs)} models, "
      f"{len(runs) - len(unpinned)} citing a hub id and commit; published block: "
      f"{pl.read_csv(results / 'leaderboard_published.csv').height} rows")
sys.exit(f"no hub commit recorded in: {', '.join(unpinned)}" if unpinned else 0)
PY

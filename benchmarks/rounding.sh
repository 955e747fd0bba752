#!/usr/bin/env bash
# How far float rounding alone moves the default run's scores (benchmarks/ROUNDING.md). The default run's BT and
# ODIN models and what is built on them (ArmoRM's probes and gate on the BT backbone, the decision tree on ArmoRM),
# on both eval sets, trained three ways that differ only in float rounding:
#   separate  train.share_prompt false: every side of a pair in its own forward (rmflow before shared prompts)
#   shared    the default: each pair's prompt once, [prompt | chosen | rejected] under a block mask
#   onepass   share_prompt false and split_padding 1.0: one padded forward per micro-batch instead of split ones
# About 10 minutes on 2 cores. Usage: bash benchmarks/rounding.sh [WORK_DIR]   (default /tmp/rmflow-rounding)
set -euo pipefail
cd "$(dirname "$0")/.."
make .venv/.installed >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
WORK=${1:-/tmp/rmflow-rounding}
mkdir -p "$WORK"
TARGETS=$(for e in synthetic synthetic_v2; do for m in bt odin armo tree; do for b in tiny_llama tiny_gemma; do
  [ "$e/$m" = synthetic_v2/tree ] || echo "results/eval/$e/$m/$b/scores.json"; done; done; done)
printf 'train:\n  share_prompt: false\n' > "$WORK/separate.yaml"
printf 'train: {}\n' > "$WORK/shared.yaml"
printf 'train:\n  share_prompt: false\n  split_padding: 1.0\n' > "$WORK/onepass.yaml"
for variant in separate shared onepass; do
  echo "rounding: $variant -> $WORK/$variant (log $WORK/$variant.log)"
  # shellcheck disable=SC2086  # the targets are one word each
  snakemake $TARGETS --profile profiles/local --directory "$WORK/$variant" --snakefile "$PWD/Snakefile" \
    --configfile "$PWD/config/config.yaml" "$WORK/$variant.yaml" > "$WORK/$variant.log" 2>&1
done
python benchmarks/rounding.py "$WORK" --out benchmarks/ROUNDING.md

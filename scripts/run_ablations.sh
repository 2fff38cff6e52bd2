#!/usr/bin/env bash
# The landmark-stream ablation of the default model (docs/model_card.md): four short runs of the default recipe
# (configs/poster_v2_open_ferplus.yaml, 2 epochs instead of 10), one after the other, each resumable.
#   scripts/run_ablations.sh OUT_DIR [SHARED_DIR]       (SHARED_DIR holds data/ferplus, data/fer2013, weights/)
# Needs the stream weights in the cache (ferkit weights import ...), or give paths with --set.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/run_ablations.sh OUT_DIR [SHARED_DIR]}
shared=${2:-../shared}
common=(--set data.root="$shared/data/ferplus" --set data.options.aux_fer2013_root="$shared/data/fer2013"
        --set train.epochs=2)
declare -A variants=(
  [facemesh]=""
  [image_only]="--set model.options.landmark_stream=none --set model.options.cross_fusion=false --set model.options.landmark_weights=null"
  [mobilefacenet]="--set model.options.landmark_stream=mobilefacenet --set model.options.landmark_weights=mobilefacenet_ir"
  [random_init]="--set model.options.image_weights=null --set model.freeze=[] --set optim.lr_scales={}"
)
for name in facemesh image_only mobilefacenet random_init; do
  dir="$out/$name"
  if [ -f "$dir/last.pt" ]; then
    .venv/bin/ferkit train --resume "$dir" || true   # finished runs exit at once
  else
    # shellcheck disable=SC2086
    .venv/bin/ferkit train configs/poster_v2_open_ferplus.yaml --out "$dir" "${common[@]}" ${variants[$name]}
  fi
done

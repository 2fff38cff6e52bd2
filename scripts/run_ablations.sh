#!/usr/bin/env bash
# The stream ablation of the default model (docs/model_card.md): four runs of the default recipe
# (configs/poster_v2_open_ferplus.yaml, 2 epochs instead of 10 unless overridden), one after the other, each resumable.
#
#   scripts/run_ablations.sh OUT_DIR [SHARED_DIR] [--set KEY=VALUE ...]
#
# SHARED_DIR (default ../shared) holds data/ferplus, data/fer2013 and weights/ (the dlib .dat, the FaceMesh .tflite
# and cunjian_mobilefacenet_openvino/mobilefacenet.xml). Extra --set options go to every run, e.g. the model card's
# short budget: --set train.epochs=1 --set data.max_train_samples=8000. Prints each run's last validation line.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/run_ablations.sh OUT_DIR [SHARED_DIR] [--set KEY=VALUE ...]}
shift
shared=../shared
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then shared=$1; shift; fi
w="$shared/weights"
common=(--set data.root="$shared/data/ferplus" --set data.options.aux_fer2013_root="$shared/data/fer2013"
        --set train.epochs=2
        --set model.options.image_weights="$w/dlib_face_recognition_resnet_model_v1.dat"
        --set model.options.landmark_weights="$w/mediapipe_face_landmark.tflite" "$@")
declare -A variants=(
  [facemesh]=""
  [image_only]="--set model.options.landmark_stream=none --set model.options.cross_fusion=false --set model.options.landmark_weights=null"
  [mobilefacenet]="--set model.options.landmark_stream=mobilefacenet --set model.options.landmark_weights=$w/cunjian_mobilefacenet_openvino/mobilefacenet.xml"
  [random_init]="--set model.options.image_weights=null --set model.freeze=[] --set optim.lr_scales={}"
)
mkdir -p "$out"
for name in facemesh image_only random_init mobilefacenet; do
  dir="$out/$name"
  if [ -f "$dir/summary.json" ]; then
    :
  elif [ -f "$dir/last.pt" ]; then
    .venv/bin/ferkit train --resume "$dir" >>"$out/$name.log" 2>&1
  else
    # shellcheck disable=SC2086
    .venv/bin/ferkit train configs/poster_v2_open_ferplus.yaml --out "$dir" "${common[@]}" ${variants[$name]} \
      >"$out/$name.log" 2>&1
  fi
  echo "$name: $(grep -o 'val loss [0-9.]* acc [0-9.]*%' "$out/$name.log" | tail -1)"
done

#!/bin/bash
# make demo: the original suite's whole workflow, for real, on a synthetic motion dataset it generates,
# on the CPU, from scratch. Everything goes under OUT_DIR (default demo_output/).
#   bash scripts/run_demo.sh [OUT_DIR] [--quick]
# --quick: a few videos and one epoch (what `make test` runs); the accuracy then means nothing.
set -euo pipefail
USAGE="bash run_demo.sh [OUT_DIR] [--quick]"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT="demo_output"; QUICK=0
for arg in "$@"; do
    case "$arg" in --quick) QUICK=1 ;; -*) usage ;; *) OUT="$arg" ;; esac
done
OUT="$(abspath "$OUT")"
CONFIG="$ROOT/demo_config.yaml"
if [[ $QUICK == 1 ]]; then
    DATA_ARGS=(--videos_per_class 3 --test_videos_per_class 1 --frames 10 --size 48)
    OVERRIDES=(--n_epochs=1 --batch_size=8 --eval_interval=1 --inference_stride=4 --widen_factor=0.125 --num_workers=1)
else
    DATA_ARGS=(--videos_per_class 200 --test_videos_per_class 40 --frames 16 --size 64)
    OVERRIDES=()
fi
DATA="$OUT/data"; JPG="$DATA/jpg"; JSON="$DATA/json/ucf101_01.json"
START=$(date +%s)
stage() { echo; echo "=== [$(( $(date +%s) - START ))s] $* ==="; }

mkdir -p "$OUT"
# re-runs reuse a complete dataset made with the same options; results are always made afresh
rm -rf "$OUT/train" "$OUT/eval" "$OUT/export" "$OUT/predict.txt"

stage "1/7 synthetic motion dataset: 8 classes that only motion tells apart, as .avi videos (UCF101 layout)"
if [[ -f "$DATA/.done" && "$(cat "$DATA/.done")" == "${DATA_ARGS[*]}" ]]; then
    echo "reusing $DATA"
else
    rm -rf "$DATA"
    "$PYTHON" -m src.data.synthetic --out "$DATA" "${DATA_ARGS[@]}" --seed 0
fi

stage "2/7 frames, annotation JSON, dataset check"
"$PYTHON" "$ROOT/src/generate_video_jpgs.py" --video_path "$DATA/videos" --target_path "$JPG" --size 0 \
    --quality 90  # the demo recipe was measured on frames of quality 90
"$PYTHON" "$ROOT/src/generate_ucf101_json.py" --dir_path "$DATA/labels" --video_path "$JPG" --dst_dir_path "$DATA/json"
"$PYTHON" "$ROOT/check_dataset.py" --annotation_path "$JSON" --video_path "$JPG"
echo "${DATA_ARGS[*]}" > "$DATA/.done"

stage "3/7 train a ResNet3D-10 from scratch (scripts/run_standalone_train.sh, demo_config.yaml)"
bash "$ROOT/scripts/run_standalone_train.sh" 0 ucf101 "$JPG" "$JSON" "$OUT/train" none \
    --config_path="$CONFIG" "${OVERRIDES[@]}"

stage "4/7 evaluate best.ckpt on the held-out videos (scripts/run_eval.sh)"
bash "$ROOT/scripts/run_eval.sh" 0 ucf101 "$JPG" "$JSON" "$OUT/eval" "$OUT/train/best.ckpt" \
    --config_path="$CONFIG" "${OVERRIDES[@]}"

stage "5/7 export ONNX and MINDIR (each checked against the checkpoint), evaluate the ONNX model"
mkdir -p "$OUT/export"
for fmt in ONNX MINDIR; do
    "$PYTHON" "$ROOT/export.py" --config_path="$CONFIG" "${OVERRIDES[@]}" --ckpt_file="$OUT/train/best.ckpt" \
        --file_format=$fmt --batch_size=1 --file_name="$OUT/export/resnet3d"
done
(cd "$OUT/export" && bash "$ROOT/scripts/run_eval_onnx.sh" ucf101 "$JPG" "$JSON" "$OUT/export/resnet3d.onnx" \
    --config_path="$CONFIG" --result_path="$OUT/export" "${OVERRIDES[@]}")

stage "6/7 predict one held-out video (predict.py)"
VIDEO="$DATA/videos/$(head -n 1 "$DATA/labels/testlist01.txt" | tr -d '\r')"
"$PYTHON" "$ROOT/predict.py" --config_path="$CONFIG" "${OVERRIDES[@]}" --video="$VIDEO" \
    --ckpt_file="$OUT/train/best.ckpt" --labels="$JSON" | tee "$OUT/predict.txt"

stage "7/7 summary"
"$PYTHON" -m src.demo_summary --out "$OUT" --config_path="$CONFIG" --seconds $(( $(date +%s) - START ))

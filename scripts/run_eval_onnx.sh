#!/bin/bash
# Evaluate an exported ONNX model (onnxruntime) on the validation split; log to ./eval_onnx.log.
# Extra --key=value options go to eval_onnx.py (e.g. --device_target=GPU, --eval_batch_size=8).
set -euo pipefail
USAGE="bash run_eval_onnx.sh [ucf101|hmdb51] [VIDEO_PATH] [ANNOTATION_PATH] [ONNX_PATH] [--key=value ...]"
EXAMPLE="bash run_eval_onnx.sh ucf101 /path/ucf101/jpg /path/ucf101/json/ucf101_01.json /path/resnet3d.onnx"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 4 ]] && usage
DATASET="$1"
check_dataset "$DATASET"
VIDEO_PATH="$(abspath "$2")"; ANNOTATION_PATH="$(abspath "$3")"; ONNX_PATH="$(abspath "$4")"
shift 4
check_extra "$@"
check_data_paths
check_file ONNX_PATH "$ONNX_PATH"
LOG="$PWD/eval_onnx.log"

echo "dataset: $DATASET  onnx: $ONNX_PATH  log: $LOG"
# onnxruntime on the CPU unless --device_target=GPU is passed (later options win)
"$PYTHON" "$ROOT/eval_onnx.py" --config_path="$ROOT/${DATASET}_config.yaml" --device_target=CPU \
    --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" --onnx_path="$ONNX_PATH" "$@" 2>&1 | tee "$LOG"

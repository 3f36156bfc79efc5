#!/bin/bash
# Evaluate an exported ONNX model (onnxruntime) on the validation split; results and eval_onnx.log go to
# ./results/<dataset>/ (or --result_path).
# Extra --key=value options go to eval_onnx.py (e.g. --device_target=GPU, --eval_batch_size=8).
set -euo pipefail
USAGE="bash run_eval_onnx.sh [ucf101|hmdb51|NAME] [VIDEO_PATH] [ANNOTATION_PATH|none] [ONNX_PATH] [--key=value ...]"
EXAMPLE="bash run_eval_onnx.sh ucf101 /path/ucf101/jpg /path/ucf101/json/ucf101_01.json /path/resnet3d.onnx"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 4 ]] && usage
DATASET="$1"
check_dataset "$DATASET"
VIDEO_PATH="$(abspath "$2")"; ANNOTATION_PATH="$(annotation_arg "$3")"; ONNX_PATH="$(abspath "$4")"
shift 4
check_extra "$@"
check_data_paths
check_file ONNX_PATH "$ONNX_PATH"
RESULT_DIR="$PWD/results/$DATASET"  # eval_onnx.py's results and this log, unless --result_path is passed
for extra in "$@"; do [[ "$extra" == --result_path=* ]] && RESULT_DIR="$(abspath "${extra#--result_path=}")"; done
mkdir -p "$RESULT_DIR"; LOG="$RESULT_DIR/eval_onnx.log"

echo "dataset: $DATASET  onnx: $ONNX_PATH  log: $LOG"
"$PYTHON" "$ROOT/eval_onnx.py" --config_path="$CONFIG" --dataset="$DATASET" --result_path="$RESULT_DIR" \
    --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" --onnx_path="$ONNX_PATH" "$@" 2>&1 | tee "$LOG"

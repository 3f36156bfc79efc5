#!/bin/bash
# Evaluate an exported ONNX model (onnxruntime) on the validation split; log to ./eval_onnx.log.
#   bash scripts/run_eval_onnx.sh [ucf101|hmdb51] VIDEO_PATH ANNOTATION_PATH ONNX_PATH [--key=value ...]
# Extra --key=value options go to eval_onnx.py (e.g. --device_target=GPU, --eval_batch_size=8).
set -euo pipefail

usage() {
    echo "Usage: bash run_eval_onnx.sh [ucf101|hmdb51] [VIDEO_PATH] [ANNOTATION_PATH] [ONNX_PATH] [--key=value ...]" >&2
    echo "Example: bash run_eval_onnx.sh ucf101 /path/ucf101/jpg /path/ucf101/json/ucf101_01.json /path/resnet3d.onnx" >&2
    exit 1
}

[[ $# -lt 4 ]] && usage
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DATASET="$1"
case "$DATASET" in ucf101|hmdb51) ;; *) echo "error: dataset '$DATASET' is not ucf101 or hmdb51" >&2; usage ;; esac
abspath() { realpath -m -- "$1"; }
VIDEO_PATH="$(abspath "$2")"
ANNOTATION_PATH="$(abspath "$3")"
ONNX_PATH="$(abspath "$4")"
shift 4
for extra in "$@"; do
    [[ "$extra" == --*=* ]] || { echo "error: extra option '$extra' is not --key=value" >&2; usage; }
done
[[ -d "$VIDEO_PATH" ]] || { echo "error: VIDEO_PATH $VIDEO_PATH is not a directory" >&2; exit 1; }
[[ -f "$ANNOTATION_PATH" ]] || { echo "error: ANNOTATION_PATH $ANNOTATION_PATH not found" >&2; exit 1; }
[[ -f "$ONNX_PATH" ]] || { echo "error: ONNX_PATH $ONNX_PATH not found" >&2; exit 1; }
LOG="$PWD/eval_onnx.log"

echo "dataset: $DATASET  onnx: $ONNX_PATH  log: $LOG"
# onnxruntime on the CPU unless --device_target=GPU is passed (later options win)
"$PYTHON" "$ROOT/eval_onnx.py" --config_path="$ROOT/${DATASET}_config.yaml" --device_target=CPU \
    --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" --onnx_path="$ONNX_PATH" "$@" 2>&1 | tee "$LOG"

#!/bin/bash
# Evaluate a checkpoint (or a training result folder: its best.ckpt, else its latest checkpoint).
# Logs to RESULT_PATH/<dataset>_eval.log and the console.
set -euo pipefail
USAGE="bash run_eval.sh [DEVICE_ID] [ucf101|hmdb51] [VIDEO_PATH] [ANNOTATION_PATH] [RESULT_PATH] [INFERENCE_CKPT_PATH] [--key=value ...]"
EXAMPLE="bash run_eval.sh 0 ucf101 ~/dataset/ucf101/jpg/ ~/dataset/ucf101/json/ucf101_01.json ~/results/ ~/results/ucf101/best.ckpt"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 6 ]] && usage
take_device_dataset_paths "$@"
CKPT="$(abspath "$6")"
shift 6
check_extra "$@"
check_data_paths
[[ -e "$CKPT" ]] || fail "INFERENCE_CKPT_PATH $CKPT not found"
mkdir -p "$RESULT_PATH"
LOG="$RESULT_PATH/${DATASET}_eval.log"
export DEVICE_ID

echo "evaluating $CKPT on $DATASET; log: $LOG"
"$PYTHON" "$ROOT/eval.py" --config_path="$ROOT/${DATASET}_config.yaml" --device_id="$DEVICE_ID" \
    --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" --result_path="$RESULT_PATH" \
    --inference_ckpt_path="$CKPT" "$@" 2>&1 | tee "$LOG"

#!/bin/bash
# Evaluate a checkpoint (or a training result folder: its best.ckpt, else its latest checkpoint).
# eval.py appends its output to RESULT_PATH/<dataset>_eval.log (the config's dataset).
set -euo pipefail
USAGE="bash run_eval.sh [DEVICE_ID] [ucf101|hmdb51|NAME] [VIDEO_PATH] [ANNOTATION_PATH|none] [RESULT_PATH] [INFERENCE_CKPT_PATH] [--key=value ...]"
EXAMPLE="bash run_eval.sh 0 ucf101 ~/dataset/ucf101/jpg/ ~/dataset/ucf101/json/ucf101_01.json ~/results/ ~/results/ucf101/best.ckpt"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 6 ]] && usage
take_device_dataset_paths "$@"
CKPT="$(abspath "$6")"
shift 6
check_extra "$@"
check_data_paths
[[ -e "$CKPT" ]] || fail "INFERENCE_CKPT_PATH $CKPT not found"
export DEVICE_ID

echo "evaluating $CKPT on $DATASET; results and log in $RESULT_PATH"
exec "$PYTHON" "$ROOT/eval.py" --config_path="$CONFIG" --dataset="$DATASET" --device_id="$DEVICE_ID" \
    --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" --result_path="$RESULT_PATH" \
    --inference_ckpt_path="$CKPT" "$@"

#!/bin/bash
# Data-parallel training with MindSpore's msrun on any device (CPU, GPU, Ascend without a rank table).
# Rank 0 writes the checkpoints and logs; msrun's worker logs go to RESULT_PATH/msrun_logs/.
set -euo pipefail
USAGE="bash run_distribute_train_msrun.sh [DEVICE_NUM] [ucf101|hmdb51] [VIDEO_PATH] [ANNOTATION_PATH] [RESULT_PATH] [PRETRAIN_PATH|none] [--key=value ...]"
EXAMPLE="bash run_distribute_train_msrun.sh 2 ucf101 ~/dataset/ucf101/jpg/ ~/dataset/ucf101/json/ucf101_01.json ~/results/ucf101 none --device_target=CPU"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 6 ]] && usage
DEVICE_NUM="$1"; DATASET="$2"
[[ "$DEVICE_NUM" =~ ^[1-9][0-9]*$ ]] || fail "DEVICE_NUM '$DEVICE_NUM' is not a positive number"
check_dataset "$DATASET"
VIDEO_PATH="$(abspath "$3")"; ANNOTATION_PATH="$(abspath "$4")"; RESULT_PATH="$(abspath "$5")"
PRETRAIN="$(pretrain_arg "$6")"
shift 6
check_extra "$@"
check_data_paths
MSRUN="$(dirname "$PYTHON")/msrun"
[[ -x "$MSRUN" ]] || MSRUN="$(command -v msrun || true)"
[[ -n "$MSRUN" ]] || fail "msrun not found: it comes with the mindspore package (activate its environment)"
mkdir -p "$RESULT_PATH"
PORT="${MASTER_PORT:-$((8118 + RANDOM % 1000))}"
# msrun starts workers with the python on PATH: put ours first
export PATH="$(dirname "$PYTHON"):$PATH"

echo "training $DATASET on $DEVICE_NUM workers (msrun, port $PORT); logs: $RESULT_PATH/msrun_logs"
status=0
"$MSRUN" --worker_num="$DEVICE_NUM" --local_worker_num="$DEVICE_NUM" --master_port="$PORT" --join=True \
    --log_dir="$RESULT_PATH/msrun_logs" "$ROOT/train.py" --config_path="$ROOT/${DATASET}_config.yaml" \
    --run_distribute=True --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" \
    --result_path="$RESULT_PATH" "$PRETRAIN" "$@" || status=$?
tail -n 5 "$RESULT_PATH/msrun_logs/worker_0.log" 2>/dev/null || true
exit $status

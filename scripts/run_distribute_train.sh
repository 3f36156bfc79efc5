#!/bin/bash
# Data-parallel training on DEVICE_NUM Ascend devices of this host with an HCCL rank table, as the
# original: one process per device with RANK_SIZE / RANK_ID / DEVICE_ID set. Rank 0 writes the
# checkpoints and logs; each rank's console output goes to RESULT_PATH/rank_<i>/train.log.
set -euo pipefail
USAGE="bash run_distribute_train.sh [DEVICE_NUM] [RANK_TABLE_FILE] [ucf101|hmdb51] [VIDEO_PATH] [ANNOTATION_PATH] [RESULT_PATH] [PRETRAIN_PATH|none] [--key=value ...]"
EXAMPLE="bash run_distribute_train.sh 8 ~/hccl_8p.json ucf101 ~/dataset/ucf101/jpg/ ~/dataset/ucf101/json/ucf101_01.json ~/results/ucf101 ~/pretrain.ckpt"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 7 ]] && usage
DEVICE_NUM="$1"; DATASET="$3"
[[ "$DEVICE_NUM" =~ ^[1-9][0-9]*$ ]] || fail "DEVICE_NUM '$DEVICE_NUM' is not a positive number"
check_dataset "$DATASET"
RANK_TABLE_FILE="$(abspath "$2")"
VIDEO_PATH="$(abspath "$4")"; ANNOTATION_PATH="$(abspath "$5")"; RESULT_PATH="$(abspath "$6")"
PRETRAIN="$(pretrain_arg "$7")"
shift 7
check_extra "$@"
check_file RANK_TABLE_FILE "$RANK_TABLE_FILE"
check_data_paths
mkdir -p "$RESULT_PATH"
export RANK_SIZE="$DEVICE_NUM" RANK_TABLE_FILE

pids=()
for ((i = 0; i < DEVICE_NUM; i++)); do
    mkdir -p "$RESULT_PATH/rank_$i"
    echo "starting rank $i (device $i); log: $RESULT_PATH/rank_$i/train.log"
    DEVICE_ID=$i RANK_ID=$i "$PYTHON" "$ROOT/train.py" --config_path="$ROOT/${DATASET}_config.yaml" \
        --run_distribute=True --device_id=$i --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" \
        --result_path="$RESULT_PATH" "$PRETRAIN" "$@" > "$RESULT_PATH/rank_$i/train.log" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "error: rank $i failed, see $RESULT_PATH/rank_$i/train.log" >&2; status=1; }
done
tail -n 5 "$RESULT_PATH/rank_0/train.log"
exit $status

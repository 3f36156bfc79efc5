#!/bin/bash
# Train on one device. train.py appends its output to RESULT_PATH/train_<dataset>.log (the config's dataset).
# Extra --key=value options go to train.py (e.g. --device_target=CPU --resume=auto --config_path=...).
set -euo pipefail
USAGE="bash run_standalone_train.sh [DEVICE_ID] [ucf101|hmdb51|NAME] [VIDEO_PATH] [ANNOTATION_PATH|none] [RESULT_PATH] [PRETRAIN_PATH|none] [--key=value ...]"
EXAMPLE="bash run_standalone_train.sh 0 ucf101 ~/dataset/ucf101/jpg/ ~/dataset/ucf101/json/ucf101_01.json ~/results/ucf101 ~/pretrain_ckpt/pretrain.ckpt"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 6 ]] && usage
take_device_dataset_paths "$@"
PRETRAIN="$(pretrain_arg "$6")"
shift 6
check_extra "$@"
check_data_paths
export DEVICE_ID RANK_ID="$DEVICE_ID"

echo "training $DATASET on device $DEVICE_ID; results and log in $RESULT_PATH"
train_args "$@"
exec "$PYTHON" "$ROOT/train.py" --run_distribute=False --device_id="$DEVICE_ID" "${TRAIN_ARGS[@]}"

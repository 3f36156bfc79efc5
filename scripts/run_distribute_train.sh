#!/bin/bash
# Data-parallel training on Ascend devices with an HCCL rank table, as the original: one process per
# device of this host with RANK_SIZE / RANK_ID / DEVICE_ID set. The table may list several servers
# (run the script on each): this host is the server whose server_id is one of its addresses (or
# SERVER_ID), DEVICE_NUM must be its device count, RANK_ID is the table's rank_id and RANK_SIZE the
# table's device count. Global rank 0 writes the checkpoints and logs; each rank's console output goes
# to RESULT_PATH/rank_<rank_id>/train.log. DRY_RUN=1 prints each rank's command without starting it.
# SIGTERM or SIGINT (Ctrl-C): every rank gets SIGTERM once and STOP_TIMEOUT seconds to finish (then
# SIGKILL; a second signal: SIGKILL at once); the launcher exits 128 + the first signal. The first
# rank to fail ends the job. The launcher itself is src/launch/run_rank_table.py.
set -euo pipefail
USAGE="bash run_distribute_train.sh [DEVICE_NUM] [RANK_TABLE_FILE] [ucf101|hmdb51|NAME] [VIDEO_PATH] [ANNOTATION_PATH|none] [RESULT_PATH] [PRETRAIN_PATH|none] [--key=value ...]"
ENV_HELP="SERVER_ID (this host's server_id in the table; default: found by its addresses) DRY_RUN=1 (print the commands only) STOP_TIMEOUT (120 s)"
EXAMPLE="bash run_distribute_train.sh 8 ~/hccl_8p.json ucf101 ~/dataset/ucf101/jpg/ ~/dataset/ucf101/json/ucf101_01.json ~/results/ucf101 ~/pretrain.ckpt"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 7 ]] && usage
DEVICE_NUM="$1"; DATASET="$3"
check_device_num "$DEVICE_NUM"
check_dataset "$DATASET"
RANK_TABLE_FILE="$(abspath "$2")"
VIDEO_PATH="$(abspath "$4")"; ANNOTATION_PATH="$(annotation_arg "$5")"; RESULT_PATH="$(abspath "$6")"
PRETRAIN="$(pretrain_arg "$7")"
shift 7
check_extra "$@"
check_file RANK_TABLE_FILE "$RANK_TABLE_FILE"
check_data_paths

train_args "$@"
launch run_rank_table "$DEVICE_NUM" "$RANK_TABLE_FILE" "$RESULT_PATH" "${TRAIN_ARGS[@]}"

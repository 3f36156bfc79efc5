#!/bin/bash
# Data-parallel training with MindSpore's msrun on any device (CPU, GPU, Ascend without a rank table),
# on one host or several. DEVICE_NUM is the number of workers on this host; for several hosts run the
# script once on each with the same NNODES, MASTER_ADDR (node 0's address) and MASTER_PORT, and that
# host's NODE_RANK. Global rank 0 (on node 0) writes the checkpoints and logs; the worker logs are in
# RESULT_PATH/msrun_logs/worker_<global rank>.log of each host.
# SIGTERM or SIGINT (Ctrl-C) to the launcher: every worker of this host gets SIGTERM and STOP_TIMEOUT
# seconds to finish (then SIGKILL; a second signal: SIGKILL at once); the launcher exits 128 + the first.
# The launcher itself is src/launch/run_msrun.py.
set -euo pipefail
USAGE="bash run_distribute_train_msrun.sh [DEVICE_NUM] [ucf101|hmdb51|NAME] [VIDEO_PATH] [ANNOTATION_PATH|none] [RESULT_PATH] [PRETRAIN_PATH|none] [--key=value ...]"
ENV_HELP="NNODES (hosts, 1) NODE_RANK (this host, 0) MASTER_ADDR (node 0, 127.0.0.1) MASTER_PORT (random on 1 host, else 8118) CLUSTER_TIME_OUT (600 s) STOP_TIMEOUT (120 s)"
EXAMPLE="bash run_distribute_train_msrun.sh 2 ucf101 ~/dataset/ucf101/jpg/ ~/dataset/ucf101/json/ucf101_01.json ~/results/ucf101 none --device_target=CPU"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -lt 6 ]] && usage
DEVICE_NUM="$1"; DATASET="$2"
check_device_num "$DEVICE_NUM"
check_dataset "$DATASET"
VIDEO_PATH="$(abspath "$3")"; ANNOTATION_PATH="$(annotation_arg "$4")"; RESULT_PATH="$(abspath "$5")"
PRETRAIN="$(pretrain_arg "$6")"
shift 6
check_extra "$@"
check_data_paths

train_args "$@"
launch run_msrun "$DEVICE_NUM" "$DATASET" "$RESULT_PATH" "${TRAIN_ARGS[@]}"

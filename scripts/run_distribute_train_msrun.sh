#!/bin/bash
# Data-parallel training with MindSpore's msrun on any device (CPU, GPU, Ascend without a rank table),
# on one host or several. DEVICE_NUM is the number of workers on this host; for several hosts run the
# script once on each with the same NNODES, MASTER_ADDR (node 0's address) and MASTER_PORT, and that
# host's NODE_RANK. Global rank 0 (on node 0) writes the checkpoints and logs; the worker logs are in
# RESULT_PATH/msrun_logs/worker_<global rank>.log of each host.
# SIGTERM or SIGINT (Ctrl-C) to the launcher: every worker of this host gets SIGTERM and STOP_TIMEOUT
# seconds to finish (then SIGKILL; a second signal: SIGKILL at once); the launcher exits 128 + the first.
set -euo pipefail
{  # read whole before it runs: a file edited or updated (git pull) during a run cannot change the run
USAGE="bash run_distribute_train_msrun.sh [DEVICE_NUM] [ucf101|hmdb51] [VIDEO_PATH] [ANNOTATION_PATH] [RESULT_PATH] [PRETRAIN_PATH|none] [--key=value ...]"
ENV_HELP="NNODES (hosts, 1) NODE_RANK (this host, 0) MASTER_ADDR (node 0, 127.0.0.1) MASTER_PORT (random on 1 host, else 8118) CLUSTER_TIME_OUT (600 s) STOP_TIMEOUT (120 s)"
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

# the cluster, from the environment
NNODES="${NNODES:-1}"; NODE_RANK="${NODE_RANK:-0}"; MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
[[ "$NNODES" =~ ^[1-9][0-9]*$ ]] || fail "NNODES '$NNODES' is not a positive number (the number of hosts)"
[[ "$NODE_RANK" =~ ^(0|[1-9][0-9]*)$ ]] && ((NODE_RANK < NNODES)) ||
    fail "NODE_RANK '$NODE_RANK' is not a number from 0 to $((NNODES - 1)) (NNODES=$NNODES): give each host its own"
[[ -n "$MASTER_ADDR" ]] && getent ahosts "$MASTER_ADDR" > /dev/null ||
    fail "MASTER_ADDR '$MASTER_ADDR' is not an address or a known host name: give node 0's address"
MASTER_IP="$(getent ahosts "$MASTER_ADDR" | awk 'NR == 1 {print $1}')"
if ((NODE_RANK == 0)) && command -v ip > /dev/null && ! ip route get "$MASTER_IP" 2>/dev/null | grep -q '^local '; then
    fail "MASTER_ADDR $MASTER_ADDR is not an address of this host, but node 0 (NODE_RANK=0) runs msrun's scheduler" \
        "there: set MASTER_ADDR to this host's address on every node"
fi
# one host: a random port, so that concurrent jobs do not collide; several: msrun's default, the same on all
PORT="${MASTER_PORT:-$( ((NNODES == 1)) && echo $((8118 + RANDOM % 1000)) || echo 8118)}"
[[ "$PORT" =~ ^[1-9][0-9]*$ ]] && ((PORT <= 65535)) || fail "MASTER_PORT '$PORT' is not a port number (1-65535)"
CLUSTER_TIME_OUT="${CLUSTER_TIME_OUT:-600}"
[[ "$CLUSTER_TIME_OUT" =~ ^[1-9][0-9]*$ ]] ||
    fail "CLUSTER_TIME_OUT '$CLUSTER_TIME_OUT' is not a positive number of seconds (how long to wait for all hosts)"
check_stop_timeout
WORKER_NUM=$((DEVICE_NUM * NNODES))
FIRST_RANK=$((NODE_RANK * DEVICE_NUM))

LOG_DIR="$RESULT_PATH/msrun_logs"
mkdir -p "$LOG_DIR"
# msrun starts workers with the python on PATH: put ours first
export PATH="$(dirname "$PYTHON"):$PATH"

# msrun itself, with one change: node 0 runs the scheduler and no other node does. msrun starts one on
# every host that owns MASTER_ADDR, so nodes sharing a host (containers on the host network, a test)
# would each start one, and all but the first fail on the port and fail the job.
MSRUN_MAIN='
import sys
try:
    from mindspore.parallel.cluster.process_entity import _api
    from mindspore.parallel.cluster.run import main
except ImportError as err:
    sys.exit(f"error: msrun not found ({err}): it comes with the mindspore package (activate its environment)")
node_rank = int(sys.argv.pop(1))
_api._is_local_ip = lambda _addr: node_rank == 0
sys.argv[0] = "msrun"
sys.exit(main())
'

# Every process of this job carries JOB_TAG in its environment (msrun passes its environment on), so
# the workers are found even after msrun is gone: they run in their own sessions, not in ours.
JOB_TAG="RESNET3D_LAUNCH=$$-$(date +%s%N)"
job_pids() { grep -l -z -x -F -- "$JOB_TAG" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true; }
proc_env() { tr '\0' '\n' < "/proc/$1/environ" 2>/dev/null | sed -n "s/^$2=//p" | head -n 1 || true; }
# a worker: started by msrun in a session of its own (its data-loader children share its group)
is_worker() { [[ "$(proc_env "$1" MS_ROLE)" == MS_WORKER && "$(ps -o pgid= -p "$1" 2>/dev/null | tr -d ' ')" == "$1" ]]; }

declare -A RANK_OF=()  # worker pid -> global rank, to name a rank that dies
remember_workers() {
    local pid
    for pid in $(job_pids); do
        [[ -z "${RANK_OF[$pid]:-}" ]] && is_worker "$pid" && RANK_OF[$pid]="$(proc_env "$pid" RANK_ID)"
    done
    return 0
}

# stop every process of the job: SIGTERM to the workers, STOP_TIMEOUT s for them, then the rest
STOP_GROUPS=()  # the workers' process groups, once they have been asked to stop
stop_job() {
    local pid workers=()
    for pid in $(job_pids); do is_worker "$pid" && workers+=("$pid") && STOP_GROUPS+=("-$pid"); done
    if ((${#workers[@]})); then
        kill -TERM "${workers[@]}" 2>/dev/null || true
        wait_gone "$STOP_TIMEOUT" "${workers[@]}" ||
            echo "launcher: workers still running ${STOP_TIMEOUT}s after SIGTERM: killing them" >&2
        kill -KILL -- "${STOP_GROUPS[@]}" 2>/dev/null || true
    fi
    local rest=($(job_pids))  # the scheduler, msrun's log tails, anything left
    ((${#rest[@]})) || return 0
    kill -TERM "${rest[@]}" 2>/dev/null || true
    wait_gone 5 "${rest[@]}" || kill -KILL "${rest[@]}" 2>/dev/null || true
}

kill_now() {
    echo "launcher: SIG$1 again: killing the workers now" >&2
    ((${#STOP_GROUPS[@]} == 0)) || kill -KILL -- "${STOP_GROUPS[@]}" 2>/dev/null || true
}

on_signal() {
    trap 'kill_now TERM' TERM
    trap 'kill_now INT' INT
    echo "launcher: SIG$1 received: SIGTERM to the workers of this host, waiting up to ${STOP_TIMEOUT}s" >&2
    # msrun first: once one rank exits it SIGKILLs the others, which may still be saving a checkpoint
    if [[ -n "$MSRUN_PID" ]]; then kill -TERM "$MSRUN_PID" 2>/dev/null || true; wait "$MSRUN_PID" 2>/dev/null || true; fi
    stop_job
    echo "launcher: stopped; worker logs in $LOG_DIR" >&2
    exit $((128 + $(signal_number "$1")))
}

# name each worker that msrun reports dead: its rank, how it ended, its log
report_dead_ranks() {
    local pid code rank how
    while read -r pid code; do
        rank="${RANK_OF[$pid]:-}"
        if ((code < 0)); then how="was killed by SIG$(kill -l $((-code)))"; else how="exited with code $code"; fi
        # train.py's own exit after a stop signal (it saves first), e.g. a stop agreed with another host
        ((code > 128 && code < 160)) && how+=" (stopped by SIG$(kill -l $((code - 128))))"
        if [[ -n "$rank" ]]; then
            sed "s/^/rank $rank | /" < <(tail -n 5 "$LOG_DIR/worker_$rank.log" 2>/dev/null) >&2
            echo "error: rank $rank (pid $pid) $how; its log: $LOG_DIR/worker_$rank.log" >&2
        else
            echo "error: a worker (pid $pid) $how; worker logs: $LOG_DIR" >&2
        fi
    done < <(sed -n 's/.*Worker process \([0-9]*\) exit with exception\. Error code: \(-\{0,1\}[0-9]*\)\..*/\1 \2/p' \
        "$LOG_DIR/msrun.log" 2>/dev/null)
}

echo "training $DATASET on $DEVICE_NUM worker(s) of $WORKER_NUM (node $NODE_RANK of $NNODES, ranks" \
    "$FIRST_RANK-$((FIRST_RANK + DEVICE_NUM - 1)); msrun master $MASTER_ADDR:$PORT); logs: $LOG_DIR"
# msrun's own messages (which worker failed) go to the console and to msrun.log
exec 3> >(tee "$LOG_DIR/msrun.log" >&2)
TEE_PID=$!
MSRUN_PID=""
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
# its own session: Ctrl-C reaches the launcher only (msrun's SIGINT handler would SIGKILL the workers)
setsid env "$JOB_TAG" "$PYTHON" -c "$MSRUN_MAIN" "$NODE_RANK" \
    --worker_num="$WORKER_NUM" --local_worker_num="$DEVICE_NUM" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" --cluster_time_out="$CLUSTER_TIME_OUT" --join=True \
    --log_dir="$LOG_DIR" "$ROOT/train.py" --config_path="$ROOT/${DATASET}_config.yaml" \
    --run_distribute=True --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" \
    --result_path="$RESULT_PATH" "$PRETRAIN" "$@" 2>&3 3>&- &
MSRUN_PID=$!

status=0
while :; do  # wake every second to note the workers' pids (a trapped signal interrupts the wait)
    remember_workers
    sleep 1 3>&- &
    done_pid=""
    code=0; wait -n -p done_pid "$MSRUN_PID" $! || code=$?
    [[ "$done_pid" == "$MSRUN_PID" ]] && { status=$code; break; }
done
trap - TERM INT
stop_job  # nothing is left after a normal end; after a failure, msrun's leftovers
exec 3>&-
wait "$TEE_PID" 2>/dev/null || true
if ((status == 0)); then tail -n 5 "$LOG_DIR/worker_$FIRST_RANK.log" 2>/dev/null || true; else report_dead_ranks; fi
exit $status
}

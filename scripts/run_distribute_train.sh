#!/bin/bash
# Data-parallel training on Ascend devices with an HCCL rank table, as the original: one process per
# device of this host with RANK_SIZE / RANK_ID / DEVICE_ID set. The table may list several servers
# (run the script on each): this host is the server whose server_id is one of its addresses (or
# SERVER_ID), DEVICE_NUM must be its device count, RANK_ID is the table's rank_id and RANK_SIZE the
# table's device count. Global rank 0 writes the checkpoints and logs; each rank's console output goes
# to RESULT_PATH/rank_<rank_id>/train.log. DRY_RUN=1 prints each rank's command without starting it.
# SIGTERM or SIGINT (Ctrl-C): every rank gets SIGTERM once and STOP_TIMEOUT seconds to finish (then
# SIGKILL; a second signal: SIGKILL at once); the launcher exits 128 + the first signal. The first
# rank to fail ends the job.
set -euo pipefail
{  # read whole before it runs: a file edited or updated (git pull) during a run cannot change the run
USAGE="bash run_distribute_train.sh [DEVICE_NUM] [RANK_TABLE_FILE] [ucf101|hmdb51] [VIDEO_PATH] [ANNOTATION_PATH] [RESULT_PATH] [PRETRAIN_PATH|none] [--key=value ...]"
ENV_HELP="SERVER_ID (this host's server_id in the table; default: found by its addresses) DRY_RUN=1 (print the commands only) STOP_TIMEOUT (120 s)"
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
check_stop_timeout
[[ "${DRY_RUN:-0}" =~ ^[01]$ ]] || fail "DRY_RUN '${DRY_RUN}' is not 0 or 1"

# this host's addresses, to find it in the table
HOST_ADDRS="$(hostname 2>/dev/null || true) $(hostname -I 2>/dev/null || true) \
$(ip -o addr show 2>/dev/null | awk '{sub("/.*", "", $4); print $4}' || true)"
# prints "RANK_SIZE n", "SERVER id", then "device_id rank_id" per device of this host; or one error line
TABLE="$("$PYTHON" - "$RANK_TABLE_FILE" "$DEVICE_NUM" "${SERVER_ID:-}" $HOST_ADDRS <<'EOF'
import json
import sys

path, device_num, server_id, addrs = sys.argv[1], int(sys.argv[2]), sys.argv[3], set(sys.argv[4:])
where = f"RANK_TABLE_FILE {path}"
try:
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    servers = table["server_list"]
    devices = {str(s["server_id"]): [(int(d["device_id"]), int(d["rank_id"])) for d in s["device"]] for s in servers}
except (OSError, ValueError, KeyError, TypeError) as err:
    sys.exit(f"error: {where} is not an HCCL rank table (server_list / server_id / device / device_id / rank_id): "
             f"{type(err).__name__}: {err}")
if not devices or len(devices) != len(servers):
    sys.exit(f"error: {where} lists no servers or a server_id twice")
if "server_count" in table and str(table["server_count"]) != str(len(servers)):
    sys.exit(f"error: {where} says server_count {table['server_count']} but lists {len(servers)} servers")
ranks = sorted(r for devs in devices.values() for _, r in devs)
if ranks != list(range(len(ranks))):
    sys.exit(f"error: {where}: the rank_ids are not 0 to {len(ranks) - 1}, each once")
names = ", ".join(devices)
if server_id:
    if server_id not in devices:
        sys.exit(f"error: SERVER_ID {server_id} is not a server_id of {where} ({names})")
else:
    mine = [s for s in devices if s in addrs]
    if len(mine) != 1:
        sys.exit(f"error: {'no' if not mine else 'more than one'} server_id of {where} ({names}) is an address of "
                 f"this host ({', '.join(sorted(addrs))}): run it on a host of the table, or set SERVER_ID")
    server_id = mine[0]
if device_num != len(devices[server_id]):
    sys.exit(f"error: DEVICE_NUM {device_num} does not match the {len(devices[server_id])} device(s) of server "
             f"{server_id} in {where}")
print("RANK_SIZE", len(ranks))
print("SERVER", server_id)
for device_id, rank_id in devices[server_id]:
    print(device_id, rank_id)
EOF
)" || exit 1
RANK_SIZE="$(sed -n 's/^RANK_SIZE //p' <<< "$TABLE")"
SERVER="$(sed -n 's/^SERVER //p' <<< "$TABLE")"
mapfile -t DEVICES < <(grep -E '^[0-9]+ [0-9]+$' <<< "$TABLE")
export RANK_SIZE RANK_TABLE_FILE

rank_command() {  # DEVICE_ID: sets CMD, the train.py command of that device
    CMD=("$PYTHON" "$ROOT/train.py" --config_path="$ROOT/${DATASET}_config.yaml" --run_distribute=True
        --device_id="$1" --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH"
        --result_path="$RESULT_PATH" "$PRETRAIN" "${EXTRA[@]}")
}
EXTRA=("$@")

echo "server $SERVER: $DEVICE_NUM device(s), ranks of $RANK_SIZE from $RANK_TABLE_FILE"
if [[ "${DRY_RUN:-0}" == 1 ]]; then
    for entry in "${DEVICES[@]}"; do
        read -r device rank <<< "$entry"
        rank_command "$device"
        echo "rank $rank (device $device): RANK_TABLE_FILE=$RANK_TABLE_FILE RANK_SIZE=$RANK_SIZE RANK_ID=$rank" \
            "DEVICE_ID=$device $(printf '%q ' "${CMD[@]}")> $RESULT_PATH/rank_$rank/train.log 2>&1"
    done
    exit 0
fi

declare -A RANK_OF=()  # pid -> rank
pids=()
stop_ranks() {  # SIGTERM to the ranks still running, STOP_TIMEOUT s for them, then SIGKILL
    local pid left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    ((${#left[@]})) || return 0
    kill -TERM "${left[@]}" 2>/dev/null || true
    wait_gone "$STOP_TIMEOUT" "${left[@]}" || {
        echo "launcher: ranks still running ${STOP_TIMEOUT}s after SIGTERM: killing them" >&2
        for pid in "${left[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done  # with its children
    }
}
kill_now() {
    local pid
    echo "launcher: SIG$1 again: killing the ranks now" >&2
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
on_signal() {
    trap 'kill_now TERM' TERM
    trap 'kill_now INT' INT
    echo "launcher: SIG$1 received: SIGTERM to every rank, waiting up to ${STOP_TIMEOUT}s" >&2
    stop_ranks
    echo "launcher: stopped; rank logs in $RESULT_PATH/rank_<i>/train.log" >&2
    exit $((128 + $(signal_number "$1")))
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

mkdir -p "$RESULT_PATH"
for entry in "${DEVICES[@]}"; do
    read -r device rank <<< "$entry"
    mkdir -p "$RESULT_PATH/rank_$rank"
    echo "starting rank $rank (device $device); log: $RESULT_PATH/rank_$rank/train.log"
    rank_command "$device"
    # a session of its own: a signal to our process group (Ctrl-C) reaches the rank once, through us
    DEVICE_ID=$device RANK_ID=$rank setsid "${CMD[@]}" > "$RESULT_PATH/rank_$rank/train.log" 2>&1 &
    pids+=($!); RANK_OF[$!]=$rank
done
# the first rank to fail ends the job (the others would wait for it in every collective)
status=0; running=("${pids[@]}")
while ((${#running[@]})); do
    done_pid=""; code=0
    wait -n -p done_pid "${running[@]}" || code=$?
    [[ -n "$done_pid" ]] || break
    running=($(printf '%s\n' "${running[@]}" | grep -v -x -F "$done_pid" || true))
    ((code == 0)) && continue
    rank="${RANK_OF[$done_pid]}"; log="$RESULT_PATH/rank_$rank/train.log"
    if ((code > 128)); then how="was killed by SIG$(kill -l $((code - 128)))"; else how="exited with code $code"; fi
    sed "s/^/rank $rank | /" < <(tail -n 5 "$log") >&2
    echo "error: rank $rank (pid $done_pid) $how; its log: $log" >&2
    ((${#running[@]})) && echo "launcher: stopping the other ranks" >&2
    stop_ranks
    status=1
    break
done
trap - TERM INT
((status == 0)) && tail -n 5 "$RESULT_PATH/rank_${RANK_OF[${pids[0]}]}/train.log"
exit $status
}

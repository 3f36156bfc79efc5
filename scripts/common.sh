# Shared by the launch scripts (sourced, not run). Each script sets USAGE before sourcing this.
# ROOT: the repository; PYTHON: $PYTHON, else the repo's .venv, else python3.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then  # exported: scripts called from scripts use the same one
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
    export PYTHON
fi
usage() {
    echo "Usage: $USAGE" >&2
    [[ -n "${ENV_HELP:-}" ]] && echo "Environment: $ENV_HELP" >&2
    [[ -n "${EXAMPLE:-}" ]] && echo "Example: $EXAMPLE" >&2
    exit 1
}

fail() { echo "error: $*" >&2; exit 1; }; abspath() { realpath -m -- "$1"; }
annotation_arg() { if [[ "$1" == none ]]; then echo ""; else abspath "$1"; fi; }  # none: <class>/<video> folder

# DATASET: ucf101, hmdb51 or your own name; CONFIG: its <name>_config.yaml, else ucf101_config.yaml (template)
check_dataset() {
    [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] || { echo "error: dataset '$1' is not a name of letters, digits, _ or -" >&2; usage; }
    CONFIG="$ROOT/$1_config.yaml"; [[ -f "$CONFIG" ]] || CONFIG="$ROOT/ucf101_config.yaml"
}

check_dir() { [[ -d "$2" ]] || fail "$1 $2 is not a directory"; }; check_file() { [[ -f "$2" ]] || fail "$1 $2 not found"; }

# extra arguments after the fixed ones are passed on; they must be --key=value
check_extra() {
    local extra
    for extra in "$@"; do
        [[ "$extra" == --*=* ]] || { echo "error: extra option '$extra' is not --key=value" >&2; usage; }
    done
}

# PRETRAIN_PATH: a checkpoint, or 'none' / '' to train from scratch
pretrain_arg() {
    if [[ -z "$1" || "$1" == none ]]; then echo "--pretrain_path="; else
        check_file PRETRAIN_PATH "$1"; echo "--pretrain_path=$(abspath "$1")"; fi
}

# TRAIN_ARGS: train.py's arguments in every training script, the seed's fixed ones, then the extra ones (which win)
train_args() { TRAIN_ARGS=(--config_path="$CONFIG" --dataset="$DATASET" --video_path="$VIDEO_PATH" --annotation_path="$ANNOTATION_PATH" --result_path="$RESULT_PATH" "$PRETRAIN" "$@"); }

# The original's leading arguments: DEVICE_ID [ucf101|hmdb51] VIDEO_PATH ANNOTATION_PATH|none RESULT_PATH; sets them.
take_device_dataset_paths() {
    DEVICE_ID="$1"; DATASET="$2"
    check_dataset "$DATASET"
    [[ "$DEVICE_ID" =~ ^[0-9]+$ ]] || fail "DEVICE_ID '$DEVICE_ID' is not a number"
    VIDEO_PATH="$(abspath "$3")"; RESULT_PATH="$(abspath "$5")"
    ANNOTATION_PATH="$(annotation_arg "$4")"
}

check_data_paths() { check_dir VIDEO_PATH "$VIDEO_PATH"; [[ -z "$ANNOTATION_PATH" ]] || check_file ANNOTATION_PATH "$ANNOTATION_PATH"; }

# --- the distributed launchers ---
check_device_num() { [[ "$1" =~ ^[1-9][0-9]*$ ]] || fail "DEVICE_NUM '$1' is not a positive number"; }

# launch MODULE ARGS...: the launcher src/launch/MODULE.py replaces the script (same pid: signals reach it);
# it stops the ranks on SIGTERM / SIGINT and names a rank that dies
launch() { PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m src.launch "$@"; }

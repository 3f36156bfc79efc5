#!/bin/bash
# Ascend-310 inference of an exported MINDIR: preprocess -> inference -> postprocess (acc.log).
#   bash scripts/run_infer_310.sh MINDIR_PATH [ucf101|hmdb51|NAME] VIDEO_PATH ANNOTATION_PATH [NEED_PREPROCESS] [DEVICE_ID]
#        [--backend=ascend310|lite-python|mindir-python] [--key=value ...]
# Backends (INFER_BACKEND=... works too), all on the same .bin files with the same result files:
#   ascend310      the C++ program ascend310_infer (MindSpore Lite C++ API; needs LITE_HOME and ASCEND_HOME)
#   lite-python    MindSpore Lite's Python API (python -m src.deploy.lite; needs the mindspore_lite wheel)
#   mindir-python  MindSpore's own Python API on the CPU (python -m src.deploy.mindir_python; no Ascend needed)
# Outputs in the current directory: preprocess_Result/, result_Files/, time_Result/ (timed backends), infer.log,
# acc.log; a failed step is told once and leaves no empty folder.
# The steps run in src/launch/run_infer310.py; this script checks its arguments.
set -euo pipefail
USAGE="bash run_infer_310.sh [MINDIR_PATH] [ucf101|hmdb51|NAME] [VIDEO_PATH] [ANNOTATION_PATH] [NEED_PREPROCESS] [DEVICE_ID] [--backend=ascend310|lite-python|mindir-python] [--key=value ...]"
EXAMPLE="bash run_infer_310.sh resnet3d.mindir ucf101 /path/ucf101/jpg /path/ucf101/json/ucf101_01.json y 0
NEED_PREPROCESS: y (default) or n (reuse ./preprocess_Result); DEVICE_ID: default \$DEVICE_ID or 0."
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BACKEND="${INFER_BACKEND:-ascend310}"
POSITIONAL=()
EXTRA=()
for arg in "$@"; do
    case "$arg" in
        --backend=*) BACKEND="${arg#--backend=}" ;;
        --*=*) EXTRA+=("$arg") ;;
        *) POSITIONAL+=("$arg") ;;
    esac
done
[[ ${#POSITIONAL[@]} -lt 4 || ${#POSITIONAL[@]} -gt 6 ]] && usage
MODEL="$(abspath "${POSITIONAL[0]}")"
DATASET="${POSITIONAL[1]}"
VIDEO_PATH="$(abspath "${POSITIONAL[2]}")"
ANNOTATION_PATH="$(abspath "${POSITIONAL[3]}")"
NEED_PREPROCESS="${POSITIONAL[4]:-y}"
DEVICE_ID="${POSITIONAL[5]:-${DEVICE_ID:-0}}"
check_dataset "$DATASET"  # sets CONFIG
case "$NEED_PREPROCESS" in y|n) ;; *) echo "error: NEED_PREPROCESS '$NEED_PREPROCESS' is not y or n" >&2; usage ;; esac
case "$BACKEND" in ascend310|lite-python|mindir-python) ;; *) echo "error: backend '$BACKEND' is not ascend310, lite-python or mindir-python" >&2; usage ;; esac
[[ "$DEVICE_ID" =~ ^[0-9]+$ ]] || { echo "error: DEVICE_ID '$DEVICE_ID' is not a number" >&2; usage; }
check_file MINDIR_PATH "$MODEL"
if [[ "$NEED_PREPROCESS" == y ]]; then
    check_dir VIDEO_PATH "$VIDEO_PATH"
    check_file ANNOTATION_PATH "$ANNOTATION_PATH"
fi

launch run_infer310 "$MODEL" "$DATASET" "$CONFIG" "$VIDEO_PATH" "$ANNOTATION_PATH" "$NEED_PREPROCESS" "$DEVICE_ID" \
    "$BACKEND" "${EXTRA[@]}"

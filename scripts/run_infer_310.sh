#!/bin/bash
# Ascend-310 inference of an exported MINDIR: preprocess -> inference -> postprocess (acc.log).
#   bash scripts/run_infer_310.sh MINDIR_PATH [ucf101|hmdb51|NAME] VIDEO_PATH ANNOTATION_PATH [NEED_PREPROCESS] [DEVICE_ID]
#        [--backend=ascend310|lite-python|mindir-python] [--key=value ...]
# Backends (INFER_BACKEND=... works too), all on the same .bin files with the same result files:
#   ascend310      the C++ program ascend310_infer (MindSpore Lite C++ API; needs LITE_HOME and ASCEND_HOME)
#   lite-python    MindSpore Lite's Python API (python -m src.deploy.lite; needs the mindspore_lite wheel)
#   mindir-python  MindSpore's own Python API on the CPU (python -m src.deploy.mindir_python; no Ascend needed)
# Outputs in the current directory: preprocess_Result/, result_Files/, time_Result/, infer.log, acc.log.
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
check_dataset "$DATASET"
case "$NEED_PREPROCESS" in y|n) ;; *) echo "error: NEED_PREPROCESS '$NEED_PREPROCESS' is not y or n" >&2; usage ;; esac
case "$BACKEND" in ascend310|lite-python|mindir-python) ;; *) echo "error: backend '$BACKEND' is not ascend310, lite-python or mindir-python" >&2; usage ;; esac
[[ "$DEVICE_ID" =~ ^[0-9]+$ ]] || { echo "error: DEVICE_ID '$DEVICE_ID' is not a number" >&2; usage; }
check_file MINDIR_PATH "$MODEL"
if [[ "$NEED_PREPROCESS" == y ]]; then
    check_dir VIDEO_PATH "$VIDEO_PATH"
    check_file ANNOTATION_PATH "$ANNOTATION_PATH"
fi
# CONFIG: set by check_dataset
WORK="$PWD"
if [[ "$NEED_PREPROCESS" == n && ! -d "$WORK/preprocess_Result/data" ]]; then
    fail "$WORK/preprocess_Result/data missing: run with NEED_PREPROCESS=y"
fi
echo "mindir: $MODEL  dataset: $DATASET  video path: $VIDEO_PATH  annotation: $ANNOTATION_PATH"
echo "need preprocess: $NEED_PREPROCESS  device id: $DEVICE_ID  backend: $BACKEND"

# The backend must be usable before the (long) preprocessing starts.
if [[ "$BACKEND" == ascend310 ]]; then
    echo "building ascend310_infer (log: $WORK/build.log)"
    if ! (cd "$ROOT/ascend310_infer" && bash build.sh > "$WORK/build.log" 2>&1); then
        cat "$WORK/build.log" >&2
        fail "building ascend310_infer failed (see above); without an Ascend 310 use --backend=mindir-python"
    fi
elif [[ "$BACKEND" == lite-python ]]; then
    (cd "$ROOT" && "$PYTHON" -m src.deploy.lite --check > /dev/null) || exit 2  # it printed the error line
fi

if [[ "$NEED_PREPROCESS" == y ]]; then
    echo "preprocessing -> $WORK/preprocess_Result"
    rm -rf "$WORK/preprocess_Result"
    "$PYTHON" "$ROOT/preprocess.py" --config_path="$CONFIG" --dataset="$DATASET" --mindir_path="$MODEL" \
        --video_path="$VIDEO_PATH" \
        --annotation_path="$ANNOTATION_PATH" --output_path="$WORK/preprocess_Result" "${EXTRA[@]}"
fi
[[ -d "$WORK/preprocess_Result/data" ]] || fail "$WORK/preprocess_Result/data missing: run with NEED_PREPROCESS=y"

rm -rf "$WORK/result_Files" "$WORK/time_Result"
mkdir -p "$WORK/result_Files" "$WORK/time_Result"
IO_ARGS=(--mindir_path="$MODEL" --dataset_path="$WORK/preprocess_Result/data" --result_path="$WORK/result_Files"
         --time_path="$WORK/time_Result" --device_id="$DEVICE_ID")
echo "inference ($BACKEND) -> $WORK/result_Files (log: $WORK/infer.log)"
case "$BACKEND" in
    ascend310)
        # MindSpore Lite loads its Ascend plugins and MINDIR converter libraries from these folders
        LITE_HOME="$(abspath "$LITE_HOME")"
        export LD_LIBRARY_PATH="$LITE_HOME/runtime/lib:$LITE_HOME/runtime/third_party/dnnl:$LITE_HOME/tools/converter/lib:${LD_LIBRARY_PATH:-}"
        if [[ -d "${ASCEND_HOME:-/usr/local/Ascend}/ascend-toolkit" ]]; then
            A="${ASCEND_HOME:-/usr/local/Ascend}"
            export LD_LIBRARY_PATH="$A/ascend-toolkit/latest/lib64:$A/driver/lib64:$LD_LIBRARY_PATH"
        fi
        RUN=("$ROOT/ascend310_infer/out/main" "${IO_ARGS[@]}") ;;
    lite-python)
        RUN=("$PYTHON" -m src.deploy.lite "${IO_ARGS[@]}") ;;
    mindir-python)  # no timing file: a CPU run says nothing about a 310
        RUN=("$PYTHON" -m src.deploy.mindir_python --mindir_path="$MODEL" --dataset_path="$WORK/preprocess_Result/data"
             --result_path="$WORK/result_Files" --device_id="$DEVICE_ID") ;;
esac
(cd "$WORK" && PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "${RUN[@]}" > "$WORK/infer.log" 2>&1) \
    || { tail -n 20 "$WORK/infer.log" >&2; fail "inference failed, see $WORK/infer.log"; }

"$PYTHON" "$ROOT/postprocess.py" --config_path="$CONFIG" --dataset="$DATASET" --mindir_path="$MODEL" \
    --pre_path="$WORK/preprocess_Result" \
    --result_dir="$WORK/result_Files" "${EXTRA[@]}" 2>&1 | tee "$WORK/acc.log"

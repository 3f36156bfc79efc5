#!/bin/bash
# Build ./out/main (Ascend-310 inference with the MindSpore Lite C++ API). Needs: the Ascend toolkit
# (ASCEND_HOME, default /usr/local/Ascend), the MindSpore Lite cloud-inference package of the MindSpore
# release in use, unpacked at LITE_HOME (runtime/include/api/model.h, runtime/lib/libmindspore-lite.so),
# cmake and g++. Stops with one message naming everything missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ASCEND_HOME="${ASCEND_HOME:-/usr/local/Ascend}"
LITE_PACKAGE="mindspore-lite-<MindSpore version>-linux-<x64|aarch64>.tar.gz from the MindSpore Lite download page"
missing=()

[[ -d "$ASCEND_HOME" ]] || missing+=("Ascend toolkit: ASCEND_HOME=$ASCEND_HOME does not exist (install CANN or export ASCEND_HOME)")
if [[ -z "${LITE_HOME:-}" ]]; then
    missing+=("MindSpore Lite: LITE_HOME is not set (unpack $LITE_PACKAGE and export LITE_HOME=<its folder>)")
elif [[ ! -d "$LITE_HOME" ]]; then
    missing+=("MindSpore Lite: LITE_HOME=$LITE_HOME does not exist (unpack $LITE_PACKAGE there)")
else
    [[ -f "$LITE_HOME/runtime/include/api/model.h" ]] \
        || missing+=("MindSpore Lite C++ API headers: $LITE_HOME/runtime/include/api/model.h (LITE_HOME must be the unpacked package folder)")
    [[ -f "$LITE_HOME/runtime/lib/libmindspore-lite.so" ]] \
        || missing+=("MindSpore Lite library: $LITE_HOME/runtime/lib/libmindspore-lite.so")
fi
command -v cmake > /dev/null || missing+=("cmake")
command -v g++ > /dev/null || missing+=("g++")
if (( ${#missing[@]} )); then
    echo "error: cannot build ascend310_infer here; missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    echo "Without an Ascend 310 run: bash scripts/run_infer_310.sh ... --backend=mindir-python" >&2
    exit 1
fi

LITE_HOME="$(cd "$LITE_HOME" && pwd)"
rm -rf build out
mkdir -p build out
cd build
cmake .. -DLITE_HOME="$LITE_HOME"
make -j"$(nproc)"
[[ -x ../out/main ]] || { echo "error: build finished without out/main" >&2; exit 1; }
echo "built $(cd .. && pwd)/out/main"

#!/bin/bash
# Build ./out/main (Ascend-310 inference). Needs: the Ascend toolkit (ASCEND_HOME, default
# /usr/local/Ascend), a MindSpore package with the C++ API (include/api/model.h, lib/libmindspore.so),
# cmake, g++ and gflags. Stops with one message naming everything missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON="${PYTHON:-python3}"
ASCEND_HOME="${ASCEND_HOME:-/usr/local/Ascend}"
missing=()

[[ -d "$ASCEND_HOME" ]] || missing+=("Ascend toolkit: ASCEND_HOME=$ASCEND_HOME does not exist (install CANN or export ASCEND_HOME)")
MINDSPORE_PATH="${MINDSPORE_PATH:-$("$PYTHON" -c 'import os, mindspore; print(os.path.dirname(mindspore.__file__))' 2>/dev/null || true)}"
if [[ -z "$MINDSPORE_PATH" ]]; then
    missing+=("MindSpore: '$PYTHON -c \"import mindspore\"' failed (activate the environment or export MINDSPORE_PATH)")
else
    [[ -f "$MINDSPORE_PATH/include/api/model.h" ]] \
        || missing+=("MindSpore C++ API headers: $MINDSPORE_PATH/include/api/model.h (the CPU wheel has none: use the Ascend package)")
    [[ -f "$MINDSPORE_PATH/lib/libmindspore.so" ]] \
        || missing+=("MindSpore C++ library: $MINDSPORE_PATH/lib/libmindspore.so")
fi
command -v cmake > /dev/null || missing+=("cmake")
command -v g++ > /dev/null || missing+=("g++")
if (( ${#missing[@]} )); then
    echo "error: cannot build ascend310_infer here; missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    echo "Without an Ascend 310 run: bash scripts/run_infer_310.sh ... --backend=mindir-python" >&2
    exit 1
fi

if [[ -d "$ASCEND_HOME/ascend-toolkit" ]]; then
    export LD_LIBRARY_PATH="$ASCEND_HOME/ascend-toolkit/latest/lib64:$ASCEND_HOME/driver/lib64:${LD_LIBRARY_PATH:-}"
fi
rm -rf build out
mkdir -p build out
cd build
cmake .. -DMINDSPORE_PATH="$MINDSPORE_PATH"
make -j"$(nproc)"
[[ -x ../out/main ]] || { echo "error: build finished without out/main" >&2; exit 1; }
echo "built $(cd .. && pwd)/out/main"

#!/bin/bash
# make demo: the original suite's whole workflow, for real, on a synthetic motion dataset it generates,
# on the CPU, from scratch. Everything goes under OUT_DIR (default demo_output/).
#   bash scripts/run_demo.sh [OUT_DIR] [--quick]
# --quick: a few videos and one epoch (what `make test` runs); the accuracy then means nothing.
# The eight stages run in src/launch/run_demo.py.
set -euo pipefail
USAGE="bash run_demo.sh [OUT_DIR] [--quick]"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT_DIRS=0
for arg in "$@"; do
    case "$arg" in --quick) ;; -*) usage ;; *) OUT_DIRS=$((OUT_DIRS + 1)) ;; esac
done
[[ $OUT_DIRS -le 1 ]] || usage
launch run_demo "$@"

#!/usr/bin/env bash
# VNN-COMP: run_instance.sh v1 CATEGORY ONNX_FILE VNNLIB_FILE RESULTS_FILE TIMEOUT
# Writes RESULTS_FILE: unsat, sat + counterexample, unknown, timeout or error.
set -uo pipefail
source "$(dirname "$0")/common.sh"
if [ "${1:-}" = "v1" ]; then shift; fi
if [ $# -ne 5 ]; then
    echo "usage: run_instance.sh v1 CATEGORY ONNX_FILE VNNLIB_FILE RESULTS_FILE TIMEOUT" >&2
    exit 1
fi
CATEGORY=$1 ONNX=$2 VNNLIB=$3 RESULTS=$4 TIMEOUT=$5
ensure_binary || { echo error > "$RESULTS"; exit 1; }
echo "running $CATEGORY: $ONNX $VNNLIB (timeout $TIMEOUT s)" >&2
# Exit codes 0/1/3 are verdicts and 2 an input error; the verdict is in the result file,
# which says error whenever beacons could not write one.
"$BEACONS" verify "$ONNX" "$VNNLIB" --timeout "$TIMEOUT" --result-file "$RESULTS"
if [ ! -s "$RESULTS" ]; then echo error > "$RESULTS"; fi
exit 0

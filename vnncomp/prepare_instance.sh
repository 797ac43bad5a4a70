#!/usr/bin/env bash
# VNN-COMP: prepare_instance.sh v1 CATEGORY ONNX_FILE VNNLIB_FILE
# Makes sure the binary exists and that the model and the property load (exit 0), so that
# run_instance.sh spends its time budget on verification. A file that does not load exits 1.
set -uo pipefail
source "$(dirname "$0")/common.sh"
if [ "${1:-}" = "v1" ]; then shift; fi
if [ $# -ne 3 ]; then
    echo "usage: prepare_instance.sh v1 CATEGORY ONNX_FILE VNNLIB_FILE" >&2
    exit 1
fi
CATEGORY=$1 ONNX=$2 VNNLIB=$3
ensure_binary || exit 1
# VNN-COMP ships some files gzipped.
for f in "$ONNX" "$VNNLIB"; do
    if [ ! -e "$f" ] && [ -e "$f.gz" ]; then gunzip -k "$f.gz" || exit 1; fi
done
echo "preparing $CATEGORY: $ONNX $VNNLIB" >&2
"$BEACONS" inspect "$ONNX" --spec "$VNNLIB" > /dev/null || exit 1
exit 0

#!/usr/bin/env bash
# The main command of README.md: builds beacons and runs it on the shipped example model.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust from your package manager or rustup first." >&2
  exit 2
fi
cargo build --release --locked --quiet
bin=target/release/beacons
model=models/dose_response.onnx

echo "\$ beacons inspect $model --spec specs/dose_response_range.vnnlib"
"$bin" inspect "$model" --spec specs/dose_response_range.vnnlib
echo
echo "\$ beacons eval $model --input models/dose_response_inputs.json"
"$bin" eval "$model" --input models/dose_response_inputs.json
echo
echo "\$ beacons bounds $model specs/dose_response_range.vnnlib --method crown"
"$bin" bounds "$model" specs/dose_response_range.vnnlib --method crown
echo
echo "\$ beacons verify $model specs/dose_response_range.vnnlib --timeout 60"
"$bin" verify "$model" specs/dose_response_range.vnnlib --timeout 60

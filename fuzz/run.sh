#!/usr/bin/env bash
# Runs one fuzz target for SECONDS, seeding its corpus from the project's own files.
#   bash fuzz/run.sh TARGET SECONDS
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target: onnx_import, vnnlib_parse, nnet_parse or reference_parse}
seconds=${2:-600}
bench=${BEACONS_BENCHMARKS:-$(pwd)/../shared/benchmarks}
corpus=fuzz/corpus/$target
mkdir -p "$corpus"
case $target in
  onnx_import) find tests/models models "$bench" -name '*.onnx' -size -200k -exec cp -n {} "$corpus"/ \; 2>/dev/null || true ;;
  vnnlib_parse) find specs tests "$bench/acasxu" -name '*.vnnlib' -exec cp -n {} "$corpus"/ \; 2>/dev/null || true ;;
  nnet_parse) find tests -name '*.nnet' -exec cp -n {} "$corpus"/ \; 2>/dev/null || true ;;
  reference_parse) find specs/references -name '*.toml' -exec cp -n {} "$corpus"/ \; 2>/dev/null || true ;;
esac
# Stable toolchain: no sanitizer (needs nightly); RUSTC_BOOTSTRAP lets cargo-fuzz pass its flags.
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" "$corpus" -- \
  -max_total_time="$seconds" -max_len=262144 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1

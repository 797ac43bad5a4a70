#!/usr/bin/env bash
# The test command of README.md: everything a fresh machine needs, then every check CI runs.
#   formatting, clippy (warnings are errors), and the whole test suite in release mode.
# Tests that read the shared VNN-COMP benchmarks find them through BEACONS_BENCHMARKS
# (default ../shared/benchmarks beside this checkout); without them those tests skip loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust from your package manager or rustup first." >&2
  exit 2
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

: "${BEACONS_BENCHMARKS:=$(pwd)/../shared/benchmarks}"
export BEACONS_BENCHMARKS
if [ -d "$BEACONS_BENCHMARKS" ]; then
  echo "benchmarks: $BEACONS_BENCHMARKS"
else
  echo "WARNING: no benchmarks at $BEACONS_BENCHMARKS: the tests that need them will skip" >&2
fi

# Headless Chromium renders the HTML report in tests/gate_cli.rs (Debian's package).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing chromium (for the HTML report test)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
    || echo "WARNING: could not install chromium: the HTML rendering test will skip" >&2
fi

# The official JUnit XSD and SARIF 2.1.0 JSON schema, with xmllint and Python's jsonschema,
# for tests/report_schemas.rs (cached in target/schemas; see the script).
echo "== fetching the report schemas"
export BEACONS_SCHEMAS="${BEACONS_SCHEMAS:-$(pwd)/target/schemas}"
bash scripts/fetch_schemas.sh

# NVRTC and ptxas from NVIDIA's pinned PyPI wheels, for tests/gpu_kernels_compile.rs: every
# CUDA kernel is compiled and assembled without a GPU (cached in target/cuda-tools).
echo "== fetching NVRTC and ptxas"
export BEACONS_CUDA_TOOLS="${BEACONS_CUDA_TOOLS:-$(pwd)/target/cuda-tools}"
bash scripts/fetch_cuda_tools.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --release --all-targets -- -D warnings"
cargo clippy --release --all-targets --locked -- -D warnings
echo "== cargo test --release"
cargo test --release --locked --all-targets

#!/usr/bin/env bash
# Fetches what tests/gpu_kernels_compile.rs needs to compile every CUDA kernel without a GPU:
# NVRTC (the run-time compiler the CUDA backend uses) and ptxas (to assemble the PTX for a real
# architecture), from NVIDIA's pinned, checksummed PyPI wheels; nothing is committed. Called by
# scripts/test.sh; safe to re-run (cached in $BEACONS_CUDA_TOOLS, default target/cuda-tools):
#   nvidia-cuda-nvrtc-cu12 12.9.86  nvidia/cuda_nvrtc/lib/libnvrtc.so.12 (+ its builtins)
#   nvidia-cuda-nvcc-cu12  12.9.86  nvidia/cuda_nvcc/bin/ptxas
# Without network or pip it warns and exits 0: the test then prints SKIPPED, unless
# BEACONS_REQUIRE_CUDA_TOOLS is set (CI), where it fails.
set -uo pipefail
cd "$(dirname "$0")/.."
dir="${BEACONS_CUDA_TOOLS:-$(pwd)/target/cuda-tools}"
mkdir -p "$dir"
VERSION=12.9.86
TAG=py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64
NVRTC_SHA=210cf05005a447e29214e9ce50851e83fc5f4358df8b453155d5e1918094dcb4
NVCC_SHA=5d6a0d32fdc7ea39917c20065614ae93add6f577d840233237ff08e9a38f58f0
NVRTC_LIB="$dir/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
PTXAS="$dir/nvidia/cuda_nvcc/bin/ptxas"

warn() { echo "WARNING: $*: the CUDA kernel compile test will skip" >&2; }

if [ "$(uname -m)" != x86_64 ] || [ "$(uname -s)" != Linux ]; then
  warn "the pinned wheels are for Linux x86_64"
  exit 0
fi

fetch() { # package, sha256, files to extract...
  local pkg=$1 sha=$2
  shift 2
  local wheel
  wheel="${pkg//-/_}-$VERSION-$TAG.whl"
  if ! python3 -m pip download --quiet --no-deps --only-binary :all: --platform manylinux2010_x86_64 \
      "$pkg==$VERSION" -d "$tmp" >/dev/null 2>&1; then
    warn "could not download $pkg $VERSION (pip)"
    return 1
  fi
  if [ "$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)" != "$sha" ]; then
    warn "$wheel does not have the pinned checksum"
    return 1
  fi
  python3 -m zipfile -e "$tmp/$wheel" "$tmp/x" && for f in "$@"; do
    mkdir -p "$dir/$(dirname "$f")" && cp "$tmp/x/$f" "$dir/$f"
  done
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$NVRTC_LIB" ]; then
  fetch nvidia-cuda-nvrtc-cu12 "$NVRTC_SHA" \
    nvidia/cuda_nvrtc/lib/libnvrtc.so.12 nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.12.9 \
    || rm -rf "$dir/nvidia/cuda_nvrtc"
fi
if [ ! -x "$PTXAS" ]; then
  fetch nvidia-cuda-nvcc-cu12 "$NVCC_SHA" nvidia/cuda_nvcc/bin/ptxas && chmod +x "$PTXAS" \
    || rm -rf "$dir/nvidia/cuda_nvcc"
fi
[ -f "$NVRTC_LIB" ] && [ -x "$PTXAS" ] && echo "cuda tools: $dir (NVRTC and ptxas $VERSION)"
exit 0

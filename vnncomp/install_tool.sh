#!/usr/bin/env bash
# VNN-COMP: install_tool.sh v1 — builds the release binary of beacons.
set -euo pipefail
source "$(dirname "$0")/common.sh"
(cd "$TOOL_DIR" && cargo build --release --locked --bin beacons)

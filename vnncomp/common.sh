# Shared by the VNN-COMP scripts: where the tool is and how to build it.
# The release binary is built once (cargo build --release) and reused.
TOOL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BEACONS="${BEACONS_BIN:-$TOOL_DIR/target/release/beacons}"

ensure_binary() {
    if [ ! -x "$BEACONS" ]; then
        (cd "$TOOL_DIR" && cargo build --release --locked --bin beacons) >&2 || return 1
    fi
}


#!/usr/bin/env bash
# The main command of README.md: builds beacons and runs the release gate over every shipped
# example model (specs/policies/*.toml), writing the reports to reports/<model>-<sha256>/.
# Exit 0 when every gate decided as expected (the sound models released, the planted-flaw
# model blocked), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust from your package manager or rustup first." >&2
  exit 2
fi
cargo build --release --locked --quiet
bin=target/release/beacons

# Expected decision per policy: the flawed model must be blocked, every other released.
expected() { case "$1" in *_flawed) echo 1 ;; *) echo 0 ;; esac; }

status=0
summary=""
for policy in specs/policies/*.toml; do
  name=$(basename "$policy" .toml)
  echo "\$ beacons gate --policy $policy"
  set +e
  "$bin" gate --policy "$policy"
  code=$?
  set -e
  want=$(expected "$name")
  case $code in 0) got="release allowed" ;; 1) got="BLOCKED" ;; 3) got="inconclusive" ;; *) got="error ($code)" ;; esac
  if [ "$code" = "$want" ]; then mark="as expected"; else mark="UNEXPECTED (wanted exit $want)"; status=1; fi
  summary+=$(printf '\n  %-22s %-16s %s' "$name" "$got" "$mark")
  echo
done
echo "release gate over the shipped examples:$summary"
echo "reports: reports/*/report.html (open in a browser), report.md, junit.xml, report.sarif"
exit $status

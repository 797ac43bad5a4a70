#!/usr/bin/env bash
# Fetches the official schemas the report tests validate against (tests/report_schemas.rs);
# they are not committed. Called by scripts/test.sh; safe to re-run (cached, checksummed).
#   junit-10.xsd      the Jenkins/xunit JUnit XSD (MIT), from the pytest 9.2.0 source
#                     distribution on PyPI (testing/example_scripts/junit-10.xsd)
#   sarif-2.1.0.json  the SARIF 2.1.0 JSON schema (MIT), from the npm package
#                     @microsoft/sarif-multitool-linux 5.7.0
# and the validators: xmllint (Debian libxml2-utils) and Python's jsonschema.
# Without network or tools it warns and exits 0: the tests then skip loudly, unless
# BEACONS_REQUIRE_SCHEMAS is set (CI), where they fail.
set -uo pipefail
cd "$(dirname "$0")/.."
dir="${BEACONS_SCHEMAS:-$(pwd)/target/schemas}"
mkdir -p "$dir"
JUNIT_SHA=a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6
SARIF_SHA=1c49a0f2b60444c71bb14878e21e0d882198eff4c539861b133093ad89ed798c

ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
warn() { echo "WARNING: $*: the report schema tests will skip" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! ok "$dir/junit-10.xsd" "$JUNIT_SHA"; then
  if python3 -m pip download --quiet --no-deps --no-binary :all: pytest==9.2.0 -d "$tmp" >/dev/null 2>&1 \
    && tar xzf "$tmp/pytest-9.2.0.tar.gz" -C "$tmp" pytest-9.2.0/testing/example_scripts/junit-10.xsd; then
    cp "$tmp/pytest-9.2.0/testing/example_scripts/junit-10.xsd" "$dir/junit-10.xsd"
  fi
  ok "$dir/junit-10.xsd" "$JUNIT_SHA" || { rm -f "$dir/junit-10.xsd"; warn "could not fetch junit-10.xsd (pip)"; }
fi

if ! ok "$dir/sarif-2.1.0.json" "$SARIF_SHA"; then
  if (cd "$tmp" && npm pack --silent @microsoft/sarif-multitool-linux@5.7.0 >/dev/null 2>&1) \
    && tar xzf "$tmp"/microsoft-sarif-multitool-linux-5.7.0.tgz -C "$tmp" package/sarif-2.1.0.json; then
    cp "$tmp/package/sarif-2.1.0.json" "$dir/sarif-2.1.0.json"
  fi
  ok "$dir/sarif-2.1.0.json" "$SARIF_SHA" || { rm -f "$dir/sarif-2.1.0.json"; warn "could not fetch sarif-2.1.0.json (npm)"; }
fi

if ! command -v xmllint >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libxml2-utils) >/dev/null 2>&1
fi
command -v xmllint >/dev/null 2>&1 || warn "xmllint is not installed (apt-get install libxml2-utils)"

if ! python3 -c "import jsonschema" >/dev/null 2>&1; then
  python3 -m pip install --quiet --user jsonschema >/dev/null 2>&1 \
    || python3 -m pip install --quiet --user --break-system-packages jsonschema >/dev/null 2>&1
fi
python3 -c "import jsonschema" >/dev/null 2>&1 || warn "Python's jsonschema is not installed (pip install jsonschema)"

echo "schemas: $dir ($(ls "$dir" | tr '\n' ' '))"

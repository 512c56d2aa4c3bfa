#!/usr/bin/env bash
# The project's test command: installs what the tests need, runs the fast unit suite (debug),
# then the model-level suite on the real weights (release, as numeric code is many times slower
# in debug builds). PISSA_REQUIRE_ASSETS=1 makes a missing asset a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PISSA_REQUIRE_ASSETS=1
echo "== unit tests (debug) =="
swift test --skip RealModelTests
echo "== model tests on real weights (release) =="
swift test -c release -Xswiftc -enable-testing --filter RealModelTests

#!/usr/bin/env bash
# Runs the fast unit suite (everything but RealModelTests, debug) under a sanitizer:
#
#   scripts/sanitize.sh address     # AddressSanitizer (+ LeakSanitizer), scratch path .build-asan
#   scripts/sanitize.sh thread      # ThreadSanitizer, scratch path .build-tsan
#
# Extra arguments go to `swift test` (e.g. `--filter FormatsTests`). The CLI tests run the
# sanitized `pissa` binary too. Under ThreadSanitizer OpenBLAS runs on one thread
# (OPENBLAS_NUM_THREADS=1): its own pthreads are not instrumented, so TSan would see their writes
# to our buffers without the synchronisation inside OpenBLAS; our own parallel code (`Parallel`,
# the lane pools, concurrent SVDs) still runs on several threads.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true
case "$kind" in
    address)
        scratch=.build-asan
        # Leaks are checked in the `pissa` processes the CLI tests start (whole program runs:
        # init, train, resume, tokenize, every malformed input) and by the fuzzers; not in the
        # test runner, where XCTest's and Foundation's objects stay alive until exit.
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:halt_on_error=1}
        export PISSA_CHILD_ASAN_OPTIONS=${PISSA_CHILD_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
        export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0}
        ;;
    thread)
        scratch=.build-tsan
        export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
        export OPENBLAS_NUM_THREADS=1
        ;;
    *) echo "usage: scripts/sanitize.sh address|thread [swift test arguments]" >&2; exit 2 ;;
esac
export SWIFT_BACKTRACE=enable=no   # let the sanitizer print the report
swift test --scratch-path "$scratch" -Xswiftc -sanitize="$kind" --skip RealModelTests "$@"

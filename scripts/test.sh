#!/usr/bin/env bash
# The project's test command: installs what the tests need, runs the fast unit suite (debug),
# the MPI suite (CLITests.MPITrainingTests: `mpirun -np 2|3` against one process, resume across
# rank counts, a killed rank), then the model-level suite on the real weights (release, as
# numeric code is many times slower in debug builds). PISSA_REQUIRE_ASSETS=1 makes a missing
# asset (or a missing mpirun) a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PISSA_REQUIRE_ASSETS=1
echo "== unit tests (debug) =="
swift test --skip RealModelTests --skip MPITrainingTests
echo "== MPI suite (debug): data-parallel training under mpirun --oversubscribe on this machine =="
mpi_start=$SECONDS
swift test --filter MPITrainingTests
echo "MPI suite took $((SECONDS - mpi_start)) s"
echo "== fuzz regression: every seed and kept crash input, then 20 s of fuzzing per target =="
fuzz_start=$SECONDS
scripts/fuzz.sh --build
for target in safetensors gguf config tokenizer jsonl; do
    scripts/fuzz.sh "$target" "${PISSA_FUZZ_SECONDS:-20}"   # exits non-zero on a crash
done
echo "fuzz regression took $((SECONDS - fuzz_start)) s"
echo "== model tests on real weights (release) =="
swift test -c release -Xswiftc -enable-testing --filter RealModelTests

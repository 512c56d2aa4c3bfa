#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/, release, -sanitize=fuzzer,address) if needed and runs one.
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags…]
#   TARGET: safetensors | gguf | config | tokenizer | jsonl     (scripts/fuzz.sh --build: build only)
#
# Seeds come from Fuzz/Corpus/TARGET (committed, never written); inputs the fuzzer finds go to
# .build-fuzz/corpus/TARGET (kept between runs), crashes to .build-fuzz/crashes/TARGET/.
# Prints executions, seconds and crashes; exits non-zero when a crash was found, so CI fails.
# Each run is capped at -rss_limit_mb=2048 (a single allocation above it counts as a crash:
# a header must not make the reader allocate what the file cannot hold).
set -euo pipefail
cd "$(dirname "$0")/.."
build=.build-fuzz

fuzz_build() {
    swift build -c release --package-path Fuzz --scratch-path "$build" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -g
}

if [[ "${1:-}" == "--build" ]]; then fuzz_build; exit; fi
if [[ $# -lt 2 ]]; then
    echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags]  (TARGET: safetensors gguf config tokenizer jsonl)" >&2
    exit 2
fi
target=$1 seconds=$2; shift 2
case "$target" in
    safetensors) exe=FuzzSafeTensors max_len=16384 ;;
    gguf)        exe=FuzzGGUF        max_len=16384 ;;
    config)      exe=FuzzConfig      max_len=4096  ;;
    tokenizer)   exe=FuzzTokenizer   max_len=16384 ;;
    jsonl)       exe=FuzzJSONL       max_len=4096  ;;
    *) echo "unknown fuzz target '$target' (safetensors gguf config tokenizer jsonl)" >&2; exit 2 ;;
esac

fuzz_build >&2
binary="$build/release/$exe"
work="$build/corpus/$target" crashes="$build/crashes/$target"
mkdir -p "$work" "$crashes"
log="$build/$target.log"
count_crashes() { ls "$crashes" | grep -cE '^(crash|leak|oom|timeout)-' || true; }
before=$(count_crashes)
set +e
SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0 "$binary" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$max_len" -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$@" "$work" "Fuzz/Corpus/$target" >"$log" 2>&1
status=$?
set -e
after=$(count_crashes)
executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" || true)
echo "target $target: status $status; ${done_line:-no 'Done' line (stopped early)}"
slow=$(grep -c 'Test unit written to .*slow-unit-' "$log" || true)
echo "target $target: executions ${executions:-?}, requested seconds $seconds, new crashes $((after - before)), slow units $slow, corpus $(ls "$work" | wc -l) found + $(ls "Fuzz/Corpus/$target" | wc -l) seeds"
if [[ $status -ne 0 ]]; then
    grep -E 'ERROR|SUMMARY|Fatal error|Test unit written' "$log" | head -20 >&2
    echo "target $target: FAILED — full log in $log, crashing inputs in $crashes/" >&2
    exit 1
fi

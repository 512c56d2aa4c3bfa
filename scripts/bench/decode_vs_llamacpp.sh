#!/usr/bin/env bash
# Greedy decoding (128 tokens) from a GGUF's quantised blocks: `pissa bench forward --weights
# blocks` (after a 5-token prompt) against llama.cpp's llama-bench -p 0 -n 128 on the same file,
# on 1 and on 2 threads, ROUNDS rounds (default 5), the order of the sides reversed every other
# round and the load recorded around every run (rounds.py). One thread is the figure a busy shared
# machine distorts least (no thread waits on another); llama.cpp's spinning barriers collapse when
# the cores are oversubscribed, so 2-thread figures mean little unless the load average is below 2.
# MODEL: smollm2 (default: its Q4_1 file), gemma3 or a GGUF file. JSON per run in
# .cache/bench/decode/TAG/; the table: python3 scripts/bench/summarize.py decode .cache/bench/decode/TAG
#
#   scripts/bench/decode_vs_llamacpp.sh [MODEL] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/models.sh
model_name="${1:-smollm2}" rounds="${2:-5}"
asset="$(bench_model_asset "$model_name")"; [ -z "$asset" ] || scripts/setup.sh "$asset" >/dev/null
swift build -c release --product pissa >/dev/null
gguf="$(bench_model "$model_name")"
llama="$(scripts/bench/build_llamacpp.sh)"
out=".cache/bench/decode/$(bench_model_tag "$model_name")"
mkdir -p "$out" && rm -f "$out"/*.json "$out"/*.log
bench_doctor "$out"
for r in $(seq 1 "$rounds"); do
  sides=()
  for t in 1 2; do
    sides+=("pissa-blocks-t$t=.build/release/pissa bench forward --model '$gguf' --tokens 16 --new 128 --repeats 3 --weights blocks --lanes $t --json"
            "llamacpp-t$t='$llama/llama-bench' -m '$gguf' -t $t -p 0 -n 128 -r 3 -o json")
  done
  python3 scripts/bench/rounds.py --out "$out" --round "$r" "${sides[@]}"
done
python3 scripts/bench/summarize.py decode "$out"

#!/usr/bin/env bash
# Prefill (1 × 512 tokens, all logits) and greedy decoding (128 tokens after a 5-token prompt),
# 2 threads, side by side, ROUNDS rounds (default 3), the order of the sides reversed every other
# round and the load recorded around every run (rounds.py):
#   transformers (float32, transformers_forward_bench.py) · `pissa bench forward` on float32
#   weights · `pissa bench forward --weights blocks` (the GGUF's quantised blocks, as `pissa
#   generate` runs) · llama.cpp's llama-bench -p 512 -n 128 on the same GGUF (built by
#   build_llamacpp.sh; skipped when NO_LLAMACPP=1).
# MODEL: smollm2 (default), gemma3 or a GGUF file. JSON per run in .cache/bench/forward/TAG/; the table:
#   python3 scripts/bench/summarize.py forward .cache/bench/forward/TAG
#
#   scripts/bench/forward_vs_transformers.sh [MODEL] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/models.sh
model_name="${1:-smollm2}" rounds="${2:-3}"
asset="$(bench_model_asset "$model_name")"; [ -z "$asset" ] || scripts/setup.sh "$asset" >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
gguf="$(bench_model "$model_name")"
llama=""; [ "${NO_LLAMACPP:-0}" = 1 ] || llama="$(scripts/bench/build_llamacpp.sh)"
out=".cache/bench/forward/$(bench_model_tag "$model_name")"
mkdir -p "$out" && rm -f "$out"/*.json "$out"/*.log
bench_doctor "$out"
for r in $(seq 1 "$rounds"); do
  sides=("transformers=python3 scripts/bench/transformers_forward_bench.py '$gguf' --tokens 512 --new 128 --repeats 3")
  for w in float32 blocks; do
    sides+=("pissa-$w=$pissa bench forward --model '$gguf' --tokens 512 --new 128 --repeats 3 --weights $w --json")
  done
  [ -z "$llama" ] || sides+=("llamacpp='$llama/llama-bench' -m '$gguf' -t 2 -p 512 -n 128 -r 3 -o json")
  python3 scripts/bench/rounds.py --out "$out" --round "$r" "${sides[@]}"
done
python3 scripts/bench/summarize.py forward "$out"

#!/usr/bin/env bash
# Prefill (1 × 512 tokens, all logits) and greedy decoding (128 tokens) on SmolLM2-135M, 2 threads,
# side by side in one run, ROUNDS rounds (default 3) alternating the sides:
#   transformers (float32) · `pissa bench forward` on float32 weights · `pissa bench forward
#   --weights blocks` (the GGUF's Q4_1/Q8_0 blocks, as `pissa generate` runs) · llama.cpp's
#   llama-bench on the same GGUF (built by scripts/bench/build_llamacpp.sh; skipped when
#   NO_LLAMACPP=1). JSON per run in .cache/bench/forward/ (each with its machine record);
#   `python3 scripts/bench/summarize.py` prints the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
gguf="${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
llama=""; [ "${NO_LLAMACPP:-0}" = 1 ] || llama="$(scripts/bench/build_llamacpp.sh)"
out=.cache/bench/forward && mkdir -p "$out" && rm -f "$out"/*.json
for r in $(seq 1 "$rounds"); do
  python3 scripts/bench/transformers_forward_bench.py "$gguf" --tokens 512 --new 128 --repeats 3 --json "$out/transformers_$r.json" >/dev/null 2>&1
  for w in float32 blocks; do
    .build/release/pissa bench forward --model "$gguf" --tokens 512 --new 128 --repeats 3 --weights "$w" --json > "$out/pissa_${w}_$r.json"
  done
  if [ -n "$llama" ]; then
    "$llama/llama-bench" -m "$gguf" -t 2 -p 512 -n 128 -r 3 -o json > "$out/llamacpp_$r.json" 2>/dev/null
    python3 - "$out/llamacpp_$r.json" <<'PY'
import json, sys
sys.path.insert(0, "scripts/bench")
import machine
runs = json.load(open(sys.argv[1]))
json.dump({"runs": runs, "machine": machine.record()}, open(sys.argv[1], "w"), indent=1)
PY
  fi
  echo "round $r done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
python3 scripts/bench/summarize.py .cache/bench forward

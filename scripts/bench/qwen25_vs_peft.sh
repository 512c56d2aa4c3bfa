#!/usr/bin/env bash
# Adapter training steps on a Qwen2.5-0.5B-shaped model (random weights, make_qwen25_shape.py)
# against SmolLM2-135M, each beside PyTorch + PEFT, alternated in one run: for each round,
# PEFT then pissa on SmolLM2, then PEFT then pissa on the Qwen shape (LoRA, r = 16 on all seven
# projections, text batch 4 × 256, loss on every token, 2 threads, 3 timed steps after one warm-up).
# The machine's load (uptime) is printed before each measurement. Prints one JSON line each.
#
#     scripts/bench/qwen25_vs_peft.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-2}"
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
smol=.cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$smol" ] || smol="${PISSA_CACHE:?}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
qwen=.cache/bench/qwen25-0.5b-shape
[ -f "$qwen/config.json" ] || python3 scripts/bench/make_qwen25_shape.py "$qwen" >/dev/null
for round in $(seq "$rounds"); do
  for model in "$smol" "$qwen"; do
    name=$(basename "$model")
    echo "round $round $name load: $(uptime | sed 's/.*load average: //')"
    python3 scripts/bench/peft_train_bench.py "$model" --init lora --data text --steps 3 2>/dev/null \
      | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'who': 'peft', 'model': '$name', 'tok_s': round(d['tokens_per_s'], 1), 'median_step_s': round(d['median_step_s'], 2), 'peak_rss_mb': round(d['peak_rss_mb'])}))"
    echo "round $round $name load: $(uptime | sed 's/.*load average: //')"
    $pissa bench train --model "$model" --init lora --data text --steps 3 --json \
      | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'who': 'pissa', 'model': '$name', 'tok_s': round(d['tokensPerSecond'], 1), 'median_step_s': round(d['medianStepSeconds'], 2), 'peak_rss_mb': round(d['peakRSSMegabytes']), 'gflops': round(d['gflopPerSecond'], 1), 'sgemm': round(d['sgemmGFLOPPerSecond'], 1)}))"
  done
done

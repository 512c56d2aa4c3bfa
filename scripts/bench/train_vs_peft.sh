#!/usr/bin/env bash
# Training steps (forward + backward + AdamW) on SmolLM2-135M, float32, 2 threads, r = 16 on all
# seven projections: PyTorch + PEFT vs `pissa bench train`, for LoRA and PiSSA, on plain text
# (batch 4 × 256, loss on every token) and on generated math data (batch 4, prompt masked).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
gguf="${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
mkdir -p .cache/bench
[ -f .cache/bench/math/train.jsonl ] || $pissa data math --train 200 --test 20 --seed 0 --out .cache/bench/math >/dev/null
for init in lora pissa_niter_4; do
  for data in text .cache/bench/math/train.jsonl; do
    tag="$init-$(basename "$data" .jsonl)"
    python3 scripts/bench/peft_train_bench.py "$gguf" --init "$init" --data "$data" --steps 5 --json ".cache/bench/peft_train_$tag.json" 2>/dev/null | grep -E "tokens_per_s|peak_rss"
    $pissa bench train --model "$gguf" --init "$init" --data "$data" --steps 5 --json | tee ".cache/bench/pissa_train_$tag.json" | grep -E "tokensPerSecond|peakRSS"
  done
done

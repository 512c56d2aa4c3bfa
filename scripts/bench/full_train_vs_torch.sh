#!/usr/bin/env bash
# Full fine-tuning steps (forward + backward + AdamW over every weight) on SmolLM2-135M, float32,
# 2 threads: PyTorch vs `pissa bench train --method full` (with and without --grad-checkpoint), on
# plain text (batch 4 × 256, loss on every token) and on generated math data (batch 4, prompt masked).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
gguf=.cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p .cache/bench
[ -f .cache/bench/math/train.jsonl ] || $pissa data math --train 200 --test 20 --seed 0 --out .cache/bench/math >/dev/null
for data in text .cache/bench/math/train.jsonl; do
  tag="full-$(basename "$data" .jsonl)"
  python3 scripts/bench/torch_full_train_bench.py "$gguf" --data "$data" --steps 5 --json ".cache/bench/torch_train_$tag.json" 2>/dev/null | grep -E "tokens_per_s|peak_rss"
  $pissa bench train --model "$gguf" --method full --data "$data" --steps 5
  $pissa bench train --model "$gguf" --method full --grad-checkpoint --data "$data" --steps 5
done

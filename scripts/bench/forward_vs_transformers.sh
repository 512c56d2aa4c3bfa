#!/usr/bin/env bash
# Prefill (1 × 512 tokens, all logits) and greedy decoding (128 tokens) on SmolLM2-135M, float32,
# 2 threads: transformers vs `pissa bench forward`, side by side in one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
gguf=.cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p .cache/bench
python3 scripts/bench/transformers_forward_bench.py "$gguf" --tokens 512 --new 128 --repeats 3 --json .cache/bench/transformers_forward.json 2>/dev/null
.build/release/pissa bench forward --model "$gguf" --tokens 512 --new 128 --repeats 3 --json | tee .cache/bench/pissa_forward.json

#!/usr/bin/env bash
# Adapter training steps on a Qwen2.5-0.5B-shaped model (random weights, make_qwen25_shape.py: 24
# layers, hidden 896, 14/2 heads, vocabulary 151,936) and on SmolLM2-135M, each beside PyTorch +
# PEFT, in one run: every round runs the four sides (PEFT and pissa on SmolLM2, PEFT and pissa on
# the Qwen shape), in reverse order every other round, the load recorded around every run
# (rounds.py). LoRA, r = 16 on all seven projections, text batch 4 × 256 with the loss on every
# token, 2 threads, STEPS timed steps (default 3) after one warm-up.
# JSON per run in .cache/bench/qwen25/; the table (one row per model):
#   python3 scripts/bench/summarize.py train .cache/bench/qwen25
#
#   scripts/bench/qwen25_vs_peft.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/models.sh
rounds="${1:-3}" steps="${STEPS:-3}"
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
smol="$(bench_model smollm2)"
qwen=.cache/bench/qwen25-0.5b-shape
[ -f "$qwen/config.json" ] || python3 scripts/bench/make_qwen25_shape.py "$qwen" >/dev/null
out=.cache/bench/qwen25
mkdir -p "$out" && rm -f "$out"/*.json "$out"/*.log
bench_doctor "$out"
for r in $(seq 1 "$rounds"); do
  sides=()
  for m in "smollm2=$smol" "qwen25-shape=$qwen"; do
    tag="${m%%=*}" path="${m#*=}"
    sides+=("peft-$tag-lora-text=python3 scripts/bench/peft_train_bench.py '$path' --init lora --data text --steps $steps"
            "pissa-$tag-lora-text=$pissa bench train --model '$path' --init lora --data text --steps $steps --json")
  done
  python3 scripts/bench/rounds.py --out "$out" --round "$r" "${sides[@]}"
done
python3 scripts/bench/summarize.py train "$out"

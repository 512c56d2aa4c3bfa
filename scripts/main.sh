#!/usr/bin/env bash
# The main job on the default model and data: installs what it needs, builds the tool in release,
# generates GSM8K-style math problems and runs a short `pissa compare` on SmolLM2-135M-Instruct:
# LoRA, PiSSA, QLoRA and QPiSSA with identical settings, each evaluated on held-out problems, plus
# the initialisation and quantisation-error tables. Then the PiSSA run's adapter is converted to a
# LoRA on the original model and exported for llama.cpp. About ten minutes on 2 cores.
#
#   scripts/main.sh [REPORT_DIR]        (default runs/smollm2-compare)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product pissa
pissa=.build/release/pissa
report="${1:-runs/smollm2-compare}"
data=runs/math-data
$pissa data math --train 2000 --test 60 --seed 0 --out "$data"
$pissa compare --data "$data/train.jsonl" --test "$data/test.jsonl" \
  --methods lora,pissa,qlora,qpissa --seeds 0 --rank 16 --steps 30 \
  --batch-size 4 --max-seq-len 256 --eval-every 15 --accuracy-limit 20 --max-new-tokens 96 \
  --out "$report"
run="$report/runs/pissa-seed0"
$pissa convert --initial "$run/pissa_init" --adapter "$run/adapter" --out "$run/lora_converted"
gguf="${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
$pissa export --adapter "$run/lora_converted" --model "$gguf" --format gguf-lora --out "$run/lora_converted.gguf"
echo
echo "report: $report/report.md (figures: loss.svg, loss_first20.svg, grad_norm.svg, heldout_loss.svg)"
echo "PiSSA adapter as a LoRA on the original model: $run/lora_converted (PEFT), $run/lora_converted.gguf (llama.cpp)"

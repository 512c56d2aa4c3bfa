#!/usr/bin/env bash
# The main job on the default model and data: installs what it needs, builds the tool in release,
# generates GSM8K-style math problems and runs a short `pissa compare` on SmolLM2-135M-Instruct:
# LoRA against PiSSA with identical settings (30 steps), the held-out loss of each on 60 held-out
# problems, exact-match accuracy on 200 held-out problems with its 95 % Wilson interval and
# McNemar's paired test, and the initialisation table (exact vs randomized SVD). Then the PiSSA
# run's adapter is converted to a LoRA on the original model and exported for llama.cpp.
# Measured: README.md ("Two commands on a fresh machine"); each phase's time is printed at the end.
#
#   scripts/main.sh [REPORT_DIR]        (default runs/smollm2-compare)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS; last=$SECONDS
phase() { echo "$1: $(( SECONDS - last )) s (total $(( SECONDS - start )) s)" >> "$timings"; last=$SECONDS; }
report="${1:-runs/smollm2-compare}"
# `pissa compare` writes only into a new or empty folder (or one it wrote itself), so the phase
# times gather in a temporary file and join the report at the end.
timings="$(mktemp)"
trap 'rm -f "$timings"' EXIT
echo "started $(date -u +%FT%TZ) on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" > "$timings"
scripts/setup.sh
phase "setup"
swift build -c release --product pissa
phase "build"
pissa=.build/release/pissa
data=runs/math-data
# 200 held-out problems for exact match (the sample size: README.md); the held-out loss, evaluated
# three times per run, on the first 60 of them.
$pissa data math --train 2000 --test 200 --seed 0 --out "$data"
head -n 60 "$data/test.jsonl" > "$data/loss.jsonl"
$pissa compare --data "$data/train.jsonl" --test "$data/loss.jsonl" --accuracy-test "$data/test.jsonl" \
  --methods lora,pissa --seeds 0 --rank 16 --steps 30 \
  --batch-size 4 --max-seq-len 256 --eval-every 15 --accuracy-limit 200 --max-new-tokens 96 \
  --out "$report"
phase "compare"
run="$report/runs/pissa-seed0"
$pissa convert --initial "$run/pissa_init" --adapter "$run/adapter" --out "$run/lora_converted"
gguf="${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
$pissa export --adapter "$run/lora_converted" --model "$gguf" --format gguf-lora --out "$run/lora_converted.gguf"
phase "convert and export"
echo "finished, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$timings"
cp "$timings" "$report/timings.txt"
echo
cat "$timings"
echo "report: $report/report.md (figures: loss.svg, loss_first20.svg, grad_norm.svg, heldout_loss.svg)"
echo "PiSSA adapter as a LoRA on the original model: $run/lora_converted (PEFT), $run/lora_converted.gguf (llama.cpp)"

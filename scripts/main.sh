#!/usr/bin/env bash
# The main job on the default model and data: installs what it needs, builds the tool in release,
# generates GSM8K-style math problems, fine-tunes a PiSSA adapter on SmolLM2-135M-Instruct and
# evaluates it. A few minutes on 2 cores.
#
#   scripts/main.sh [RUN_DIR]        (default runs/smollm2-pissa-math)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product pissa
pissa=.build/release/pissa
run="${1:-runs/smollm2-pissa-math}"
data=runs/math-data
$pissa data math --train 2000 --test 200 --seed 0 --out "$data"
$pissa train --data "$data/train.jsonl" --valid "$data/test.jsonl" --out "$run" \
  --init pissa_niter_4 --rank 16 --alpha 16 --targets all-linear \
  --lr 2e-4 --schedule cosine --warmup-ratio 0.03 --batch-size 4 --max-seq-len 256 \
  --steps 60 --eval-every 20 --save-every 20 --seed 0
echo
echo "run directory: $run (adapter/, metrics.jsonl, loss.svg)"

#!/usr/bin/env bash
# The runs behind docs/RESULTS.md, on SmolLM2-135M-Instruct, each a `pissa compare`:
#   math   LoRA, PiSSA, full FT, QLoRA, QPiSSA × seeds 0,1,2 on the generated math problems
#          (loss on the answers only; held-out loss on 60 held-out problems, exact match on 500);
#   text   LoRA, PiSSA, QLoRA, QPiSSA × seeds 0,1,2 on Shakespeare (Hamlet for training, 500
#          lines of Macbeth's Act I held out; loss on every token, held-out perplexity);
#   lr-*   LoRA and PiSSA, seed 0, on the math problems at other learning rates, to show whether
#          the shared default is fair to both.
# Each stage's report, figures and results.json are copied into docs/results/STAGE/ (the per-run
# directories, with adapters and checkpoints, stay under runs/results/). A stage whose report
# already exists is skipped, so an interrupted script can be rerun. The times each stage took are
# appended to runs/results/timings.txt (docs/RESULTS.md states them).
#
#   scripts/results.sh [STAGE...]      (default: math text lr-5e-5 lr-1e-3)
#
# PISSA_BIN=path runs that binary instead of building .build/release/pissa (a long run can then
# go on while the tree is rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [[ -z ${PISSA_BIN:-} ]]; then swift build -c release --product pissa; fi
pissa=${PISSA_BIN:-.build/release/pissa}
work=runs/results
assets="${PISSA_CACHE:-.cache/assets}"
mkdir -p "$work"

source scripts/results_data.sh

# The math settings every math stage shares: 40 steps of 4 problems, held-out loss at the start,
# step 20 and step 40 on 60 problems, exact match on 500 held-out problems (docs/RESULTS.md: the
# sample size).
math_compare() { # OUT LR METHODS SEEDS INIT_MODES
  $pissa compare --data "$work/math-data/train.jsonl" --test "$work/math-data/loss.jsonl" \
    --accuracy-test "$work/math-data/test.jsonl" \
    --methods "$3" --seeds "$4" --rank 16 --steps 40 --lr "$2" --batch-size 4 --max-seq-len 256 \
    --eval-every 20 --accuracy-limit 500 --max-new-tokens 96 --init-modes "$5" --out "$1"
}

stage() {
  local name=$1
  if [[ -f $work/$name/report.md ]]; then echo "$name: report exists, skipped"; return; fi
  local start=$SECONDS
  case $name in
    math) math_data
          math_compare "$work/math" 2e-4 lora,pissa,full,qlora,qpissa 0,1,2 pissa,pissa_niter_1,pissa_niter_4,pissa_niter_16 ;;
    text) text_data
          $pissa compare --data "$work/text-data/train.txt" --test "$work/text-data/test.txt" \
            --methods lora,pissa,qlora,qpissa --seeds 0,1,2 --rank 16 --steps 20 --lr 2e-4 \
            --batch-size 4 --max-seq-len 256 --eval-every 10 --init-modes "" --out "$work/text" ;;
    lr-*) math_data
          math_compare "$work/$name" "${name#lr-}" lora,pissa 0 "" ;;
    *) echo "unknown stage $name" >&2; exit 2 ;;
  esac
  echo "$name: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s" | tee -a "$work/timings.txt"
  publish "$name"
}

for s in "${@:-math text lr-5e-5 lr-1e-3}"; do
  for name in $s; do stage "$name"; done
done

#!/usr/bin/env bash
# "Which start?" (docs/RESULTS.md §4), on SmolLM2-135M-Instruct: the adapter starts side by side
# with one command, the same data, seeds and hyperparameters.
#   starts-math  ten methods × seeds 0,1,2 on the generated math problems (loss on answers only)
#   starts-text  the same on Shakespeare (Hamlet for training, Macbeth's Act I held out)
#   starts-prep  each start's preprocessing alone: `pissa init` under /usr/bin/time -v (wall
#                time, peak RSS), with the calibration data of the math stage
# Every method trains with the tool's default learning rate 1e-3 (the rate at which LoRA and
# PiSSA both did best, RESULTS.md §3), rank 16 on all seven projections, alpha = r; CorDA (IPM),
# EVA and LoRA-GA calibrate on 8 batches of their training data. A stage whose report exists is
# skipped. The step counts are short because this machine was shared (load 10–13 on 2 cores
# while these ran: a math step ≈ 5 s, and each pass over the held-out set ≈ 40 s, three passes a
# run): 12 steps on math and 8 on text, the held-out loss at the start and the end.
# STEPS_MATH / STEPS_TEXT / SEEDS / METHODS override them.
#   gemma-math-s0..2  Gemma 3 270M (Q4_K_M GGUF): lora, pissa, qlora, qpissa on the math
#                     problems, STEPS_GEMMA steps (default 40, as in RESULTS.md §1) at 1e-3 (the
#                     rate at which LoRA did best in §3, so the comparison does not favour PiSSA),
#                     held-out loss every 20 steps, merged into gemma-math (RESULTS.md §5).
#   gemma-lr-RATE     Gemma 3: lora and pissa, seed 0, the same 40 steps at learning rate RATE
#                     (RESULTS.md §5: is 1e-3 fair to PiSSA on Gemma?).
#   gemma-starts-s0..2  Gemma 3: the six starts gemma-math does not run (milora, olora, corda, eva,
#                     loraga, dora; GEMMA_STARTS overrides) with gemma-math's settings, merged with
#                     gemma-math's seeds into gemma-starts: the ten starts on Gemma (RESULTS.md §4).
#   gemma-text-s0..2  Gemma 3: the ten starts on the text task with starts-text's settings, merged
#                     into gemma-text (RESULTS.md §4).
#   gemma-others-lr-RATE  Gemma 3, seed 0, at learning rate RATE: the eight starts gemma-lr-RATE
#                     does not run, merged with it into gemma-starts-lr-RATE (RESULTS.md §4: does
#                     the ranking on Gemma depend on the rate?).
#
# Each task runs one seed per comparison (starts-math-s0, starts-text-s0, …, interleaved), merged
# after each into starts-math / starts-text (scripts/merge_comparisons.py, then `pissa report`).
#
#   scripts/results_starts.sh [STAGE...]      (default: seeds 0, 1, 2 of math and text, then starts-prep)
set -euo pipefail
cd "$(dirname "$0")/.."
# PISSA_BIN=path runs that binary instead of building .build/release/pissa (a long run then
# survives rebuilds of the worktree).
if [[ -z ${PISSA_BIN:-} ]]; then swift build -c release --product pissa; fi
pissa=${PISSA_BIN:-.build/release/pissa}
work=runs/results
assets="${PISSA_CACHE:-.cache/assets}"
model="$assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
gemma="$assets/gemma3-270m/gemma-3-270m-q4_k_m.gguf"
ten=lora,pissa,milora,olora,corda,eva,loraga,dora,qlora,qpissa   # every start, in the reports' order
methods=${METHODS:-$ten}
seeds=${SEEDS:-0,1,2}
mkdir -p "$work"

source scripts/results_data.sh

# Each start's own cost: wall seconds and peak resident memory of `pissa init` on the GGUF.
prep() {
  local out=$work/starts-prep
  mkdir -p "$out"
  local table=$out/prep.tsv
  printf "start\tseconds\tmax_rss_kb\n" > "$table"
  local calib=(--calib-data "$work/math-data/train.jsonl" --calib-batches 8 --batch-size 4 --max-seq-len 256)
  cat "$model" > /dev/null   # the file in the page cache, so that the first start does not pay the disk read
  local init
  for init in "lora" "pissa_niter_4" "pissa" "milora" "olora" "corda" "eva" "lora_ga" "lora --use-dora" "lora --quant nf4" "pissa_niter_4 --quant nf4 --iters 5"; do
    read -r -a args <<< "$init"
    local extra=()
    [[ ${args[0]} == corda || ${args[0]} == eva || ${args[0]} == lora_ga ]] && extra=("${calib[@]}")
    rm -rf "$out/init"
    /usr/bin/time -v -o "$out/time.txt" $pissa init --model "$model" --out "$out/init" --rank 16 --init "${args[@]}" "${extra[@]}" > /dev/null
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$out/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$out/time.txt")
    printf "%s\t%s\t%s\n" "$init" "$wall" "$rss" | tee -a "$table"
  done
  rm -rf "$out/init"
}

# The comparisons of the stages, into $work/$name (the stage's name).
text_compare() { # MODEL METHODS SEED: the text task, 8 steps at the default rate
  text_data
  $pissa compare --model "$1" --data "$work/text-data/train.txt" --test "$work/text-data/test.txt" \
    --methods "$2" --seeds "$3" --rank 16 --steps "${STEPS_TEXT:-8}" --batch-size 4 --max-seq-len 256 \
    --init-modes "" --out "$work/$name"
}

gemma_math() { # METHODS SEED RATE: Gemma 3 on the math problems with §5's settings
  math_data
  $pissa compare --model "$gemma" --data "$work/math-data/train.jsonl" --test "$work/math-data/loss.jsonl" \
    --methods "$1" --seeds "$2" --rank 16 --steps "${STEPS_GEMMA:-40}" --lr "$3" \
    --batch-size 4 --max-seq-len 256 --eval-every 20 --accuracy-limit 0 --init-modes "" --out "$work/$name"
}

stage() {
  local name=$1
  if [[ -f $work/$name/report.md || -f $work/$name/prep.tsv ]]; then echo "$name: done before, skipped"; return; fi
  local start=$SECONDS
  [[ $name == starts-prep ]] || rm -rf "${work:?}/$name"   # what a stopped run of this stage left
  case $name in
    starts-math-s*) math_data
      $pissa compare --model "$model" --data "$work/math-data/train.jsonl" --test "$work/math-data/loss.jsonl" \
        --methods "$methods" --seeds "${name#starts-math-s}" --rank 16 --steps "${STEPS_MATH:-12}" --batch-size 4 --max-seq-len 256 \
        --accuracy-limit 0 --init-modes "" --out "$work/$name" ;;
    starts-text-s*) text_compare "$model" "$methods" "${name#starts-text-s}" ;;
    gemma-math-s*) gemma_math lora,pissa,qlora,qpissa "${name#gemma-math-s}" 1e-3 ;;
    gemma-starts-s*) gemma_math "${GEMMA_STARTS:-milora,olora,corda,eva,loraga,dora}" "${name#gemma-starts-s}" 1e-3 ;;
    gemma-text-s*) text_compare "$gemma" "$methods" "${name#gemma-text-s}" ;;
    gemma-others-lr-*) gemma_math milora,olora,corda,eva,loraga,dora,qlora,qpissa 0 "${name#gemma-others-lr-}" ;;
    gemma-lr-*) gemma_math lora,pissa 0 "${name#gemma-lr-}" ;;
    starts-prep) math_data; prep ;;
    *) echo "unknown stage $name" >&2; exit 2 ;;
  esac
  echo "$name: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s" | tee -a "$work/timings.txt"
  [[ $name == starts-prep ]] && { mkdir -p docs/results/starts-prep; cp "$work/starts-prep/prep.tsv" docs/results/starts-prep/; }
  [[ $name == gemma-lr-* ]] && publish "$name"
  if [[ $name == gemma-others-lr-* ]]; then
    local all=gemma-starts-lr-${name#gemma-others-lr-}
    python3 scripts/merge_comparisons.py --methods "$ten" "$work/$all" "$work/gemma-lr-${name#gemma-others-lr-}" "$work/$name"
    $pissa report "$work/$all"
    publish "$all"
  fi
  return 0
}

# The seeds of one task, each its own comparison (a stopped run loses one seed, not all), merged
# into $work/TASK (starts-math, starts-text, gemma-math, gemma-starts, gemma-text) and reported there (`pissa report`),
# then published. gemma-starts also takes gemma-math's seeds: its other four starts.
merge() { # TASK: starts-math, starts-text, gemma-math, gemma-starts or gemma-text
  local parts=() order=() d
  for d in "$work/$1"-s*; do [[ -f $d/results.json ]] && parts+=("$d"); done
  [[ ${#parts[@]} -gt 0 ]] || return 0
  if [[ $1 == gemma-starts ]]; then
    for d in "$work"/gemma-math-s*; do [[ -f $d/results.json ]] && parts+=("$d"); done
    order=(--methods "$ten")
  fi
  python3 scripts/merge_comparisons.py "${order[@]}" "$work/$1" "${parts[@]}"
  $pissa report "$work/$1"
  publish "$1"
}

for s in "${@:-starts-math-s0 starts-text-s0 starts-math-s1 starts-text-s1 starts-math-s2 starts-text-s2 starts-prep}"; do
  for name in $s; do
    stage "$name"
    case $name in *-s[0-9]*) merge "${name%-s*}" || echo "merging ${name%-s*} failed" ;; esac
  done
done

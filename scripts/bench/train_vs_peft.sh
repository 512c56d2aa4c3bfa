#!/usr/bin/env bash
# Adapter training steps (forward + backward + AdamW), float32 frozen base, 2 threads, r = 16 on all
# seven projections: PyTorch + PEFT (peft_train_bench.py) vs `pissa bench train`, side by side,
# ROUNDS rounds (default 3), the side that runs first alternating round by round, the load recorded
# around every run (rounds.py). Cases: INITS (default "lora pissa_niter_4") × DATA (default
# "text math": text 4 × 256 with the loss on every token; generated math, batch 4, prompt masked).
# MODEL: smollm2 (default), gemma3, or a GGUF file / Hugging Face directory. STEPS timed steps
# after one warm-up (default 5). THREADS (default 2): torch's threads and pissa's lanes; 1 is the
# figure an oversubscribed machine distorts least (no thread waits on a descheduled one); results
# then go to TAG-t1. JSON per run in .cache/bench/train/TAG/; the table:
#   python3 scripts/bench/summarize.py train .cache/bench/train/TAG
#
#   [INITS=lora] [DATA=text] [THREADS=1] scripts/bench/train_vs_peft.sh [MODEL] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/models.sh
model_name="${1:-smollm2}" rounds="${2:-3}" steps="${STEPS:-5}" threads="${THREADS:-2}"
asset="$(bench_model_asset "$model_name")"; [ -z "$asset" ] || scripts/setup.sh "$asset" >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
model="$(bench_model "$model_name")"
out=".cache/bench/train/$(bench_model_tag "$model_name")"; [ "$threads" = 2 ] || out="$out-t$threads"
mkdir -p "$out" && rm -f "$out"/*.json "$out"/*.log
bench_doctor "$out"
[ -f .cache/bench/math/train.jsonl ] || $pissa data math --train 200 --test 20 --seed 0 --out .cache/bench/math >/dev/null
for r in $(seq 1 "$rounds"); do
  for init in ${INITS:-lora pissa_niter_4}; do
    for data in ${DATA:-text math}; do
      path="$data"; [ "$data" = math ] && path=.cache/bench/math/train.jsonl
      python3 scripts/bench/rounds.py --out "$out" --round "$r" \
        "peft-$init-$data=python3 scripts/bench/peft_train_bench.py '$model' --init $init --data $path --steps $steps --threads $threads" \
        "pissa-$init-$data=$pissa bench train --model '$model' --init $init --data $path --steps $steps --lanes $threads --json"
    done
  done
done
python3 scripts/bench/summarize.py train "$out"

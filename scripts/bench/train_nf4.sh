#!/usr/bin/env bash
# Training steps (forward + backward + AdamW) on SmolLM2-135M with the frozen base in float32
# and in NF4 (QPiSSA, T = 1: `--init pissa_niter_4 --quant nf4`), r = 16 on all seven
# projections, 2 threads: text (batch 4 × 256, loss on every token) and generated math (batch 4,
# prompt masked). float32 and NF4 runs alternate, REPEATS (default 3) of each, so that a busy
# machine slows both alike; then the frozen products alone (`pissa bench frozen`).
# Medians: python3 scripts/bench/summarize_nf4.py .cache/bench/nf4
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
gguf=.cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
out=${OUT:-.cache/bench/nf4}        # JSON per run
math=${MATH:-.cache/bench/math}
mkdir -p "$out"
[ -f "$math/train.jsonl" ] || $pissa data math --train 200 --test 20 --seed 0 --out "$math" >/dev/null
for data in text "$math/train.jsonl"; do
  for repeat in $(seq 1 "${REPEATS:-3}"); do
    for quant in none nf4; do
      flag=""; [ "$quant" = nf4 ] && flag="--quant nf4"
      tag="$(basename "$data" .jsonl)-$quant-$repeat"
      $pissa bench train --model "$gguf" --init pissa_niter_4 --data "$data" --steps "${STEPS:-4}" $flag --json > "$out/$tag.json"
      grep -E "tokensPerSecond|peakRSS" "$out/$tag.json" | tr -d '\n'; echo "  ($tag)"
    done
  done
done
$pissa bench frozen --repeats 7 --json > "$out/frozen.json"
python3 scripts/bench/summarize_nf4.py "$out"

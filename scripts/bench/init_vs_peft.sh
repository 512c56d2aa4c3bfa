#!/usr/bin/env bash
# PiSSA initialisation, side by side, ROUNDS rounds (default 3), the order of the sides reversed
# every other round and the load recorded around every run (rounds.py), on SmolLM2-135M in float32
# (the Hugging Face directory `pissa convert-model` makes), r = 16 on all seven projections:
#   PEFT: get_peft_model with init_lora_weights = True (lora), "pissa" (exact SVD) and
#     "pissa_niter_4", model loading not timed (peft_init_bench.py, one repeat per round);
#   pissa: the whole `pissa init` command (load, decompose, write the residual model and the
#     adapter) with --init lora, pissa and pissa_niter_4; its initialisation time is the command's
#     wall time minus the --init lora command's in the same round. Its --json also reports the
#     command's own clock (totalSeconds: from reading the model's header to the written adapter;
#     process start-up and exit not included), shown beside the wall times.
# The outputs go to SCRATCH (default /dev/shm, memory): on a disk the writes' cost depends on what
# ran before (on this project's VMs, mounted with `discard`, a 540 MB copy took 0.4 s or 4–5 s
# depending on what had just been written or deleted), which the "minus --init lora" subtraction
# cannot remove; PEFT writes nothing. SCRATCH=DIR writes to DIR instead.
# JSON per run in .cache/bench/init/smollm2/; the table:
#   python3 scripts/bench/summarize.py init .cache/bench/init/smollm2
#
#   scripts/bench/init_vs_peft.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/models.sh
rounds="${1:-3}"
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
smol=.cache/bench/smollm2-f32
[ -f "$smol/model.safetensors" ] || $pissa convert-model --model "$(bench_model smollm2)" --out "$smol" >/dev/null
targets=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
out=.cache/bench/init/smollm2
scratch="${SCRATCH:-/dev/shm}/pissa-init-bench"
mkdir -p "$out" "$scratch" && rm -rf "$out"/*.json "$out"/*.log "$scratch"/o-*
bench_doctor "$out"
for r in $(seq 1 "$rounds"); do
  sides=("peft=python3 scripts/bench/peft_init_bench.py $smol --rank 16 --targets $targets --modes lora,pissa,pissa_niter_4 --repeats 1 --json $out/peft.tmp >&2 && cat $out/peft.tmp")
  for mode in lora pissa pissa_niter_4; do
    sides+=("pissa-$mode=$pissa init --model $smol --out $scratch/o-$mode --init $mode --rank 16 --alpha 16 --targets $targets --json")
  done
  python3 scripts/bench/rounds.py --out "$out" --round "$r" "${sides[@]}"
  rm -rf "$scratch"/o-* "$out/peft.tmp"
done
rmdir "$scratch" 2>/dev/null || true
python3 scripts/bench/summarize.py init "$out"

#!/usr/bin/env bash
# Scale check for `pissa init`: a synthetic model with LLaMA-2-7B shapes (bf16, sharded, ~13.5 GB)
# decomposed with randomized PiSSA at r = 16; reports wall time and peak RSS (GNU time).
#
#   scripts/bench/scale_init.sh [WORKDIR]        (default WORKDIR: /tmp/pissa-scale; needs ~28 GB free)
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:-/tmp/pissa-scale}"
model="$work/llama7b-bf16"
out="$work/llama7b-pissa-r16"
mkdir -p "$work"
if [ ! -f "$model/model.safetensors.index.json" ]; then
  python3 scripts/bench/make_synthetic_llama7b.py "$model" --layers 32 --seed 0
fi
swift build -c release --product pissa >/dev/null
rm -rf "$out"
sync
/usr/bin/time -v .build/release/pissa init --model "$model" --out "$out" --rank 16 --init pissa_niter_4 \
  --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --seed 0 2> "$work/time.log" | tail -3
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$work/time.log"
du -sh "$model" "$out"

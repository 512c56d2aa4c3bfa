#!/usr/bin/env bash
# Exact-match evaluation with answers decoded one at a time vs several together (one pass per
# step for every live sequence): `pissa eval --task math` on SmolLM2-135M-Instruct, float32, 2
# lanes, the same held-out problems at each --batch-size, each size REPEATS times, interleaved.
# Prints a markdown table (median seconds, generated tokens/s, speed-up against batch 1) and
# whether every batch size gave the same answers, and keeps the raw JSON in .cache/bench/.
#
#   scripts/bench/batched_generation.sh [PROBLEMS] [REPEATS] [BATCH SIZES...]   (default 64 3 1 4 8 16 32)
set -euo pipefail
cd "$(dirname "$0")/../.."
problems=${1:-64}; repeats=${2:-3}; shift $(( $# > 2 ? 2 : $# ))
sizes=("${@:-1 4 8 16 32}"); sizes=(${sizes[*]})
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
out=.cache/bench/batched_generation
mkdir -p "$out"
[[ -f $out/data/test.jsonl ]] || $pissa data math --train 1 --test "$problems" --seed 0 --out "$out/data" >/dev/null
rm -f "$out"/run-*.json
{
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; openblas core: $(python3 -c "import ctypes; l = ctypes.CDLL('libopenblas.so.0'); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())" 2>/dev/null || echo '?')"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.txt"
for r in $(seq 1 "$repeats"); do
  for b in "${sizes[@]}"; do
    $pissa eval --data "$out/data/test.jsonl" --task math --limit "$problems" --max-new-tokens 96 --batch-size "$b" --json \
      2>/dev/null > "$out/run-$b-$r.json"
    echo "batch $b, repeat $r: $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{d['seconds']:.1f} s, {d['generatedTokens']} tokens\")" "$out/run-$b-$r.json")" >&2
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
python3 - "$out" "${sizes[@]}" <<'EOF'
import glob, json, statistics, sys
out, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
runs = {b: [json.load(open(f)) for f in sorted(glob.glob(f"{out}/run-{b}-*.json"))] for b in sizes}
print(open(f"{out}/machine.txt").read().strip())
base = statistics.median(r["seconds"] for r in runs[sizes[0]])
answers = {r["outcomes"] + "".join(s["generated"] for s in r["samples"]) for b in sizes for r in runs[b]}
first = runs[sizes[0]][0]
print(f"{first['total']} problems, {first['generatedTokens']} generated tokens; "
      f"answers identical at every batch size: {'yes' if len(answers) == 1 else 'NO'}")
print("\n| batch | median s | min–max s | generated tok/s | speed-up |\n|---|---|---|---|---|")
for b in sizes:
    s = [r["seconds"] for r in runs[b]]
    m = statistics.median(s)
    print(f"| {b} | {m:.1f} | {min(s):.1f}–{max(s):.1f} | {first['generatedTokens'] / m:.0f} | {base / m:.2f}× |")
EOF

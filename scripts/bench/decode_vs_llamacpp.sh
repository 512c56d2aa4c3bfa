#!/usr/bin/env bash
# Greedy decoding (128 tokens after a short prompt) from SmolLM2-135M's Q4_1 GGUF blocks:
# `pissa bench forward --weights blocks` against llama.cpp's llama-bench (-p 0 -n 128) on the same
# file, on 1 and on 2 threads, ROUNDS rounds (default 5) alternating the sides. One thread is
# the figure a busy shared machine cannot distort much (no thread waits on another); llama.cpp's
# spinning barriers collapse when the cores are oversubscribed, so 2-thread figures mean little
# unless the load average is below 2. JSON per run in .cache/bench/decode/; medians on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
gguf="${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
llama="$(scripts/bench/build_llamacpp.sh)"
out=.cache/bench/decode && mkdir -p "$out" && rm -f "$out"/*.json
for r in $(seq 1 "$rounds"); do
  for t in 1 2; do
    .build/release/pissa bench forward --model "$gguf" --tokens 16 --new 128 --repeats 3 --weights blocks --lanes "$t" --json \
      > "$out/pissa_t${t}_$r.json"
    "$llama/llama-bench" -m "$gguf" -t "$t" -p 0 -n 128 -r 3 -o json > "$out/llamacpp_t${t}_$r.json" 2>/dev/null
  done
done
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
load = lambda f: json.load(open(f))
for t in (1, 2):
    ours = [load(f)["decodeTokensPerSecond"] for f in sorted(glob.glob(f"{out}/pissa_t{t}_*.json"))]
    theirs = [load(f)[0]["avg_ts"] for f in sorted(glob.glob(f"{out}/llamacpp_t{t}_*.json"))]
    m = load(glob.glob(f"{out}/pissa_t{t}_*.json")[0])["machine"]
    print(f"{t} thread(s): pissa {statistics.median(ours):.1f} tok/s {[round(x, 1) for x in ours]}, llama.cpp "
          f"{statistics.median(theirs):.1f} tok/s {[round(x, 1) for x in theirs]}, ratio {statistics.median(ours) / statistics.median(theirs):.2f} "
          f"({m['cpuModel']}, {m['cpuID']}, kernels {m['kernelLevel']})")
print(f"load average now {os.getloadavg()[0]:.1f}")
PY

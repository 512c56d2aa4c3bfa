#!/usr/bin/env bash
# The BLAS candidates side by side (BENCHMARKS.md, "Choosing the BLAS"): scripts/bench/blas_candidates.c
# built against Debian's OpenBLAS 0.3.21, PyPI's scipy-openblas32 0.3.34 (what scripts/setup.sh
# installs) and PyPI's MKL 2026.2, run one after the other for ROUNDS rounds (default 5); the
# JSON of every run, with the CPU, goes to .cache/bench/blas/, the medians to standard output.
#
#   scripts/bench/blas_candidates.sh [ROUNDS]
# Needs: apt-get install libopenblas-dev liblapacke-dev (Debian's); the other two are fetched here.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
out=.cache/bench/blas && mkdir -p "$out/mkl"
scripts/setup.sh blas >/dev/null
src=scripts/bench/blas_candidates.c
gcc -O2 "$src" -o "$out/bc_debian" $(pkg-config --cflags --libs openblas) -llapacke -lpthread
gcc -O2 -DPREFIX=scipy_ "$src" -o "$out/bc_scipy" $(pkg-config --cflags --libs scipy-openblas32) -lpthread
if [ ! -f "$out/mkl/.complete" ]; then
  python3 -m pip download --quiet --no-deps -d "$out/mkl" mkl==2026.2.0
  (cd "$out/mkl" && python3 -c "import zipfile,glob; zipfile.ZipFile(glob.glob('mkl-*.whl')[0]).extractall('.')" && touch .complete)
fi
mkl="$(cd "$out/mkl"/mkl-*.data/data/lib && pwd)"
gcc -O2 -DMKL "$src" -o "$out/bc_mkl" -Wl,--no-as-needed -lm -ldl "$mkl/libmkl_rt.so.3" -Wl,-rpath,"$mkl" -lpthread
python3 - "$out" "$rounds" <<'PY'
import json, os, subprocess, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
cpu = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in open("/proc/cpuinfo") if ":" in l)}
env = dict(os.environ, MKL_THREADING_LAYER="GNU")   # MKL's own OpenMP runtime is not in the wheel
runs = {name: [] for name in ("debian", "scipy", "mkl")}
for r in range(rounds):
    for name in runs:
        load = os.getloadavg()[0]
        result = json.loads(subprocess.run([f"{out}/bc_{name}"], capture_output=True, text=True, env=env, check=True).stdout)
        result["load"] = load
        runs[name].append(result)
record = {"cpu": cpu.get("model name"), "cpu_id": f"{cpu.get('vendor_id')} family {cpu.get('cpu family')} model {cpu.get('model')}",
          "flags": [f for f in cpu.get("flags", "").split() if f.startswith(("avx", "fma", "amx"))], "runs": runs}
json.dump(record, open(f"{out}/blas_candidates.json", "w"), indent=1)
print(f"CPU: {record['cpu']} ({record['cpu_id']}); loads {min(x['load'] for v in runs.values() for x in v):.1f}–{max(x['load'] for v in runs.values() for x in v):.1f}")
print("| operation | " + " | ".join(f"{n} ({runs[n][0]['corename']})" for n in runs) + " |")
print("|---|" + "---|" * len(runs))
for op in runs["scipy"][0]["results"]:
    unit = "ms" if "sges" in op else "gflops"
    cells = [statistics.median(x["results"][op][unit] for x in runs[n]) for n in runs]
    print(f"| {op} ({'ms' if unit == 'ms' else 'GFLOP/s'}) | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
PY

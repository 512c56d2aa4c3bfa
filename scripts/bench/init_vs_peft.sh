#!/usr/bin/env bash
# PiSSA initialisation, side by side in one run: PEFT get_peft_model vs `pissa bench init`, on
# SmolLM2-135M (float32 Hugging Face directory made by `pissa convert-model`) and all-MiniLM-L6-v2,
# r = 16, decomposition only (loading timed separately). Results: .cache/bench/*.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
swift build -c release --product pissa >/dev/null
pissa=.build/release/pissa
mkdir -p .cache/bench
smol=.cache/bench/smollm2-f32
[ -f "$smol/model.safetensors" ] || $pissa convert-model --model "${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf" --out "$smol" >/dev/null
mini="${PISSA_CACHE:-.cache/assets}/all-MiniLM-L6-v2"
echo "== SmolLM2-135M, q,k,v,o,gate,up,down, r=16 =="
python3 scripts/bench/peft_init_bench.py "$smol" --rank 16 --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
  --modes pissa,pissa_niter_4 --repeats 3 --json .cache/bench/peft_init_smollm2.json | tail -8
$pissa bench init --model "$smol" --rank 16 --modes pissa,pissa_niter_4 --oversample 0,8 --repeats 3 --json > .cache/bench/pissa_init_smollm2.json
echo "== all-MiniLM-L6-v2, query,key,value,dense, r=16 =="
python3 scripts/bench/peft_init_bench.py "$mini" --rank 16 --targets query,key,value,dense \
  --modes pissa,pissa_niter_4 --repeats 3 --json .cache/bench/peft_init_minilm.json | tail -8
$pissa bench init --model "$mini" --rank 16 --targets query,key,value,dense --modes pissa,pissa_niter_4 --oversample 0,8 --repeats 3 --json > .cache/bench/pissa_init_minilm.json
echo "== SmolLM2-135M, whole \`pissa init\` command minus the same command with --init lora (3 alternating rounds) =="
python3 - "$pissa" "$smol" <<'PY'
import json, statistics, subprocess, sys, time, tempfile
sys.path.insert(0, "scripts/bench")
import machine
pissa, model = sys.argv[1], sys.argv[2]
times = {m: [] for m in ("lora", "pissa", "pissa_niter_4")}
for _ in range(3):
    for mode in times:
        with tempfile.TemporaryDirectory(dir=".cache/bench") as out:
            t = time.perf_counter()
            subprocess.run([pissa, "init", "--model", model, "--out", out + "/o", "--init", mode, "--rank", "16", "--alpha", "16",
                            "--targets", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"], check=True, capture_output=True)
            times[mode].append(time.perf_counter() - t)
med = {m: statistics.median(v) for m, v in times.items()}
out = {"seconds": times, "median": med, "minusLora": {m: med[m] - med["lora"] for m in ("pissa", "pissa_niter_4")},
       "machine": machine.record()}
json.dump(out, open(".cache/bench/pissa_init_command_smollm2.json", "w"), indent=1)
print(json.dumps(out["median"]), json.dumps(out["minusLora"]))
PY

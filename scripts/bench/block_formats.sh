#!/usr/bin/env bash
# Decoding from each ggml block format on a real model: SmolLM2-135M's Q4_1 GGUF re-quantised by
# llama.cpp's llama-quantize (scripts/bench/build_llamacpp.sh) to Q4_0, Q5_0, Q8_0, Q4_K_M
# (Q4_K and Q6_K where rows are whole 256-value super-blocks, Q5_0/Q8_0 fallbacks elsewhere) and
# Q6_K; for each file, `pissa generate` greedy from the blocks against `--float32` (the same
# file dequantised when loaded) on four prompts, and decode speed from the blocks.
# Results: .cache/bench/formats/summary.json and a table on standard output.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh smollm2 >/dev/null
swift build -c release --product pissa >/dev/null
llama="$(scripts/bench/build_llamacpp.sh)"
src="${PISSA_CACHE:-.cache/assets}/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
out=.cache/bench/formats && mkdir -p "$out"
for t in Q4_0 Q5_0 Q8_0 Q4_K_M Q6_K; do
  [ -f "$out/smollm2-$t.gguf" ] || "$llama/llama-quantize" --allow-requantize "$src" "$out/smollm2-$t.gguf" "$t" >/dev/null 2>&1
done
python3 - "$src" "$out" <<'PY'
import json, subprocess, sys, collections
sys.path.insert(0, "scripts/bench")
import machine
import gguf
src, out = sys.argv[1], sys.argv[2]
prompts = ["The capital of France is", "Tom has 3 boxes of 12 pencils and gives away 7. How many are left?",
           "To be, or not to be, that is the question:", "def fibonacci(n):"]
rows = []
for name in ["Q4_1 (original)", "Q4_0", "Q5_0", "Q8_0", "Q4_K_M", "Q6_K"]:
    path = src if name.startswith("Q4_1") else f"{out}/smollm2-{name}.gguf"
    types = collections.Counter(t.tensor_type.name for t in gguf.GGUFReader(path).tensors if len(t.shape) == 2)
    same, speeds = 0, []
    for p in prompts:
        run = lambda *extra: json.loads(subprocess.run([".build/release/pissa", "generate", "--model", path, "--prompt", p,
                                                        "--max-tokens", "48", "--json", *extra], capture_output=True, text=True, check=True).stdout)
        blocks, dense = run(), run("--float32")
        same += blocks["tokens"] == dense["tokens"]
        speeds.append(blocks["statistics"]["generatedTokens"] / blocks["statistics"]["decodeSeconds"])
    rows.append({"file": name, "matrix_types": dict(types), "prompts": len(prompts), "same_greedy_tokens": same,
                 "decode_tok_s_median": sorted(speeds)[len(speeds) // 2]})
json.dump({"results": rows, "machine": machine.record()}, open(f"{out}/summary.json", "w"), indent=1)
print("| GGUF | 2-D tensor types | prompts with the same 48 greedy tokens as float32 | decode tok/s from blocks (median) |")
print("|---|---|---|---|")
for r in rows:
    types = ", ".join(f"{k} {v}" for k, v in sorted(r["matrix_types"].items()))
    print(f"| {r['file']} | {types} | {r['same_greedy_tokens']} of {r['prompts']} | {r['decode_tok_s_median']:.0f} |")
PY

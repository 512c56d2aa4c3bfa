#!/usr/bin/env bash
# The main job on the default real model: installs what it needs, builds the tool in release,
# and writes a PiSSA start (residual model + PEFT adapter) to runs/.
#
# For now the default is all-MiniLM-L6-v2, the full-precision safetensors model that `pissa init`
# reads; SmolLM2-135M (GGUF) becomes the default once GGUF input lands.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product pissa
cache="${PISSA_CACHE:-$PWD/.cache/assets}"
out="${1:-runs/minilm-pissa-r16}"
.build/release/pissa init --model "$cache/all-MiniLM-L6-v2" --out "$out" \
  --targets query,key,value,dense --rank 16 --init pissa_niter_4 --seed 0 --check
echo "residual model in $out, adapter in $out/pissa_init"

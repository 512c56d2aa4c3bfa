#!/usr/bin/env bash
# End to end with PEFT: pissa init (residual + pissa_init) → pissa train from that adapter on
# generated math → PEFT loads the residual model and the trained adapter and its masked loss on
# held-out problems equals `pissa eval`'s. Needs torch, transformers, peft.
#
#   scripts/reference/check_trained_adapter.sh [WORK] [MODEL]     (MODEL: default SmolLM2; an HF
#   directory, e.g. a `pissa convert-model` of the Gemma 3 GGUF). PISSA_BIN: a built pissa to use.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${PISSA_BIN:-}" ]; then swift build -c release --product pissa >/dev/null; fi
pissa="${PISSA_BIN:-.build/release/pissa}"
work="${1:-/tmp/pissa-peft-check}"
model=()
[ -n "${2:-}" ] && model=(--model "$2")
rm -rf "$work" && mkdir -p "$work"
$pissa data math --train 200 --test 16 --seed 1 --out "$work/data" >/dev/null
$pissa init "${model[@]}" --out "$work/residual" --rank 16 --init pissa_niter_4 >/dev/null
$pissa train --model "$work/residual" --adapter-path "$work/residual/pissa_init" --data "$work/data/train.jsonl" \
  --out "$work/run" --steps 30 --lr 2e-4 --batch-size 4 --max-seq-len 128 >/dev/null 2>&1
$pissa eval --model "$work/residual" --adapter "$work/run/adapter" --data "$work/data/test.jsonl" --limit 16 --batch-size 1 --json > "$work/eval.json"
python3 scripts/reference/check_trained_adapter.py "$work/residual" "$work/run/adapter" "$work/data/test.jsonl" "$work/eval.json" --limit 16

#!/usr/bin/env bash
# Every command on a tiny random model of each family, checked against transformers and PEFT.
#
#     scripts/reference/check_family_commands.sh [WORK_DIR] [family ...]
#
# Families: those of make_family_fixtures.py but gemma3 (default: all of them). For each, on a
# model make_family_cli_models.py makes (the tiny_trainable tokenizer, the fixture's block):
#   init     --init pissa, pissa_niter_4, lora, gaussian; --quant nf4 with pissa and loftq;
#            PEFT reloads the float32 starts on the residual and gives the original logits
#            (check_peft_roundtrip.py, 1e-4)
#   train    an adapter from the PiSSA start (then `eval` of it, and PEFT's masked NLL on the
#            residual with the trained adapter equals pissa eval's: check_trained_adapter.py, 1e-4),
#            and --method full (its RUN/model loads in transformers: eval there vs pissa eval)
#   convert  the trained PiSSA adapter to a LoRA on the original model (check_converted_lora.py)
#   merge    that LoRA into the original; transformers loads the merge and matches PEFT (check_merged_model.py)
#   export   gguf-lora (check_gguf_lora.py: llama.cpp's names and row order, the update s·B·A),
#            for the families llama.cpp has an architecture for; mlx (written; for Mixtral's experts,
#            which mlx-lm stacks, refused by name)
#   GGUF     written by gguf-py as llama.cpp does (make_family_gguf.py --model): eval equals the HF
#            model's, convert-model loads in transformers with the original's logits, init from it
#   generate greedy tokens with the trained adapter; compare: lora vs pissa, 1 seed, 4 steps
# Prints one line per check; exits 1 if any failed. Needs torch, transformers, peft, gguf.
set -uo pipefail
cd "$(dirname "$0")/../.."
work="${1:-/tmp/pissa-family-commands}"
shift || true
families=("$@")
if [ ${#families[@]} -eq 0 ]; then families=(qwen2 qwen3 mistral llama3 phi3 mixtral); fi
pissa="${PISSA:-.build/release/pissa}"
[ -x "$pissa" ] || swift build -c release --product pissa >/dev/null
rm -rf "$work" && mkdir -p "$work"
python3 scripts/reference/make_family_cli_models.py "$work/models" "${families[@]}" >/dev/null 2>&1
data=Tests/Fixtures/tiny_trainable/train.jsonl
failed=0
check() {   # check LABEL COMMAND...: runs it, prints one line, keeps the log
  local label="$1"; shift
  local log="$work/logs/$(echo "$label" | tr ' /' '__').log"
  mkdir -p "$work/logs"
  if "$@" >"$log" 2>&1; then echo "ok    $label  $(grep -E 'relative difference|rel [0-9]|worst relative|NF4 weights' "$log" | tail -1)"
  else echo "FAIL  $label  (see $log)"; tail -3 "$log"; failed=1; fi
}
for f in "${families[@]}"; do
  m="$work/models/$f" w="$work/$f"
  mkdir -p "$w"
  for init in pissa pissa_niter_4 lora gaussian; do
    check "$f init $init" "$pissa" init --model "$m" --out "$w/init-$init" --rank 4 --init "$init"
    check "$f init $init: PEFT reloads it" python3 scripts/reference/check_peft_roundtrip.py "$m" "$w/init-$init"
  done
  check "$f init pissa --quant nf4" "$pissa" init --model "$m" --out "$w/init-qpissa" --rank 4 --init pissa --quant nf4
  check "$f init pissa --quant nf4 --dequantized" "$pissa" init --model "$m" --out "$w/init-qpissa-deq" --rank 4 --init pissa --quant nf4 --dequantized
  check "$f QPiSSA residual: bitsandbytes" python3 scripts/reference/check_nf4_residual.py "$w/init-qpissa" "$w/init-qpissa-deq"
  check "$f init loftq --quant nf4" "$pissa" init --model "$m" --out "$w/init-loftq" --rank 4 --init loftq --quant nf4
  check "$f train adapter" "$pissa" train --model "$w/init-pissa" --adapter-path "$w/init-pissa/pissa_init" --data "$data" \
    --out "$w/run" --steps 4 --lr 1e-2 --batch-size 4 --max-seq-len 64
  check "$f eval trained adapter" sh -c "'$pissa' eval --model '$w/init-pissa' --adapter '$w/run/adapter' --data '$data' --limit 8 --batch-size 1 --json > '$w/eval.json'"
  check "$f trained adapter: PEFT NLL = pissa eval" python3 scripts/reference/check_trained_adapter.py "$w/init-pissa" "$w/run/adapter" "$data" "$w/eval.json" --limit 8
  check "$f train full" "$pissa" train --model "$m" --method full --data "$data" --out "$w/full" --steps 2 --lr 1e-3 --batch-size 4 --max-seq-len 64
  check "$f eval full model" sh -c "'$pissa' eval --model '$w/full/model' --data '$data' --limit 8 --batch-size 1 --json > '$w/eval-full.json'"
  check "$f full model: transformers NLL = pissa eval" python3 scripts/reference/check_trained_adapter.py "$w/full/model" none "$data" "$w/eval-full.json" --limit 8
  check "$f convert" "$pissa" convert --initial "$w/init-pissa/pissa_init" --adapter "$w/run/adapter" --out "$w/converted"
  check "$f converted LoRA: PEFT on the original" python3 scripts/reference/check_converted_lora.py "$m" "$w/run" --converted "$w/converted" --residual "$w/init-pissa"
  check "$f merge" "$pissa" merge --model "$m" --adapter "$w/converted" --out "$w/merged"
  check "$f merged: transformers = PEFT" python3 scripts/reference/check_merged_model.py "$w/merged" "$m" "$w/converted"
  if python3 -c "import json,sys;sys.exit(json.load(open('$m/config.json'))['model_type'] not in ('llama','mistral','qwen2','qwen3','phi3','mixtral'))"; then
    check "$f export gguf-lora" "$pissa" export --model "$m" --adapter "$w/converted" --format gguf-lora --out "$w/adapter.gguf"
    heads=$(python3 -c "import json;c=json.load(open('$m/config.json'));print(c['num_attention_heads'], c.get('num_key_value_heads') or c['num_attention_heads'])")
    check "$f gguf-lora: llama.cpp layout" python3 scripts/reference/check_gguf_lora.py "$w/converted" "$w/adapter.gguf" --heads ${heads% *} --kv-heads ${heads#* }
  fi
  if [ "$f" = mixtral ]; then   # mlx-lm stacks the experts (SwitchLinear): refused by name
    check "$f export mlx refused" sh -c "if '$pissa' export --model '$m' --adapter '$w/converted' --format mlx --out '$w/mlx' 2>'$w/mlx.err'; then exit 1; fi; cat '$w/mlx.err'; grep -q 'mlx-lm stacks a mixture' '$w/mlx.err'"
  else
    check "$f export mlx" "$pissa" export --model "$m" --adapter "$w/converted" --format mlx --out "$w/mlx"
  fi
  # GGUF as llama.cpp writes the family (gguf-py), where llama.cpp has its architecture: eval,
  # convert-model (transformers loads it and computes the original's logits) and init from it.
  # llama.cpp keeps no windows for qwen2 (nor Mistral at all) and Llama 3.1's scaling only as
  # rope_freqs.weight, which convert-model refuses by name.
  case "$f" in qwen2|qwen3|llama3|phi3|mixtral)
    check "$f GGUF written by gguf-py" python3 scripts/reference/make_family_gguf.py --model "$m" "$w/model.gguf"
    check "$f eval GGUF" sh -c "'$pissa' eval --model '$w/model.gguf' --data '$data' --limit 8 --batch-size 1 --json > '$w/eval-gguf.json'"
    check "$f eval HF" sh -c "'$pissa' eval --model '$m' --data '$data' --limit 8 --batch-size 1 --json > '$w/eval-hf.json'"
    if [ "$f" != qwen2 ]; then
      check "$f GGUF NLL = HF NLL" python3 -c "import json,sys; a,b=(json.load(open('$w/eval-'+k+'.json'))['nll'] for k in ('gguf','hf')); print(f'relative difference {abs(a-b)/b:.2e}'); sys.exit(abs(a-b)/b > 1e-5)"
    fi
    if [ "$f" = llama3 ]; then
      check "$f convert-model refused (rope_freqs.weight)" sh -c "if '$pissa' convert-model --model '$w/model.gguf' --out '$w/conv' 2>'$w/conv.err'; then exit 1; fi; cat '$w/conv.err'; grep -q rope_freqs '$w/conv.err'"
    else
      check "$f convert-model" "$pissa" convert-model --model "$w/model.gguf" --out "$w/conv"
      if [ "$f" != qwen2 ]; then
        check "$f converted: transformers = original" python3 scripts/reference/check_same_model.py "$w/conv" "$m"
      fi
      check "$f init from GGUF" "$pissa" init --model "$w/model.gguf" --out "$w/init-gguf" --rank 4 --init pissa
      check "$f init from GGUF: PEFT reloads it" python3 scripts/reference/check_peft_roundtrip.py "$w/conv" "$w/init-gguf"
    fi ;;
  esac
  check "$f generate" "$pissa" generate --model "$w/init-pissa" --adapter "$w/run/adapter" --prompt "Question: Tom has 3 apples" --max-tokens 8 --temperature 0
  check "$f compare" "$pissa" compare --model "$m" --data "$data" --methods lora,pissa --seeds 0 --rank 4 --steps 4 --batch-size 4 --max-seq-len 64 --out "$w/compare"
done
exit $failed

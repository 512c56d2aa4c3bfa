#!/usr/bin/env python3
"""Check a Hugging Face directory written by `pissa convert-model` against transformers reading the GGUF.

    python3 scripts/reference/check_converted_model.py DIR GGUF [--reference-tokenizer FILE|gguf|none] [--tol T]

1. Tokenizer. DIR's tokenizer (AutoTokenizer) must give the same ids as the `tokenizers` library running
   the reference tokenizer.json (default: Tests/TokenizerTests/Fixtures/smollm2_tokenizer.json, the real
   SmolLM2 one) on the prompts and on pre-tokenisation edge cases (digits one by one, numbers outside ASCII,
   runs of spaces). transformers' own GGUF tokenizer is not the reference: its conversion drops SmolLM2's
   Digits pre-tokenizer (tokenizer.ggml.pre = smollm); its mismatches are printed for information only.
   `--reference-tokenizer gguf` makes transformers' GGUF tokenizer the reference (Gemma 3: its
   SentencePiece conversion is Hugging Face's own tokenizer for that file).
   DIR's chat template and bos/eos/pad tokens must equal the GGUF's (as transformers reads them).
2. Weights. Every tensor of DIR (loaded in float32) against transformers' dequantised GGUF state dict:
   max |difference| (0 expected for an F32 export; F16/BF16 exports are rounded).
3. Logits on 3 prompts (DIR's token ids fed to both models, float32): max |difference| and the relative
   difference max|difference| / max|reference logit|, and whether the greedy next tokens agree.

Exits 1 if a token id, the chat template or a special token differs, or if the relative logit difference
exceeds --tol (default 1e-4 for a float32 export, 2e-2 for bfloat16/float16).
"""
import argparse
import json
import os
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(REPO, "Tests", "TokenizerTests", "Fixtures", "smollm2_tokenizer.json")

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhat is 12 * 34? Answer with the number only.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
]
EDGE_CASES = [
    " 1 2  3", " ½ ² ３ ٣", "x 2023年 ⅷ", "In 1969, 3 astronauts flew 384,400 km.",
    "naïve café — Größe, 東京タワー, привет мир 🤗", "I'll've we'd THEY'RE   \r\n trailing ",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="the converted Hugging Face model directory")
    ap.add_argument("gguf", help="the GGUF file it was converted from")
    ap.add_argument("--reference-tokenizer", default=FIXTURE,
                    help="tokenizer.json whose ids DIR's tokenizer must reproduce ('none' to skip)")
    ap.add_argument("--tol", type=float, default=None, help="relative logit tolerance")
    args = ap.parse_args()

    with open(os.path.join(args.dir, "config.json")) as f:
        dtype_name = json.load(f).get("torch_dtype", "float32")
    tol = args.tol if args.tol is not None else (1e-4 if dtype_name == "float32" else 2e-2)
    gdir, gname = os.path.split(os.path.abspath(args.gguf))
    failures = []

    # 1. Tokenizer.
    tok = AutoTokenizer.from_pretrained(args.dir)
    gtok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    print(f"tokenizer: {type(tok).__name__}, pre-tokenizer {tok.backend_tokenizer.pre_tokenizer}")
    texts = PROMPTS + EDGE_CASES
    ours = [tok(t, add_special_tokens=True)["input_ids"] for t in texts]
    if args.reference_tokenizer == "gguf":
        bad = [t for t, ids in zip(texts, ours) if ids != gtok(t, add_special_tokens=True)["input_ids"]]
        print(f"token ids vs transformers' GGUF tokenizer: {len(texts) - len(bad)}/{len(texts)} texts equal")
        failures += [f"token ids differ from transformers' GGUF tokenizer for {t!r}" for t in bad]
    elif args.reference_tokenizer != "none":
        ref = Tokenizer.from_file(args.reference_tokenizer)
        bad = [t for t, ids in zip(texts, ours) if ids != ref.encode(t, add_special_tokens=True).ids]
        print(f"token ids vs {os.path.relpath(args.reference_tokenizer)}: {len(texts) - len(bad)}/{len(texts)} texts equal")
        failures += [f"token ids differ from the reference for {t!r}" for t in bad]
    gguf_bad = sum(ids != gtok(t, add_special_tokens=True)["input_ids"] for t, ids in zip(texts, ours))
    print(f"(for information) transformers' GGUF tokenizer differs on {gguf_bad}/{len(texts)} texts")
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        if getattr(tok, name) != getattr(gtok, name):
            failures.append(f"{name}: {getattr(tok, name)!r} here, {getattr(gtok, name)!r} in the GGUF")
    chat = [{"role": "user", "content": "Hi there"}]
    rendered = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    if gtok.chat_template is None:
        # The GGUF ships none (Gemma 3 270M): the export carries the family's template.
        print("(the GGUF has no chat template; the export carries the family's)")
    elif rendered != gtok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True):
        failures.append("the chat template renders differently from the GGUF's")
    print(f"chat template: {rendered!r}")

    # 2. Weights.
    model = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32).eval()
    reference = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32).eval()
    ours_sd, ref_sd = model.state_dict(), reference.state_dict()
    if set(ours_sd) != set(ref_sd):
        failures.append(f"state dict keys differ: {sorted(set(ours_sd) ^ set(ref_sd))}")
    worst = max(((ours_sd[k] - ref_sd[k]).abs().max().item(), k) for k in ours_sd if k in ref_sd)
    print(f"weights ({dtype_name}): {len(ours_sd)} tensors, max |difference| {worst[0]:.3e} ({worst[1]})")

    # 3. Logits.
    rel_worst = 0.0
    with torch.no_grad():
        for text in PROMPTS:
            ids = torch.tensor([tok(text, add_special_tokens=True)["input_ids"]])
            a, b = model(ids).logits[0], reference(ids).logits[0]
            diff = (a - b).abs().max().item()
            rel = diff / b.abs().max().item()
            rel_worst = max(rel_worst, rel)
            same_top = bool((a.argmax(-1) == b.argmax(-1)).all())
            print(f"logits {text[:32]!r:36} {ids.shape[1]:3d} tokens: max |diff| {diff:.3e}, "
                  f"relative {rel:.3e}, greedy tokens {'equal' if same_top else 'DIFFER'}")
    if rel_worst > tol:
        failures.append(f"relative logit difference {rel_worst:.3e} exceeds {tol:.0e}")

    for f in failures:
        print("FAIL:", f)
    print("FAILED" if failures else f"OK (relative logit difference {rel_worst:.3e} <= {tol:.0e})")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

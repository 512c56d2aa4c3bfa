#!/usr/bin/env python3
"""Check `pissa merge` with transformers and PEFT: the merged directory must load with
AutoModelForCausalLM / AutoTokenizer and compute what the model + adapter compute in PEFT.

    python3 scripts/reference/check_merged_model.py MERGED_DIR MODEL_DIR ADAPTER_DIR [--tol 1e-5]

MODEL_DIR is the Hugging Face model the adapter applies to (for a GGUF: `pissa convert-model`).
Prints max |diff| and ||diff||_F / ||ref||_F of the logits on seeded random token ids (also of the
model without the adapter, to show the adapter matters) and the merged tokenizer's ids for a test
string beside MODEL_DIR's; exits 1 if the relative difference exceeds --tol (float32 merge; use about
1e-2 for bf16/f16).
"""
import argparse
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("merged_dir")
    ap.add_argument("model_dir")
    ap.add_argument("adapter_dir")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--seq", type=int, default=24)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    merged = AutoModelForCausalLM.from_pretrained(args.merged_dir, dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    ids = torch.randint(0, base.config.vocab_size, (args.batch, args.seq))
    plain = logits(base, ids)
    reference = logits(PeftModel.from_pretrained(base, args.adapter_dir).eval(), ids)
    got = logits(merged, ids)
    d = lambda a, b: (((a - b).norm() / b.norm()).item(), (a - b).abs().max().item())
    print("model without adapter vs model + adapter (PEFT): rel %.3e  max|d| %.3e" % d(plain, reference))
    r, m = d(got, reference)
    print("merged (transformers) vs model + adapter (PEFT):  rel %.3e  max|d| %.3e  (tol %g)" % (r, m, args.tol))
    text = "Question: Tom has 3 apples and buys 5 more."
    t_merged, t_base = AutoTokenizer.from_pretrained(args.merged_dir), AutoTokenizer.from_pretrained(args.model_dir)
    same = t_merged(text)["input_ids"] == t_base(text)["input_ids"]
    print(f"tokenizer of the merged directory: {'same ids as the model' if same else 'DIFFERENT ids'}")
    if r > args.tol or not same:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()

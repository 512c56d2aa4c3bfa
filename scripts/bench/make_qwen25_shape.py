#!/usr/bin/env python3
"""A Qwen2.5-0.5B-shaped model with random weights, for the training-speed benchmark (BENCHMARKS.md).

    python3 scripts/bench/make_qwen25_shape.py OUT_DIR

Qwen2ForCausalLM with Qwen2.5-0.5B's sizes: 24 layers, hidden 896, MLP 4864, 14 query heads on 2
KV heads (head_dim 64), q/k/v biases, vocabulary 151,936, tied head, rope_theta 10⁶; weights as
transformers initialises them (seed 0), saved in float32 (≈ 2 GB), with the tiny_trainable
tokenizer files (the benchmark feeds token ids; `pissa` needs a tokenizer to open a model).
"""
import os
import shutil
import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(out):
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                         rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, use_sliding_window=False, bos_token_id=151643, eos_token_id=151645)
    model = Qwen2ForCausalLM(config).float()
    model.save_pretrained(out, safe_serialization=True, max_shard_size="1GB")
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(ROOT, "Tests/Fixtures/tiny_trainable", name), os.path.join(out, name))
    print(out, sum(p.numel() for p in model.parameters()), "parameters")


if __name__ == "__main__":
    main(sys.argv[1])

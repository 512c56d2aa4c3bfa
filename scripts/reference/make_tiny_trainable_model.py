#!/usr/bin/env python3
"""A tiny random Llama with a real byte-level BPE tokenizer, for end-to-end training tests
(train, resume, CLI) that must run in seconds.

    python3 scripts/reference/make_tiny_trainable_model.py

Writes Tests/Fixtures/tiny_trainable/: config.json, model.safetensors (float32; hidden 32,
intermediate 48, 2 layers, 4 heads, 2 KV heads, tied embeddings, vocab 320), tokenizer.json
(ByteLevel BPE trained with `tokenizers` on a few lines of text, with SmolLM2's special tokens
<|endoftext|>, <|im_start|>, <|im_end|> as ids 0–2 and its pre-tokenizer: individual digits then
ByteLevel), tokenizer_config.json (eos/pad <|im_end|>, ChatML template), train.jsonl (math-style
completions).
"""
import json
import os

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/Fixtures/tiny_trainable")

TEXT = [
    "Question: Tom has 3 apples and buys 5 more. How many apples does he have?\nAnswer: 3 + 5 = 8\n#### 8",
    "Question: A box holds 12 pens. How many pens are in 4 boxes?\nAnswer: 12 * 4 = 48\n#### 48",
    "The quick brown fox jumps over the lazy dog. To be, or not to be, that is the question.",
]


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TEXT * 20, trainer)
    tok.save(os.path.join(OUT, "tokenizer.json"))
    vocab = tok.get_vocab_size()
    template = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "add_eos_token": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                   "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>", "chat_template": template,
                   "model_max_length": 256, "tokenizer_class": "GPT2Tokenizer"}, f, indent=2)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=8, vocab_size=vocab, max_position_embeddings=256,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(config).float()
    model.save_pretrained(OUT, safe_serialization=True)
    with open(os.path.join(OUT, "train.jsonl"), "w") as f:
        for i in range(24):
            a, b = 3 + i, 5 + 2 * i
            f.write(json.dumps({"prompt": f"Question: Tom has {a} apples and buys {b} more. How many apples does he have?\nAnswer:",
                                "completion": f" {a} + {b} = {a + b}\n#### {a + b}"}) + "\n")
    print("vocab", vocab)


if __name__ == "__main__":
    main()

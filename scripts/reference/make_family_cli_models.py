#!/usr/bin/env python3
"""Tiny random models of each family that every `pissa` command can run on: the block of
make_family_fixtures.py's model (same features: biases, q/k norms, windows, rope scaling, fused
projections, experts) at the vocabulary of Tests/Fixtures/tiny_trainable's byte-level BPE
tokenizer, whose tokenizer files they share.

    python3 scripts/reference/make_family_cli_models.py OUT_DIR [family ...]

Writes OUT_DIR/<family>/ (config.json, model.safetensors in float32, tokenizer.json,
tokenizer_config.json) for scripts/reference/check_family_commands.sh. Nothing is committed.
"""
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_family_fixtures as fixtures  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKENIZER = os.path.join(ROOT, "Tests/Fixtures/tiny_trainable")


def main(out, families):
    fixtures.VOCAB = 320   # the tiny_trainable tokenizer's
    for family in families:
        torch.manual_seed(0)
        model = fixtures.FAMILIES[family]().float()
        model.config.max_position_embeddings = 256
        fixtures.randomize(model)
        directory = os.path.join(out, family)
        model.save_pretrained(directory, safe_serialization=True)
        for name in ["tokenizer.json", "tokenizer_config.json"]:
            shutil.copy(os.path.join(TOKENIZER, name), os.path.join(directory, name))
        print(family, "->", directory)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or [f for f in fixtures.FAMILIES if f != "gemma3"])

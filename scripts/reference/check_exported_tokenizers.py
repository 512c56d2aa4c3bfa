#!/usr/bin/env python3
"""Loads the tokenizer.json / tokenizer_config.json files pissa exports with Hugging Face
(`tokenizers.Tokenizer.from_file` and `transformers.AutoTokenizer`) and checks that they give the
ids Tests/TokenizerTests/Fixtures/family_tokenizer_cases.json expects, on every text.

    PISSA_KEEP_TOKENIZER_EXPORTS=/tmp/exports swift test --filter 'FamilyTokenizerTests|SentencePieceTests'
    python3 scripts/reference/check_exported_tokenizers.py /tmp/exports

The tests write one folder per tokenizer (gemma, gemma_small, derived, llama3, qwen) there.
"""
import json
import os
import sys

from tokenizers import Tokenizer
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(ROOT, "Tests", "TokenizerTests", "Fixtures", "family_tokenizer_cases.json")


def main():
    exports = sys.argv[1]
    cases = json.load(open(CASES, encoding="utf-8"))
    failures = 0
    for label in sorted(os.listdir(exports)):
        family = cases["gemma_small" if label == "derived" else label]
        path = os.path.join(exports, label)
        raw = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        auto = AutoTokenizer.from_pretrained(path)
        bad = 0
        for text, expected in zip(cases["texts"], family["encode"]):
            ids = raw.encode(text, add_special_tokens=False).ids
            auto_ids = auto(text, add_special_tokens=False).input_ids
            if ids != expected["ids"] or auto_ids != expected["ids"] or auto.decode(ids) != expected["decoded"]:
                bad += 1
                print(f"{label}: {text!r}: tokenizers {ids[:12]}…, AutoTokenizer {auto_ids[:12]}…, expected {expected['ids'][:12]}…")
        with_special = auto("Hello").input_ids
        if with_special != family["with_special_tokens"]:
            bad += 1
            print(f"{label}: 'Hello' with special tokens: {with_special}, expected {family['with_special_tokens']}")
        print(f"{label}: {type(auto).__name__}, {len(cases['texts'])} texts, {bad} mismatches")
        failures += bad
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

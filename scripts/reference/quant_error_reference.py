#!/usr/bin/env python3
"""PyTorch + bitsandbytes reference for `pissa quant-error` on SmolLM2-135M-Instruct.

    python3 scripts/reference/quant_error_reference.py [--layers 0,15] [--rank 16] [--iters 1,5] [--out FILE]

Weights: the Q4_1 GGUF dequantised to float32 with the gguf package (GGUF stores q/k rows permuted
for its rotary layout; a row permutation of whole 576-wide rows, nine NF4 blocks each, changes
neither the NF4 error nor any singular value). NF4: bitsandbytes.functional.quantize_4bit /
dequantize_4bit (blocksize 64, CPU). QPiSSA: the reference utils/init_qpissa.py loop, full
float32 torch.linalg.svd, alpha = r: res = W; T times { U,S,Vh = svd(res); L = U_r sqrt(S_r);
R = sqrt(S_r) Vh_r; Q = nf4(W - L R); res = W - deq(Q) }; error E = W - deq(Q) - L R.
Nuclear norm = sum of torch.linalg.svdvals(E) (float64 accumulation); Frobenius = ||E||_F.
Writes the per-module errors as JSON (default Tests/RealModelTests/Fixtures/quant_error_smollm2.json).
"""
import argparse
import json
import os

import numpy as np
import torch
import bitsandbytes.functional as F
from gguf import GGUFReader
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GGUF = os.path.join(os.environ.get("PISSA_CACHE", os.path.join(ROOT, ".cache", "assets")),
                    "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf")
# GGUF tensor name -> Hugging Face module type.
TYPES = {"attn_q": "q_proj", "attn_k": "k_proj", "attn_v": "v_proj", "attn_output": "o_proj",
         "ffn_gate": "gate_proj", "ffn_up": "up_proj", "ffn_down": "down_proj"}
HF_PATH = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def nf4(w):
    q, state = F.quantize_4bit(w.contiguous(), blocksize=64, quant_type="nf4")
    return F.dequantize_4bit(q, state).to(torch.float32)


def errors(e):
    s = torch.linalg.svdvals(e)
    return {"nuclear": float(s.double().sum()), "frobenius": float(torch.linalg.norm(e).double())}


def qpissa(w, r, iters):
    res = w
    for _ in range(iters):
        u, s, vh = torch.linalg.svd(res, full_matrices=False)
        L = u[:, :r] * s[:r].sqrt()
        R = s[:r].sqrt()[:, None] * vh[:r]
        deq = nf4(w - L @ R)
        res = w - deq
    return errors(w - deq - L @ R)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", default="0,15")
    p.add_argument("--rank", default="16")
    p.add_argument("--iters", default="1,5")
    p.add_argument("--out", default=os.path.join(ROOT, "Tests", "RealModelTests", "Fixtures", "quant_error_smollm2.json"))
    a = p.parse_args()
    layers = [int(x) for x in a.layers.split(",")]
    ranks = [int(x) for x in a.rank.split(",")]
    iters = [int(x) for x in a.iters.split(",")]
    torch.set_num_threads(2)
    reader = GGUFReader(GGUF)
    modules = []
    for t in reader.tensors:
        parts = t.name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or int(parts[1]) not in layers or parts[2] not in TYPES:
            continue
        w = dequantize(t.data, t.tensor_type).reshape(int(t.shape[1]), int(t.shape[0]))
        w = torch.from_numpy(np.ascontiguousarray(w)).to(torch.float32)
        kind = TYPES[parts[2]]
        entry = {"module": f"model.layers.{parts[1]}.{HF_PATH[kind]}.{kind}", "type": kind, "shape": list(w.shape),
                 "qlora": errors(w - nf4(w)), "entries": []}
        for r in ranks:
            for it in iters:
                entry["entries"].append({"method": "qpissa", "rank": r, "iterations": it, "error": qpissa(w, r, it)})
        modules.append(entry)
        e = entry["entries"]
        print(entry["module"], f"qlora {entry['qlora']['nuclear']:.3f}", " ".join(f"r{x['rank']}T{x['iterations']} {x['error']['nuclear']:.3f}" for x in e))
    meta = {"script": "scripts/reference/quant_error_reference.py", "torch": torch.__version__,
            "bitsandbytes": __import__("bitsandbytes").__version__, "layers": layers, "ranks": ranks, "iterations": iters}
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "modules": modules}, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()

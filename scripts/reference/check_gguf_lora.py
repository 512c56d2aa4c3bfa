#!/usr/bin/env python3
"""Check a `pissa export --format gguf-lora` file with the `gguf` Python package (llama.cpp's gguf-py).

    python3 scripts/reference/check_gguf_lora.py ADAPTER_DIR ADAPTER.gguf [--base BASE.gguf] [--heads H --kv-heads K]
                                                 [--reference REF.gguf]

Reads ADAPTER.gguf with gguf.GGUFReader and checks what llama.cpp's llama_adapter_lora_init checks
(general.type = adapter, adapter.type = lora, general.architecture, a lora_a / lora_b pair per
module with lora_a ne = [in, r], lora_b ne = [r, out]); then, for every module of the PEFT adapter
ADAPTER_DIR, rebuilds the update llama.cpp applies, (alpha / r) * lora_b @ lora_a in GGUF row order,
undoes llama.cpp's q/k row permutation (convert_hf_to_gguf.py LlamaModel.permute; `llama` adapters only:
Llama, Mistral, Mixtral) and compares with
PEFT's s * B @ A. With --base, the heads come from the base GGUF and every lora tensor must name a
base tensor of matching shape. With --reference (the file llama.cpp's own converter writes from the same
adapter: `python3 convert_lora_to_gguf.py --base HF_DIR --outtype f32 --outfile REF.gguf ADAPTER_DIR`), every
tensor must have the same name, ne and values, and adapter.lora.alpha must agree. Exits 1 on any mismatch.
"""
import argparse
import json
import math
import os
import sys

import gguf
import numpy as np
from gguf import GGUFReader
from safetensors.numpy import load_file


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    v = f.parts[f.data[0]]
    return bytes(v).decode() if v.dtype == np.uint8 else v.tolist()[0]


def permute(w, n_head):
    """llama.cpp's converter (HF -> GGUF row order) for q (n_head) and k (n_kv_head)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("adapter_dir")
    ap.add_argument("gguf_file")
    ap.add_argument("--base")
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--reference")
    args = ap.parse_args()
    r = GGUFReader(args.gguf_file)
    meta = {k: field(r, k) for k in ["general.architecture", "general.type", "adapter.type", "adapter.lora.alpha"]}
    print("metadata:", meta)
    problems = []
    if meta["general.type"] != "adapter" or meta["adapter.type"] != "lora" or not meta["adapter.lora.alpha"]:
        problems.append("metadata is not a llama.cpp LoRA adapter")
    heads, kv_heads, base_shapes = args.heads, args.kv_heads, {}
    if args.base:
        b = GGUFReader(args.base)
        arch = field(b, "general.architecture")
        if arch != meta["general.architecture"]:
            problems.append(f"architecture {meta['general.architecture']} != base {arch}")
        heads, kv_heads = field(b, f"{arch}.attention.head_count"), field(b, f"{arch}.attention.head_count_kv")
        base_shapes = {t.name: [int(x) for x in t.shape] for t in b.tensors}
    tensors = {t.name: t for t in r.tensors}
    cfg = json.load(open(os.path.join(args.adapter_dir, "adapter_config.json")))
    peft = load_file(os.path.join(args.adapter_dir, "adapter_model.safetensors"))
    # llama.cpp's own names (gguf-py's tensor_mapping.py) for the adapter's architecture; only the
    # Llama-converted architecture (llama: Llama, Mistral, Mixtral) permutes q and k rows.
    arch_name = meta["general.architecture"]
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name)
    name_map = gguf.get_tensor_name_map(arch, 4096)
    permuted = arch_name == "llama"
    alpha, worst, n = float(meta["adapter.lora.alpha"]), 0.0, 0
    for key, a in peft.items():
        if not key.endswith(".lora_A.weight"):
            continue
        path = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        layer, module = path.split(".")[2], ".".join(path.split(".")[3:])
        expert = None
        if ".experts." in path:   # Mixtral: llama.cpp stacks each layer's experts: .experts.E.wK -> ffn_*_exps[E]
            stem, rest = path.split(".experts.")
            expert, which = int(rest.split(".")[0]), rest.split(".")[1]
            path = f"{stem}.experts.{which}"
        base = (name_map.get_name(path) or f"(no llama.cpp name for {path})") + ".weight"
        ta, tb = tensors.get(base + ".lora_a"), tensors.get(base + ".lora_b")
        if ta is None or tb is None:
            problems.append(f"{base}: lora_a / lora_b missing")
            continue
        A, B = a.astype(np.float32), peft[key.replace("lora_A", "lora_B")].astype(np.float32)
        rank = A.shape[0]
        stacked = [] if expert is None else [int(ta.shape[2])]
        if list(ta.shape) != [A.shape[1], rank] + stacked or list(tb.shape) != [rank, B.shape[0]] + stacked:
            problems.append(f"{base}: ne lora_a {list(ta.shape)} lora_b {list(tb.shape)}; expected [in, r(, E)] / [r, out(, E)]")
            continue
        if base_shapes and base_shapes.get(base) != [A.shape[1], B.shape[0]] + stacked:
            problems.append(f"{base}: base tensor ne {base_shapes.get(base)} does not match")
        e = expert or 0
        la = np.asarray(ta.data, dtype=np.float32).reshape(-1, rank, A.shape[1])[e]
        lb = np.asarray(tb.data, dtype=np.float32).reshape(-1, B.shape[0], rank)[e]
        delta_gguf = (alpha / rank) * lb @ la  # what llama.cpp adds, in GGUF row order
        s = cfg["lora_alpha"] / (math.sqrt(rank) if cfg.get("use_rslora") else rank)
        expected = s * B @ A
        if permuted and module in ("self_attn.q_proj", "self_attn.k_proj"):
            h = heads if module == "self_attn.q_proj" else kv_heads
            if h is None:
                problems.append("q/k present: pass --base or --heads/--kv-heads")
                break
            expected = permute(expected, h)
        err = np.linalg.norm(delta_gguf - expected) / max(np.linalg.norm(expected), 1e-30)
        worst, n = max(worst, err), n + 1
    print(f"{n} modules compared; worst relative difference of (alpha/r)*lora_b@lora_a vs PEFT s*B@A (permuted): {worst:.3e}")
    if args.reference:
        ref = GGUFReader(args.reference)
        ref_tensors = {t.name: t for t in ref.tensors}
        if set(ref_tensors) != set(tensors):
            problems.append(f"tensor names differ from the reference: only here {sorted(set(tensors) - set(ref_tensors))[:4]}, "
                            f"only in the reference {sorted(set(ref_tensors) - set(tensors))[:4]}")
        worst_ref = 0.0
        for name in set(ref_tensors) & set(tensors):
            a, b = ref_tensors[name], tensors[name]
            if list(a.shape) != list(b.shape):
                problems.append(f"{name}: ne {list(b.shape)}, reference {list(a.shape)}")
                continue
            x, y = np.asarray(a.data, dtype=np.float32), np.asarray(b.data, dtype=np.float32)
            worst_ref = max(worst_ref, float(np.abs(x - y).max()))
        if field(ref, "adapter.lora.alpha") != meta["adapter.lora.alpha"]:
            problems.append(f"alpha {meta['adapter.lora.alpha']}, reference {field(ref, 'adapter.lora.alpha')}")
        print(f"against llama.cpp's convert_lora_to_gguf.py output: {len(ref_tensors)} tensors, max |difference| {worst_ref:.3e}")
        if worst_ref != 0.0:
            problems.append("values differ from the reference")
    if worst > 1e-5:
        problems.append(f"update differs: {worst:.3e}")
    for p in problems:
        print("PROBLEM:", p)
    print("FAIL" if problems else "OK")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

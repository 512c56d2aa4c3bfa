#!/usr/bin/env python3
"""Write a synthetic bfloat16 model with LLaMA-2-7B shapes, sharded like transformers' save_pretrained.

    python3 scripts/bench/make_synthetic_llama7b.py OUT_DIR [--layers 32] [--seed 0]
        [--shard-size 2000000000] [--rank-k 64] [--s0 40] [--decay 0.8] [--noise-std 0.02]

Shapes (out x in): q, k, v, o 4096x4096; gate, up 11008x4096; down 4096x11008; embed_tokens and lm_head
32000x4096; input_layernorm, post_attention_layernorm, model.norm 4096. Full size (32 layers): 6.74 G
parameters, 13.5 GB. Only numpy is needed (no torch).

Each targeted linear weight (q, k, v, o, gate, up, down):
    W = U diag(s) V^T + N,   U ~ N(0, 1/out) [out x k], V ~ N(0, 1/in) [in x k] (nearly orthonormal columns),
    s_i = s0 * i^-decay (i = 1..k, defaults k = 64, s0 = 40, decay 0.8), N ~ N(0, noise_std^2).
With the defaults the noise's largest singular value is about noise_std * (sqrt(out) + sqrt(in)) = 2.6 for
4096x4096, so roughly the top 30-40 singular values stand out of a Marchenko-Pastur bulk, like a trained LLM.
embed_tokens / lm_head: N(0, 0.02^2). Norm weights: 1 + 0.05 * N(0, 1).
Every tensor has its own generator, numpy PCG64 seeded with (seed, tensor index in the file order), so
a tensor's values do not depend on --layers or on the sharding.

float32 -> bfloat16 is round-to-nearest-even on the bit pattern: (u + 0x7FFF + ((u >> 16) & 1)) >> 16.
Tensors are generated and written in row blocks (streaming), so memory stays well under 1 GB.

Output, as transformers 5 writes a sharded checkpoint:
    config.json                       (transformers.LlamaConfig(...).to_json_file; a hand-written dict if
                                       transformers is not installed)
    model-0000i-of-0000N.safetensors  header: 8-byte little-endian length + JSON ({"__metadata__":
                                       {"format": "pt"}, name: {dtype "BF16", shape, data_offsets}}), padded
                                       with spaces to a multiple of 8, then the data
    model.safetensors.index.json      {"metadata": {"total_parameters", "total_size"}, "weight_map"},
                                       json.dumps(indent=2, sort_keys=True) + "\\n"
Sharding follows huggingface_hub.split_torch_state_dict_into_shards: tensors in state-dict order
(embed_tokens, layers..., model.norm, lm_head); start a new shard when the next tensor would push the current
one past --shard-size bytes (default 2e9, i.e. "2GB").
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np

HIDDEN, INTER, VOCAB, HEADS = 4096, 11008, 32000, 32
LINEAR = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
BLOCK_ROWS = 1024


def tensor_plan(layers):
    """(name, shape, kind) in transformers' state-dict order for LlamaForCausalLM."""
    plan = [("model.embed_tokens.weight", (VOCAB, HIDDEN), "embed")]
    for i in range(layers):
        for lin in LINEAR:
            if lin.endswith(("gate_proj", "up_proj")):
                shape = (INTER, HIDDEN)
            elif lin.endswith("down_proj"):
                shape = (HIDDEN, INTER)
            else:
                shape = (HIDDEN, HIDDEN)
            plan.append((f"model.layers.{i}.{lin}.weight", shape, "linear"))
        plan.append((f"model.layers.{i}.input_layernorm.weight", (HIDDEN,), "norm"))
        plan.append((f"model.layers.{i}.post_attention_layernorm.weight", (HIDDEN,), "norm"))
    plan.append(("model.norm.weight", (HIDDEN,), "norm"))
    plan.append(("lm_head.weight", (VOCAB, HIDDEN), "embed"))
    return plan


def stable_index(name):
    """Index independent of --layers: embed 0, layer i tensors 1 + 9 i + j, final norm / lm_head large."""
    if name == "model.embed_tokens.weight":
        return 0
    if name == "model.norm.weight":
        return 1_000_000
    if name == "lm_head.weight":
        return 1_000_001
    parts = name.split(".")
    i = int(parts[2])
    rest = ".".join(parts[3:-1])
    order = LINEAR + ["input_layernorm", "post_attention_layernorm"]
    return 1 + 9 * i + order.index(rest)


def to_bf16(x32):
    u = x32.view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


def generate_blocks(name, shape, kind, args):
    """Yield float32 row blocks of the tensor."""
    rng = np.random.Generator(np.random.PCG64([args.seed, stable_index(name)]))
    if kind == "norm":
        yield (1.0 + 0.05 * rng.standard_normal(shape[0], dtype=np.float32)).astype(np.float32)
        return
    rows, cols = shape
    if kind == "linear":
        k = args.rank_k
        U = rng.standard_normal((rows, k), dtype=np.float32) / np.float32(np.sqrt(rows))
        V = rng.standard_normal((cols, k), dtype=np.float32) / np.float32(np.sqrt(cols))
        s = (args.s0 * np.arange(1, k + 1, dtype=np.float64) ** -args.decay).astype(np.float32)
        SVt = np.ascontiguousarray((V * s).T)  # k x cols
        std = np.float32(args.noise_std)
    else:
        std = np.float32(0.02)
    for r0 in range(0, rows, BLOCK_ROWS):
        r1 = min(rows, r0 + BLOCK_ROWS)
        block = rng.standard_normal((r1 - r0, cols), dtype=np.float32)
        block *= std
        if kind == "linear":
            block += U[r0:r1] @ SVt
        yield block


def write_config(out_dir, layers):
    kw = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=layers,
              num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=4096,
              rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False, bos_token_id=1,
              eos_token_id=2, initializer_range=0.02)
    try:
        from transformers import LlamaConfig
        cfg = LlamaConfig(**kw, rope_theta=10000.0)
        cfg.dtype = "bfloat16"
        cfg.architectures = ["LlamaForCausalLM"]
        cfg.to_json_file(os.path.join(out_dir, "config.json"))
    except ImportError:
        d = dict(kw, architectures=["LlamaForCausalLM"], model_type="llama", rope_theta=10000.0,
                 torch_dtype="bfloat16", dtype="bfloat16", attention_bias=False, mlp_bias=False,
                 head_dim=HIDDEN // HEADS, pretraining_tp=1, use_cache=True)
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(d, f, indent=2, sort_keys=True)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-size", type=int, default=2_000_000_000)
    ap.add_argument("--rank-k", type=int, default=64)
    ap.add_argument("--s0", type=float, default=40.0)
    ap.add_argument("--decay", type=float, default=0.8)
    ap.add_argument("--noise-std", type=float, default=0.02)
    args = ap.parse_args()

    plan = tensor_plan(args.layers)
    nbytes = lambda shape: int(np.prod(shape)) * 2
    shards, cur, cur_size = [], [], 0
    for item in plan:
        size = nbytes(item[1])
        if cur and cur_size + size > args.shard_size:
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append(item)
        cur_size += size
    if cur:
        shards.append(cur)

    os.makedirs(args.out_dir, exist_ok=True)
    write_config(args.out_dir, args.layers)
    n = len(shards)
    weight_map, total_size, total_params = {}, 0, 0
    t_start = time.time()
    for si, shard in enumerate(shards):
        fname = f"model-{si + 1:05d}-of-{n:05d}.safetensors" if n > 1 else "model.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape, _ in shard:
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nbytes(shape)]}
            off += nbytes(shape)
        js = json.dumps(header, separators=(",", ":")).encode()
        js += b" " * (-len(js) % 8)
        path = os.path.join(args.out_dir, fname)
        with open(path + ".partial", "wb") as f:
            f.write(struct.pack("<Q", len(js)))
            f.write(js)
            for name, shape, kind in shard:
                written = 0
                for block in generate_blocks(name, shape, kind, args):
                    b = to_bf16(np.ascontiguousarray(block, dtype=np.float32)).astype("<u2")
                    f.write(b.tobytes())
                    written += b.nbytes
                assert written == nbytes(shape), (name, written)
                weight_map[name] = fname
                total_size += written
                total_params += int(np.prod(shape))
        os.replace(path + ".partial", path)
        print(f"{fname}: {len(shard)} tensors, {off / 1e9:.2f} GB ({time.time() - t_start:.0f} s)", flush=True)

    if n > 1:
        index = {"metadata": {"total_parameters": total_params, "total_size": total_size},
                 "weight_map": weight_map}
        with open(os.path.join(args.out_dir, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    print(f"done: {total_params:,} parameters, {total_size / 1e9:.2f} GB, {n} shard(s), "
          f"{time.time() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

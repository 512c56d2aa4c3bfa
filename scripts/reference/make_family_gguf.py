#!/usr/bin/env python3
"""GGUF copies of the tiny family models, written by gguf-py as llama.cpp's converter writes them.

    python3 scripts/reference/make_family_gguf.py [family ...]
    python3 scripts/reference/make_family_gguf.py --model HF_DIR OUT.gguf

(The second form converts any such directory, e.g. check_family_commands.sh's models; a byte-level
BPE tokenizer.json beside the weights is written as tokenizer.ggml.* metadata, model gpt2, pre
smollm: single digits, then GPT-2's pattern.)

For each family that llama.cpp has an architecture for, reads
Tests/TrainingTests/Fixtures/families/<family>/{config.json,model.safetensors} (made by
make_family_fixtures.py) and writes model.gguf beside them, F32, following convert_hf_to_gguf.py:

  * tensor names from gguf-py's own table (`gguf.get_tensor_name_map`, llama.cpp's tensor_mapping.py);
  * general.architecture and the `<arch>.*` hyperparameters its loader reads (block_count,
    context_length, embedding_length, feed_forward_length, head counts, key/value lengths,
    rope.dimension_count, rope.freq_base, layer_norm_rms_epsilon, expert counts);
  * Llama-converted families (llama, mistral, mixtral: `general.architecture` llama) have the rows
    of q and k permuted for llama.cpp's rotary layout (LlamaModel.permute); qwen2, qwen3 and phi3
    are stored as they are;
  * Llama 3.1's rope scaling becomes `rope_freqs.weight` (LlamaModel.generate_extra_tensors: the
    divisor of each frequency, 1 / factor / interpolated);
  * Mixtral's experts are stacked per layer into ffn_gate_exps / ffn_down_exps / ffn_up_exps
    (E, out, in), its router is ffn_gate_inp.

  * rope_scaling linear becomes `llama.rope.scaling.type` linear and `rope.scaling.factor`; dynamic
    is not written (llama.cpp has no dynamic NTK; within max_position_embeddings it changes nothing).

The Swift test (FamilyReferenceTests) reads model.gguf and must give reference.safetensors' logits.
Mistral is not written: llama.cpp converts it as `llama` without its sliding window, so its GGUF
computes something else than the fixture's windowed reference.
"""
import json
import math
import os
import sys

import numpy as np
import gguf
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAMILIES = os.path.join(ROOT, "Tests/TrainingTests/Fixtures/families")

# model_type -> (gguf architecture, whether q/k are permuted)
ARCH = {
    "llama": (gguf.MODEL_ARCH.LLAMA, True),
    "mixtral": (gguf.MODEL_ARCH.LLAMA, True),
    "qwen2": (gguf.MODEL_ARCH.QWEN2, False),
    "qwen3": (gguf.MODEL_ARCH.QWEN3, False),
    "phi3": (gguf.MODEL_ARCH.PHI3, False),
}


def permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute (HF -> GGUF rows)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rope(config):
    """rope_parameters (5.x) or rope_scaling (4.x) with the base."""
    r = dict(config.get("rope_parameters") or {})
    r.update(config.get("rope_scaling") or {})
    r.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    return r


def rope_freqs(config, head_dim):
    """LlamaModel.generate_extra_tensors for rope_type llama3."""
    r = rope(config)
    base = r["rope_theta"]
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor, low, high = r["factor"], r["low_freq_factor"], r["high_freq_factor"]
    old = r["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def add_tokenizer(w, path):
    """A tokenizer.json's byte-level BPE as llama.cpp's gpt2 tokenizer metadata."""
    t = json.load(open(path))
    vocab = sorted(t["model"]["vocab"].items(), key=lambda kv: kv[1])
    special = {a["id"] for a in t.get("added_tokens", []) if a.get("special")}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list([k for k, _ in vocab])
    w.add_token_types([3 if i in special else 1 for _, i in vocab])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in t["model"]["merges"]])


def main(family, directory=None, out=None):
    directory = directory or os.path.join(FAMILIES, family)
    config = json.load(open(os.path.join(directory, "config.json")))
    model_type = config["model_type"]
    arch, permuted = ARCH[model_type]
    name = gguf.MODEL_ARCH_NAMES[arch]
    tensors = load_file(os.path.join(directory, "model.safetensors"))
    L, C, H = config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]
    KV = config.get("num_key_value_heads") or H
    D = config.get("head_dim") or C // H
    names = gguf.get_tensor_name_map(arch, L)

    out = out or os.path.join(directory, "model.gguf")
    w = gguf.GGUFWriter(out, name)
    w.add_name(family)
    w.add_block_count(L)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(C)
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_key_length(D)
    w.add_value_length(D)
    w.add_rope_dimension_count(D)
    w.add_rope_freq_base(rope(config)["rope_theta"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    if config.get("num_local_experts"):
        w.add_expert_count(config["num_local_experts"])
        w.add_expert_used_count(config["num_experts_per_tok"])
    if config.get("sliding_window") and model_type == "phi3":
        w.add_sliding_window(config["sliding_window"])
    w.add_bos_token_id(config.get("bos_token_id") or 1)
    w.add_eos_token_id(config.get("eos_token_id") or 2)
    if os.path.exists(os.path.join(directory, "tokenizer.json")):
        add_tokenizer(w, os.path.join(directory, "tokenizer.json"))

    if rope(config).get("rope_type") == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope(config)["factor"])
    if rope(config).get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", rope_freqs(config, D))
    experts = {}
    for hf, value in tensors.items():
        value = value.astype(np.float32)
        if ".experts." in hf:   # model.layers.N.block_sparse_moe.experts.E.wK.weight
            parts = hf.split(".")
            layer, expert, which = int(parts[2]), int(parts[5]), parts[6]
            experts.setdefault((layer, which), {})[expert] = value
            continue
        stem, suffix = hf.rsplit(".", 1)
        target = names.get_name(stem)
        assert target is not None, f"gguf-py has no name for {hf}"
        if permuted and stem.endswith("self_attn.q_proj"):
            value = permute(value, H)
        elif permuted and stem.endswith("self_attn.k_proj"):
            value = permute(value, KV)
        w.add_tensor(f"{target}.{suffix}", value)
    for (layer, which), by_expert in sorted(experts.items()):
        stacked = np.stack([by_expert[e] for e in range(len(by_expert))])
        target = names.get_name(f"model.layers.{layer}.block_sparse_moe.experts.{which}")
        w.add_tensor(f"{target}.weight", stacked)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(family, "->", out, f"({name})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--model"]:
        main(os.path.basename(sys.argv[2].rstrip("/")), sys.argv[2], sys.argv[3])
        sys.exit(0)
    default = [f for f in sorted(os.listdir(FAMILIES))
               if json.load(open(os.path.join(FAMILIES, f, "config.json")))["model_type"] in ARCH]
    for family in sys.argv[1:] or default:
        main(family)

#!/usr/bin/env python3
"""PEFT references for the adapter starts other than PiSSA: OLoRA, CorDA (IPM, KPM), EVA, LoRA-GA.

    python3 scripts/reference/make_start_fixtures.py            # every case
    python3 scripts/reference/make_start_fixtures.py olora eva  # some

Writes into Tests/AdaptersTests/Fixtures/starts/. Deterministic (fixed torch seeds).

Model (model/, written once by this script): a random LlamaForCausalLM small enough that every
start is exact in PEFT too: hidden 16, intermediate 16, 2 layers, 2 heads of dim 8 on 1 KV head
(q, o: 16×16; k, v: 8×16), vocabulary 64, tied embeddings, float32. Every projection gets a
rank-8 term U·diag(2·0.7^i)·Vᵀ (orthonormal U, V from the QR of Gaussians) on top of its
N(0, 0.02²) init, so that its spectrum decays and the singular values are well separated.

Calibration data (calibration.safetensors): `tokens` [6, 12] int64 and `labels` [6, 12]
(Hugging Face's unshifted convention, −100 where no loss is taken): sequences 0–2 have a
prompt of 1–3 tokens masked, sequences 3–5 are plain text (every label kept).

Every case uses r = 4, lora_alpha = 8 (scale 2) on all seven projections, dropout 0. Tensors per
adapted module P (e.g. model.layers.0.self_attn.q_proj): P.lora_A, P.lora_B (PEFT's factors after
its init) and, for the starts that rewrite the base, P.residual (PEFT's base weight after init).

olora.safetensors     init_lora_weights="olora": Q, R = torch.linalg.qr(W); B = Q[:, :r], A = R[:r].
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/AdaptersTests/Fixtures/starts")
MODEL = os.path.join(OUT, "model")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA = 4, 8


def make_model():
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=8, vocab_size=64, max_position_embeddings=64,
                         tie_word_embeddings=True, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(config).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if any(t in name for t in TARGETS):
                out, inp = p.shape
                k = min(8, out, inp)
                u, _ = torch.linalg.qr(torch.randn(out, k, generator=g))
                v, _ = torch.linalg.qr(torch.randn(inp, k, generator=g))
                s = torch.tensor([2.0 * 0.7 ** i for i in range(k)])
                p += u @ torch.diag(s) @ v.T
            elif "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
    os.makedirs(MODEL, exist_ok=True)
    model.save_pretrained(MODEL)
    for extra in ["generation_config.json"]:
        path = os.path.join(MODEL, extra)
        if os.path.exists(path):
            os.remove(path)


def load_model():
    return LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()


def calibration():
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(3, 64, (6, 12), generator=g)
    labels = tokens.clone()
    for i, prompt in enumerate([1, 2, 3]):
        labels[i, :prompt] = -100
    return tokens, labels


def adapted(peft):
    return {n.replace("base_model.model.", ""): m for n, m in peft.named_modules()
            if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})}


def factors(peft, with_residual):
    tensors = {}
    for key, m in adapted(peft).items():
        tensors[key + ".lora_A"] = m.lora_A["default"].weight.detach().clone().contiguous()
        tensors[key + ".lora_B"] = m.lora_B["default"].weight.detach().clone().contiguous()
        if with_residual:
            tensors[key + ".residual"] = m.base_layer.weight.detach().clone().contiguous()
    return tensors


def lora_config(init, **extra):
    from peft import LoraConfig
    return LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, init_lora_weights=init, **extra)


def save(name, tensors, **metadata):
    import peft
    meta = {"r": str(RANK), "lora_alpha": str(ALPHA), "peft_version": peft.__version__, "torch_version": torch.__version__}
    meta.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in metadata.items()})
    save_file(tensors, os.path.join(OUT, name + ".safetensors"), metadata=meta)
    print(name, len(tensors), "tensors")


def olora():
    from peft import get_peft_model
    peft = get_peft_model(load_model(), lora_config("olora"))
    save("olora", factors(peft, with_residual=True), init="olora")


CASES = {"olora": olora}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_model()
    tokens, labels = calibration()
    save_file({"tokens": tokens.contiguous(), "labels": labels.contiguous()}, os.path.join(OUT, "calibration.safetensors"))
    for case in sys.argv[1:] or list(CASES):
        CASES[case]()

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
corda_ipm.safetensors init_lora_weights="corda", CordaConfig(corda_method="ipm"): preprocess_corda with
corda_kpm.safetensors run_model = one forward per calibration sequence (PEFT's hook takes batch size 1);
                      also P.covariance, the layer's input covariance (prune_temporary_fields=False),
                      and P.lora_A_f64 / P.lora_B_f64, PEFT's formula on that covariance in float64
                      (PEFT's own float32 answer is up to 7e-4 off it on layer 1's o_proj, whose
                      covariance has condition number ≈ 880: two query heads share one value head).
eva.safetensors       init_lora_weights="eva", EvaConfig() (rho 2, tau 0.99, label mask): get_peft_model,
                      then initialize_lora_eva_weights over a dataloader of 3 batches of 2 sequences
                      (input_ids, attention_mask, labels). Only the modules EVA kept; metadata
                      rank_pattern / alpha_pattern / target_modules (JSON) as PEFT rewrote them.
                      2·round(ρ·r) = 16 ≥ every layer input width, so PEFT's svd_lowrank is exact.
lora_ga.safetensors   init_lora_weights="lora_ga", LoraGAConfig() (ArB2r, stable, γ 16): preprocess_loraga
                      with train_step = forward + backward of each of the same 3 batches; also
                      P.gradient, the averaged gradient PEFT estimated. svd_lowrank's q = min(4r,
                      min(out, in)) = min(out, in) here, so its SVD is exact up to each triplet's sign.
loftq_1, loftq_5      LoftQ with 1 and 5 iterations, lora_alpha = r (4): PEFT's loop on the CPU with NF4
                      restated (see loftq()): P.lora_A, P.lora_B and P.residual = deq(nf4(·)) of the
                      last quantisation.
"""
import json
import os
import struct
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/AdaptersTests/Fixtures/starts")
MODEL = os.path.join(OUT, "model")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA = 4, 8


DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_file(tensors, path, metadata=None):
    """safetensors with a byte-stable header (sorted names and metadata; the library's own writer
    orders its header by hash, so its bytes change from run to run)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header = {"__metadata__": dict(sorted(metadata.items())), **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


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


def batches(tokens, labels, size=2):
    return [{"input_ids": tokens[i:i + size], "attention_mask": torch.ones_like(tokens[i:i + size]),
             "labels": labels[i:i + size]} for i in range(0, tokens.shape[0], size)]


def corda(method):
    from peft import get_peft_model
    from peft.tuners.lora.config import CordaConfig
    from peft.tuners.lora.corda import preprocess_corda
    tokens, _ = calibration()
    model = load_model()
    config = lora_config("corda", corda_config=CordaConfig(corda_method=method, prune_temporary_fields=False))

    @torch.no_grad()
    def run_model():
        for i in range(tokens.shape[0]):
            model(input_ids=tokens[i:i + 1])

    preprocess_corda(model, config, run_model=run_model)
    covariances = {n: m.covariance_matrix.detach().clone().contiguous() for n, m in model.named_modules() if hasattr(m, "covariance_matrix")}
    weights = {n: m.weight.detach().clone() for n, m in model.named_modules() if n in covariances}
    peft = get_peft_model(model, config)
    tensors = factors(peft, with_residual=True)
    for name, c in covariances.items():
        tensors[name + ".covariance"] = c
        a, b = corda_float64(weights[name], c, method)
        tensors[name + ".lora_A_f64"], tensors[name + ".lora_B_f64"] = a, b
    save("corda_" + method, tensors, init="corda", corda_method=method)


def corda_float64(w, c, method):
    """PEFT's CorDA formula in float64 (the damping chosen as PEFT chooses it, by its float32
    inverse's error): PEFT runs it in float32, whose answer drifts on an ill-conditioned input
    covariance (GQA's o_proj: the heads share their values). The factors, rounded to float32."""
    damp = 0.01
    while True:
        fixed = c + torch.diag(torch.ones(c.shape[0]) * torch.mean(torch.diag(c)) * damp)
        inverse = torch.linalg.inv(fixed)
        if torch.dist(fixed @ inverse, torch.eye(c.shape[0])).item() < 0.05:
            break
        damp *= 2
    fixed = fixed.double()
    u, s, vh = torch.linalg.svd(w.double() @ fixed, full_matrices=False)
    v = (vh @ torch.linalg.inv(fixed)).T
    pick = slice(0, RANK) if method == "ipm" else slice(-RANK, None)
    root = (s[pick] / (ALPHA / RANK)).sqrt()
    return (v[:, pick].T * root.view(-1, 1)).float().contiguous(), (u[:, pick] * root).float().contiguous()


def eva():
    from peft import get_peft_model
    from peft.tuners.lora.config import EvaConfig
    from peft.tuners.lora.eva import initialize_lora_eva_weights
    tokens, labels = calibration()
    torch.manual_seed(0)
    peft = get_peft_model(load_model(), lora_config("eva", eva_config=EvaConfig()))
    initialize_lora_eva_weights(peft, batches(tokens, labels), show_progress_bar=False)
    c = peft.peft_config["default"]
    save("eva", factors(peft, with_residual=False), init="eva", rank_pattern=c.rank_pattern, alpha_pattern=c.alpha_pattern,
         target_modules=sorted(c.target_modules))


def lora_ga():
    from peft import get_peft_model
    from peft.tuners.lora.config import LoraGAConfig
    from peft.tuners.lora.loraga import preprocess_loraga
    tokens, labels = calibration()
    model = load_model()
    config = lora_config("lora_ga", lora_ga_config=LoraGAConfig())

    def train_step():
        for b in batches(tokens, labels):
            model(**b).loss.backward()

    preprocess_loraga(model, config, train_step)
    gradients = {n: m._peft_loraga_grad.detach().clone().contiguous() for n, m in model.named_modules() if hasattr(m, "_peft_loraga_grad")}
    torch.manual_seed(0)
    peft = get_peft_model(model, config)
    tensors = factors(peft, with_residual=True)
    for name, g in gradients.items():
        tensors[name + ".gradient"] = g
    save("lora_ga", tensors, init="lora_ga", direction="ArB2r", scale="stable", stable_gamma="16")


NF4_CODE = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                         -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020129203796,
                         0.24611230082511902, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                         0.7229568362236023, 1.0])


def nf4_roundtrip(w, block=64):
    """deq(nf4(w)) as bitsandbytes defines NF4 (blocks of 64 over the flattened tensor, float32
    absmax, each value the nearest of the 16 code points times its block's absmax)."""
    flat = w.flatten().view(-1, block)
    absmax = flat.abs().max(dim=1, keepdim=True).values
    index = (flat / absmax).unsqueeze(-1).sub(NF4_CODE).abs().argmin(-1)
    return (NF4_CODE[index] * absmax).view(w.shape)


def loftq(iterations):
    """PEFT's `loftq_init` (peft/utils/loftq_utils.py) with its quantiser on the CPU. PEFT hard-codes
    a CUDA or XPU device for it, and bitsandbytes' CPU path here disagrees with bitsandbytes' own
    NF4 from the second block of 64 on (measured: a different absmax), so the NF4 step is the
    format restated (`nf4_roundtrip`, which Tests/AdaptersTests/NF4ReferenceTests holds the Swift
    NF4 to bit for bit against bitsandbytes' fixture); the SVD step is PEFT's own
    `_low_rank_decomposition` (full SVD, L = U√S, R = √S·Vh). lora_alpha = r here, so PEFT's
    unscaled factors are the start for scale 1."""
    from peft.utils.loftq_utils import _low_rank_decomposition
    weights = {k: v for k, v in load_model().state_dict().items() if any(t in k for t in TARGETS)}
    tensors = {}
    for name, w in weights.items():
        path = name[:-len(".weight")]
        res = w.clone()
        for i in range(iterations):
            dequantized = nf4_roundtrip(res)
            res = w - dequantized
            out = _low_rank_decomposition(res, reduced_rank=RANK)
            lora_b, lora_a = out["L"], out["R"]
            if i + 1 == iterations:
                break
            res = w - lora_b @ lora_a
        tensors[path + ".lora_A"] = lora_a.contiguous()
        tensors[path + ".lora_B"] = lora_b.contiguous()
        tensors[path + ".residual"] = dequantized.contiguous()
    save(f"loftq_{iterations}", tensors, init="loftq", loftq_iter=str(iterations), lora_alpha_used=str(RANK))


CASES = {"olora": olora, "loftq_1": lambda: loftq(1), "loftq_5": lambda: loftq(5), "corda_ipm": lambda: corda("ipm"), "corda_kpm": lambda: corda("kpm"), "eva": eva, "lora_ga": lora_ga}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_model()
    tokens, labels = calibration()
    save_file({"tokens": tokens.contiguous(), "labels": labels.contiguous()}, os.path.join(OUT, "calibration.safetensors"))
    for case in sys.argv[1:] or list(CASES):
        CASES[case]()

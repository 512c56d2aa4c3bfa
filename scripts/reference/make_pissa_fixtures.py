#!/usr/bin/env python3
"""Reference fixtures for the Swift PiSSA implementation, produced with Hugging Face PEFT.

Run from anywhere:  python3 scripts/reference/make_pissa_fixtures.py
Writes into Tests/AdaptersTests/Fixtures/. Deterministic, byte for byte on one machine: fixed torch
seeds, PYTHONHASHSEED=0 (the script re-executes itself with it, because PEFT keeps target_modules in a
set), and the expected_* files go through a small safetensors writer with sorted names (the safetensors
library's header order varies between runs).

Models
------
tiny_llama_f32/, tiny_llama_bf16/ : a random LlamaForCausalLM (hidden 64, intermediate 128, 2 layers,
4 attention heads, 2 KV heads, head_dim 16, vocab 128, tie_word_embeddings=false so lm_head exists and
must be carried through unchanged), saved with save_pretrained (transformers 5 always writes
safetensors; the `safe_serialization` argument no longer exists). The bf16 model is the f32 model cast
with .to(torch.bfloat16) (round-to-nearest-even).
Perturbation (so spectra are non-trivial and the top-r subspace is well separated): every targeted
linear weight W (out x in, default init N(0, 0.02^2)) gets W += U diag(s) V^T with U, V orthonormal
(QR of Gaussian out x 8 / in x 8) and s = 2.0 * 0.75^i, i = 0..7 (2.0, 1.5, 1.125, 0.84, 0.63, ...),
so sigma_4 / sigma_5 is about 4/3. RMSNorm weights are set to 1 + 0.1*N(0,1) so that carried-through
non-target tensors are not all ones.

Expected outputs (PEFT get_peft_model, target_modules = q,k,v,o,gate,up,down, lora_dropout = 0)
-----------------------------------------------------------------------------------------------
For every targeted module with HF path P (e.g. model.layers.0.self_attn.q_proj):
  P.delta    float32 [out, in]  = scale * lora_B @ lora_A, with PEFT's final lora_A / lora_B
  P.residual model dtype        = PEFT's base_layer.weight after init
  P.lora_A   float32 [r, in]    PEFT's lora_A (signs of SVD components are arbitrary: row i of A and
  P.lora_B   float32 [out, r]   column i of B flip together; compare up to that sign, or compare
                                the sign-free quantities delta and the row norms |A_i|^2 = S_i / scale)
__metadata__ (all strings): r, lora_alpha, use_rslora, scale, init, dtype, peft_version, ...

  expected_a_f32_pissa.safetensors        f32,  r=4, alpha=8,  'pissa' (exact), scale 2
  expected_b_f32_pissa_rslora.safetensors f32,  r=4, alpha=4,  use_rslora, 'pissa', scale 4/sqrt(4)=2
      Only lora_A / lora_B (+ metadata). delta and residual do not depend on the scale at all
      (scale * (sqrt(S/scale))^2 = S), so they equal case (a)'s; omitted to keep fixtures < 2 MB.
      What (b) tests is the rsLoRA scale: |A_i|^2 = S_i / 2 here (non-rsLoRA alpha 4 would give S_i / 1).
  expected_c_bf16_pissa.safetensors       bf16, r=4, alpha=8,  'pissa' (exact), residual in bfloat16
      delta + residual only (PEFT's bf16-rounded factors are left out; see below).
  expected_d_f32_pissa_niter_4.safetensors f32, r=4, alpha=8,  'pissa_niter_4'
      Only P.delta = the EXACT-SVD best rank-r product U_r S_r V_r^T (float32), because a randomized
      run cannot be reproduced bit-for-bit. Metadata peft_niter_rel_fro_{median,max} and
      peft_niter_rel_fro_per_module (JSON) give ||delta_peft_niter - delta_exact||_F / ||delta_exact||_F
      for PEFT's own niter_4 run (torch seed 1234 before get_peft_model), and
      peft_niter_excess_residual_{median,max} = ||W - P_niter||_F / ||W - P_exact||_F - 1 (how much
      worse than optimal the rank-r approximation is; more robust than the product difference).
  expected_lora_shapes.json     plain LoRA (init_lora_weights=True, r=4, alpha=8) on tiny_llama_f32:
      names / dtypes / shapes of adapter_model.safetensors exactly as PeftModel.save_pretrained
      writes them, plus that file's __metadata__.
  peft_adapter_config_example.json  the adapter_config.json PEFT wrote for that plain LoRA, verbatim
      (base_model_name_or_path is "tiny_llama_f32" because the model was loaded by that relative path).

Exact PEFT 0.21.2 behaviour (peft/tuners/lora/layer.py LoraLayer.pissa_init / update_layer, read
from the installed package):
  scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora.
  W32 = base weight .to(float32) (transposed first only if fan_in_fan_out).
  'pissa':         V, S, Uh = torch.linalg.svd(W32, full_matrices=False)   (gesdd-based, exact)
                   Vr = V[:, :r]; Sr = S[:r] / scale; Uhr = Uh[:r]
  'pissa_niter_K': Vr, Sr, Ur = torch.svd_lowrank(W32, r, niter=K); Sr /= scale; Uhr = Ur.T
                   (q = r: NO oversampling; Halko 4.4 with a QR after every product, i.e.
                   Q = qr(A R); K times {Q = qr(A^T Q); Q = qr(A Q)}; then svd(Q^T A). A is
                   transposed first if out < in ("assume tall"). R ~ torch.randn from the global
                   torch RNG, so results depend on the torch seed.)
  lora_A = diag(sqrt(Sr)) @ Uhr        [r, in]
  lora_B = Vr @ diag(sqrt(Sr))         [out, r]
  residual = (W32 - scale * lora_B @ lora_A).to(original dtype)    (computed with float32 factors)
  Then update_layer calls _move_adapter_to_device_of_base_layer, which casts lora_A / lora_B to the
  BASE LAYER DTYPE; for a bf16 model they are thereby rounded to bfloat16. get_peft_model's default
  autocast_adapter_dtype=True then casts bf16/fp16 adapter weights back up to float32. So for bf16
  models PEFT's final lora_A / lora_B are float32 tensors holding bf16-rounded values, and
  residual + scale*B@A != W even before the residual cast: the residual was computed from the
  un-rounded factors. Case (c)'s metadata records that effect (bf16_factor_rounding_rel_fro_*):
  the relative Frobenius difference between the PEFT delta and the delta from un-rounded float32
  factors. A Swift implementation that keeps the factors in float32 is *more* accurate than PEFT
  here; compare case (c)'s delta with a relative tolerance of about 1e-2 (measured: <= 2.6e-3
  relative Frobenius), and its residual to within one bf16 ulp (the script asserts PEFT's residual
  is exactly bf16(W32 - scale * B32 @ A32) with the un-rounded float32 factors).
"""
import json
import os
import shutil
import struct
import sys
import tempfile

if os.environ.get("PYTHONHASHSEED") != "0":
    # PEFT stores target_modules as a set: fix hash order so adapter_config.json is reproducible.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch
from safetensors import safe_open

import peft
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(REPO, "Tests", "AdaptersTests", "Fixtures")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


_ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def save_file(tensors, path, metadata):
    """Byte-reproducible safetensors writer (safetensors' own save_file orders the header JSON by
    hash, so its bytes vary run to run): sorted names, sorted metadata, header padded with spaces
    to a multiple of 8, little-endian data in name order."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header = {"__metadata__": dict(sorted(metadata.items())), **header}
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def make_model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg).to(torch.float32).eval()
    g = torch.Generator().manual_seed(1)
    s = 2.0 * 0.75 ** torch.arange(8, dtype=torch.float32)
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in TARGETS:
                out_f, in_f = mod.weight.shape
                U = torch.linalg.qr(torch.randn(out_f, 8, generator=g)).Q
                V = torch.linalg.qr(torch.randn(in_f, 8, generator=g)).Q
                mod.weight += U @ torch.diag(s) @ V.T
            elif "norm" in name.split(".")[-1] and hasattr(mod, "weight"):
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=g))
    return model


def targeted(pm):
    """(hf module path, lora layer) for every LoRA layer of a PeftModel."""
    out = []
    for name, mod in pm.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            path = name.removeprefix("base_model.model.")
            out.append((path, mod))
    return out


def load(dirname, dtype):
    return LlamaForCausalLM.from_pretrained(dirname, dtype=dtype).eval()


def exact_deltas(model, r):
    """Best rank-r approximation (float32 SVD) of every targeted weight, keyed by module path."""
    res = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in TARGETS:
            W = mod.weight.detach().to(torch.float32)
            U, S, Vh = torch.linalg.svd(W, full_matrices=False)
            res[name] = (U[:, :r] * S[:r]) @ Vh[:r]
    return res


def rel_fro(a, b):
    return (torch.linalg.norm(a - b) / torch.linalg.norm(b)).item()


def peft_case(src, dtype, r, alpha, init, rslora, seed=1234):
    model = load(src, dtype)
    torch.manual_seed(seed)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, lora_dropout=0.0,
                     init_lora_weights=init, use_rslora=rslora)
    pm = get_peft_model(model, cfg)
    return pm


def meta_for(r, alpha, rslora, scale, init, dtype):
    return {
        "r": str(r), "lora_alpha": str(alpha), "use_rslora": "true" if rslora else "false",
        "scale": repr(float(scale)), "init": init, "dtype": dtype,
        "peft_version": peft.__version__, "torch_version": torch.__version__.split("+")[0],
    }


def main():
    os.makedirs(FIX, exist_ok=True)
    f32_dir = os.path.join(FIX, "tiny_llama_f32")
    bf16_dir = os.path.join(FIX, "tiny_llama_bf16")
    for d in (f32_dir, bf16_dir):
        shutil.rmtree(d, ignore_errors=True)
    model = make_model()
    model.save_pretrained(f32_dir)
    model.to(torch.bfloat16).save_pretrained(bf16_dir)
    for d in (f32_dir, bf16_dir):  # keep only what the fixture needs
        gc = os.path.join(d, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)
    r = 4

    # (a) and (c): exact PiSSA, f32 and bf16
    for tag, src, dtype, dname in [("a_f32_pissa", f32_dir, torch.float32, "float32"),
                                   ("c_bf16_pissa", bf16_dir, torch.bfloat16, "bfloat16")]:
        alpha = 8
        pm = peft_case(src, dtype, r, alpha, "pissa", False)
        orig = load(src, dtype)
        orig_mods = dict(orig.named_modules())
        tensors, rounding = {}, {}
        scale = None
        for path, mod in targeted(pm):
            scale = mod.scaling["default"]
            A = mod.lora_A["default"].weight.detach()
            B = mod.lora_B["default"].weight.detach()
            assert A.dtype == torch.float32 and B.dtype == torch.float32, (A.dtype, B.dtype)
            res = mod.base_layer.weight.detach()
            assert res.dtype == dtype
            delta = scale * (B @ A)
            tensors[f"{path}.delta"] = delta.contiguous()
            tensors[f"{path}.residual"] = res.contiguous()
            if dtype == torch.float32:  # bf16 case: PEFT's factors are bf16-rounded; omitted (size)
                tensors[f"{path}.lora_A"] = A.contiguous()
                tensors[f"{path}.lora_B"] = B.contiguous()
            W = orig_mods[path].weight.detach().to(torch.float32)
            if dtype == torch.bfloat16:
                # un-rounded float32 factors, exactly as pissa_init computes them before the cast
                V, S, Uh = torch.linalg.svd(W, full_matrices=False)
                Sr = S[:r] / scale
                A32 = torch.diag(torch.sqrt(Sr)) @ Uh[:r]
                B32 = V[:, :r] @ torch.diag(torch.sqrt(Sr))
                d32 = scale * B32 @ A32
                rounding[path] = rel_fro(delta, d32)
                # the residual PEFT stored is exactly bf16(W32 - scale*B32@A32)
                assert torch.equal(res, (W - scale * B32 @ A32).to(torch.bfloat16)), path
            else:
                # f32: residual + delta reproduces W to float rounding
                assert (res + delta - W).abs().max().item() < 1e-5
        meta = meta_for(r, alpha, False, scale, "pissa", dname)
        if rounding:
            vals = sorted(rounding.values())
            meta["bf16_factor_rounding_rel_fro_median"] = repr(vals[len(vals) // 2])
            meta["bf16_factor_rounding_rel_fro_max"] = repr(vals[-1])
            meta["note"] = ("PEFT rounds lora_A/lora_B to bf16 (then back to f32) and delta uses those; the "
                            "residual was computed from the un-rounded float32 factors")
        save_file(tensors, os.path.join(FIX, f"expected_{tag}.safetensors"), metadata=meta)
        print(tag, "scale", scale, "tensors", len(tensors), ("rounding " + str(meta.get("bf16_factor_rounding_rel_fro_max"))) if rounding else "")

    # (b): rsLoRA, factors only
    alpha = 4
    pm = peft_case(f32_dir, torch.float32, r, alpha, "pissa", True)
    tensors = {}
    for path, mod in targeted(pm):
        scale = mod.scaling["default"]
        tensors[f"{path}.lora_A"] = mod.lora_A["default"].weight.detach().contiguous()
        tensors[f"{path}.lora_B"] = mod.lora_B["default"].weight.detach().contiguous()
    meta = meta_for(r, alpha, True, scale, "pissa", "float32")
    meta["note"] = "delta and residual are scale-independent and equal expected_a_f32_pissa's"
    save_file(tensors, os.path.join(FIX, "expected_b_f32_pissa_rslora.safetensors"), metadata=meta)
    print("b scale", scale)

    # (d): pissa_niter_4 -> store exact delta, record PEFT's niter error
    alpha = 8
    model = load(f32_dir, torch.float32)
    exact = exact_deltas(model, r)
    weights = {n: m.weight.detach() for n, m in model.named_modules() if n in exact}
    pm = peft_case(f32_dir, torch.float32, r, alpha, "pissa_niter_4", False, seed=1234)
    errs, excess = {}, {}
    for path, mod in targeted(pm):
        scale = mod.scaling["default"]
        d = scale * mod.lora_B["default"].weight.detach() @ mod.lora_A["default"].weight.detach()
        errs[path] = rel_fro(d, exact[path])
        excess[path] = (torch.linalg.norm(weights[path] - d) / torch.linalg.norm(weights[path] - exact[path])).item() - 1
    xs = sorted(excess.values())
    vals = sorted(errs.values())
    meta = meta_for(r, alpha, False, scale, "pissa_niter_4", "float32")
    meta["peft_niter_rel_fro_median"] = repr(vals[len(vals) // 2])
    meta["peft_niter_rel_fro_max"] = repr(vals[-1])
    meta["peft_niter_rel_fro_per_module"] = json.dumps(errs, sort_keys=True)
    meta["peft_niter_excess_residual_median"] = repr(xs[len(xs) // 2])
    meta["peft_niter_excess_residual_max"] = repr(xs[-1])
    meta["peft_torch_seed"] = "1234"
    meta["note"] = "P.delta is the exact-SVD best rank-r product, not PEFT's randomized one"
    save_file({f"{p}.delta": exact[p].contiguous() for p in sorted(exact)},
              os.path.join(FIX, "expected_d_f32_pissa_niter_4.safetensors"), metadata=meta)
    print("d niter_4 rel fro median", vals[len(vals) // 2], "max", vals[-1])

    # plain LoRA layout
    cwd = os.getcwd()
    os.chdir(FIX)
    try:
        model = load("tiny_llama_f32", torch.float32)
        torch.manual_seed(0)
        pm = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS,
                                              lora_dropout=0.0, init_lora_weights=True))
        with tempfile.TemporaryDirectory() as td:
            pm.save_pretrained(td)
            with safe_open(os.path.join(td, "adapter_model.safetensors"), "pt") as f:
                shapes = {k: {"dtype": str(f.get_slice(k).get_dtype()), "shape": list(f.get_slice(k).get_shape())}
                          for k in sorted(f.keys())}
                st_meta = f.metadata()
            with open(os.path.join(td, "adapter_config.json")) as f:
                cfg_text = f.read()
            files = sorted(os.listdir(td))
    finally:
        os.chdir(cwd)
    with open(os.path.join(FIX, "peft_adapter_config_example.json"), "w") as f:
        f.write(cfg_text if cfg_text.endswith("\n") else cfg_text + "\n")
    doc = {
        "description": "PeftModel.save_pretrained output for plain LoRA (init_lora_weights=True, r=4, "
                       "lora_alpha=8, q,k,v,o,gate,up,down) on tiny_llama_f32",
        "peft_version": peft.__version__,
        "files_written": files,
        "safetensors_metadata": st_meta,
        "tensors": shapes,
    }
    text = json.dumps({k: v for k, v in doc.items() if k != "tensors"}, indent=1, sort_keys=True)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in shapes.items())
    text = text[:-2] + ',\n "tensors": {\n' + rows + "\n }\n}\n"
    json.loads(text)
    with open(os.path.join(FIX, "expected_lora_shapes.json"), "w") as f:
        f.write(text)
    total = 0
    for root, _, fs in os.walk(FIX):
        total += sum(os.path.getsize(os.path.join(root, x)) for x in fs)
    print("fixture bytes", total)


if __name__ == "__main__":
    sys.exit(main())

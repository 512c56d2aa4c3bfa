#!/usr/bin/env python3
"""Reference values for one model family on a tiny random model that transformers itself makes.

    python3 scripts/reference/make_family_fixtures.py gemma3

For each family, a tiny model with every feature of its block (several layers of each attention
kind, GQA, a head dimension different from hidden/heads, sliding windows shorter than the test
sequence) is created by transformers with random weights (seed 0) and saved to
Tests/TrainingTests/Fixtures/families/<family>/ (config.json, model.safetensors). Then, on one batch
(B = 2, T = 11; sequence 0 has its first three labels masked as a prompt, sequence 1 ends in two
padding tokens whose labels and attention are masked):

  reference.safetensors
    tokens, labels        int64 (B, T); labels −100 where ignored (HF's unshifted convention)
    logits                float32 (B, T, V) of the base model
    loss                  (1) mean masked next-token loss of the base model
    grad.<hf name>        full fine-tuning: the loss's gradient for every weight
    lora.<module>.lora_A / .lora_B   a PEFT LoRA (r 4, alpha 8, all seven projections,
                          init_lora_weights=False: both factors random)
    lora.<module>.grad_A / .grad_B   their gradients of the adapted model's loss
    lora_loss             (1) the adapted model's loss

Families: gemma3; qwen2 (q/k/v biases, windows on some layers); qwen3 (q/k norms, o bias);
mistral (windows everywhere); llama3 / llama_linear / llama_dynamic (rope scaling; llama3 also
has attention and MLP biases); phi3 (fused qkv_proj and gate_up_proj, LoRA on the fused matrices);
mixtral (4 experts, 2 per token; its LoRA, on q/k/v/o and every expert's w1/w2/w3, is
parametrised in PyTorch as W + s·B·A, since transformers 5 stacks the experts: experts_lora). Biases are part of full fine-tuning's gradients; PEFT's LoRA
leaves them frozen (bias="none").
"""
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests/TrainingTests/Fixtures/families")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VOCAB = 96


def gemma3():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    config = Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=6, query_pre_attn_scalar=5,
        sliding_window=5, layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}},
        max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True,
        pad_token_id=0, bos_token_id=2, eos_token_id=1, attn_implementation="eager")
    return Gemma3ForCausalLM(config)


def qwen2():
    """Qwen2.5's block: q/k/v biases; head_dim 6 ≠ 16/4; windows of 5 on layers 1 and 2
    (use_sliding_window, max_window_layers 1); tied head as Qwen2.5-0.5B."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    config = Qwen2Config(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=6, use_sliding_window=True, sliding_window=5, max_window_layers=1,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}, max_position_embeddings=64,
        rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    return Qwen2ForCausalLM(config)


def qwen3():
    """Qwen3's block: per-head q/k RMSNorm, head_dim 6 ≠ 16/4, attention_bias (q, k, v, o biases),
    untied head."""
    from transformers import Qwen3Config, Qwen3ForCausalLM
    config = Qwen3Config(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=6, attention_bias=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}, max_position_embeddings=64,
        rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    return Qwen3ForCausalLM(config)


def mistral():
    """Mistral: a sliding window of 5 (< 11 positions) in every layer, head_dim 6 ≠ 16/4."""
    from transformers import MistralConfig, MistralForCausalLM
    config = MistralConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=6, sliding_window=5,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000.0}, max_position_embeddings=64,
        rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    return MistralForCausalLM(config)


def llama(rope, **extra):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, rope_parameters=rope, max_position_embeddings=128,
        rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, attn_implementation="eager", **extra)
    return LlamaForCausalLM(config)


def llama3():
    """Llama 3.1's rope scaling: with D = 8 and θ = 10⁴ the wavelengths 6.3, 63, 628, 6283 fall
    under, between and above 64/4 and 64/1 (original_max_position_embeddings 64): kept,
    interpolated, divided by 8. Also attention_bias and mlp_bias (a bias on every projection)."""
    return llama({"rope_type": "llama3", "rope_theta": 10_000.0, "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}, attention_bias=True, mlp_bias=True)


def llama_linear():
    """rope_scaling linear: every frequency / 2."""
    return llama({"rope_type": "linear", "rope_theta": 10_000.0, "factor": 2.0})


def llama_dynamic():
    """rope_scaling dynamic (NTK): unchanged within max_position_embeddings (128 > 11)."""
    return llama({"rope_type": "dynamic", "rope_theta": 10_000.0, "factor": 2.0})


def phi3():
    """Phi-3: fused qkv_proj (rows q, k, v) and gate_up_proj (rows gate, up), head_dim 6 ≠ 16/4,
    a window of 5 in every layer."""
    from transformers import Phi3Config, Phi3ForCausalLM
    config = Phi3Config(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=6, sliding_window=5, max_position_embeddings=64, original_max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000.0, "partial_rotary_factor": 1.0},
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        attn_implementation="eager")
    return Phi3ForCausalLM(config)


def mixtral():
    """Mixtral: 4 experts, 2 per token, head_dim 6 ≠ 16/4, untied head."""
    from transformers import MixtralConfig, MixtralForCausalLM
    config = MixtralConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=6, num_local_experts=4, num_experts_per_tok=2, router_jitter_noise=0.0,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0}, max_position_embeddings=64,
        rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    return MixtralForCausalLM(config)


FAMILIES = {"gemma3": gemma3, "qwen2": qwen2, "qwen3": qwen3, "mistral": mistral, "llama3": llama3,
            "llama_linear": llama_linear, "llama_dynamic": llama_dynamic, "phi3": phi3, "mixtral": mixtral}
# PEFT's target_modules per family (all linear modules but the head).
LORA_TARGETS = {"phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]}


def randomize(model):
    """Weights that make every path matter: linear N(0, 1/in), norms N(0, 0.1²) around the
    family's neutral value, embedding N(0, 0.5²)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed" not in name:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            elif p.dim() == 3:   # stacked experts (E, out, in)
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[2] ** 0.5)
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            else:
                neutral = 0.0 if model.config.model_type.startswith("gemma") else 1.0
                p.copy_(neutral + torch.randn(p.shape, generator=g) * 0.1)


def batch():
    g = torch.Generator().manual_seed(7)
    tokens = torch.randint(3, VOCAB, (2, 11), generator=g)
    tokens[1, 9:] = 0  # pad
    labels = tokens.clone()
    labels[0, :3] = -100
    labels[1, 9:] = -100
    attention = torch.ones_like(tokens)
    attention[1, 9:] = 0
    return tokens, labels, attention


def checkpoint_gradients(model):
    """Every weight's gradient under its checkpoint name. transformers 5 stacks Mixtral's experts
    into (E, 2F, C) gate_up_proj / (E, C, F) down_proj parameters and calls the router mlp.gate;
    checkpoints (and pissa) name them block_sparse_moe.experts.e.w1 / w3 / w2 and block_sparse_moe.gate."""
    out = {}
    for name, p in model.named_parameters():
        g = p.grad.detach().clone()
        if name.endswith("mlp.experts.gate_up_proj"):
            stem, F = name.replace("mlp.experts.gate_up_proj", "block_sparse_moe.experts"), g.shape[1] // 2
            for e in range(g.shape[0]):
                out[f"{stem}.{e}.w1.weight"], out[f"{stem}.{e}.w3.weight"] = g[e, :F].contiguous(), g[e, F:].contiguous()
        elif name.endswith("mlp.experts.down_proj"):
            stem = name.replace("mlp.experts.down_proj", "block_sparse_moe.experts")
            for e in range(g.shape[0]):
                out[f"{stem}.{e}.w2.weight"] = g[e].contiguous()
        elif name.endswith("mlp.gate.weight") and hasattr(model.config, "num_local_experts"):
            out[name.replace("mlp.gate.weight", "block_sparse_moe.gate.weight")] = g.contiguous()
        else:
            out[name] = g.contiguous()
    return out


def experts_lora(model, tokens, attention, labels, tensors, r=4, scale=2.0):
    """LoRA on Mixtral's attention projections and every expert's w1, w2, w3, in PyTorch: each
    adapted weight is parametrised as W + s·B·A (the same product PEFT's x·Wᵀ + s·(x·Aᵀ)·Bᵀ
    computes; transformers 5 keeps the experts as stacked parameters, which PEFT adapts through a
    conversion of its own). A ~ N(0, 1/in), B ~ N(0, 0.3²)."""
    from torch.nn.utils import parametrize
    g = torch.Generator().manual_seed(1)
    factors = {}

    def pair(path, out_f, in_f):
        a = (torch.randn(r, in_f, generator=g) / in_f ** 0.5).requires_grad_()
        b = (torch.randn(out_f, r, generator=g) * 0.3).requires_grad_()
        factors[path] = (a, b)
        return a, b

    class Dense(torch.nn.Module):
        def __init__(self, a, b):
            super().__init__()
            self.a, self.b = a, b

        def forward(self, w):
            return w + scale * (self.b @ self.a)

    class Stacked(torch.nn.Module):
        def __init__(self, parts):   # per expert, [(a, b)] stacked along the output rows
            super().__init__()
            self.parts = parts

        def forward(self, w):
            return w + scale * torch.stack([torch.cat([b @ a for a, b in e]) for e in self.parts])

    F = model.config.intermediate_size
    for i, layer in enumerate(model.model.layers):
        for m in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            lin = getattr(layer.self_attn, m)
            parametrize.register_parametrization(lin, "weight", Dense(*pair(f"model.layers.{i}.self_attn.{m}", *lin.weight.shape)))
        experts, E, C = layer.mlp.experts, layer.mlp.experts.gate_up_proj.shape[0], model.config.hidden_size
        stem = f"model.layers.{i}.block_sparse_moe.experts"
        gate_up = [[pair(f"{stem}.{e}.w1", F, C), pair(f"{stem}.{e}.w3", F, C)] for e in range(E)]
        down = [[pair(f"{stem}.{e}.w2", C, F)] for e in range(E)]
        parametrize.register_parametrization(experts, "gate_up_proj", Stacked(gate_up))
        parametrize.register_parametrization(experts, "down_proj", Stacked(down))
    out = model(input_ids=tokens, attention_mask=attention, labels=labels)
    out.loss.backward()
    for path, (a, b) in factors.items():
        key = "lora." + path
        tensors[key + ".lora_A"], tensors[key + ".lora_B"] = a.detach().clone(), b.detach().clone()
        tensors[key + ".grad_A"], tensors[key + ".grad_B"] = a.grad.detach().clone(), b.grad.detach().clone()
    return out.loss


def main(family):
    torch.manual_seed(0)
    model = FAMILIES[family]().float()
    randomize(model)
    out_dir = os.path.join(OUT, family)
    model.save_pretrained(out_dir, safe_serialization=True)
    model = type(model).from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager").eval()
    tokens, labels, attention = batch()
    tensors = {"tokens": tokens, "labels": labels}

    out = model(input_ids=tokens, attention_mask=attention, labels=labels)
    out.loss.backward()
    tensors["logits"] = out.logits.detach().float().contiguous()
    tensors["loss"] = out.loss.detach().reshape(1)
    for name, g in checkpoint_gradients(model).items():
        tensors["grad." + name] = g
    model.zero_grad()

    if family == "mixtral":
        for p in model.parameters():
            p.requires_grad_(False)
        tensors["lora_loss"] = experts_lora(model, tokens, attention, labels, tensors).detach().reshape(1)
        save_file(tensors, os.path.join(out_dir, "reference.safetensors"), metadata={"r": "4", "lora_alpha": "8"})
        print(family, "loss", tensors["loss"].item(), "lora loss", tensors["lora_loss"].item())
        return
    torch.manual_seed(1)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS.get(family, TARGETS),
                                            init_lora_weights=False))
    out = peft(input_ids=tokens, attention_mask=attention, labels=labels)
    out.loss.backward()
    for n, m in peft.named_modules():
        if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {}):
            key = "lora." + n.replace("base_model.model.", "")
            tensors[key + ".lora_A"] = m.lora_A["default"].weight.detach().clone().contiguous()
            tensors[key + ".lora_B"] = m.lora_B["default"].weight.detach().clone().contiguous()
            tensors[key + ".grad_A"] = m.lora_A["default"].weight.grad.detach().clone().contiguous()
            tensors[key + ".grad_B"] = m.lora_B["default"].weight.grad.detach().clone().contiguous()
    tensors["lora_loss"] = out.loss.detach().reshape(1)
    save_file(tensors, os.path.join(out_dir, "reference.safetensors"), metadata={"r": "4", "lora_alpha": "8"})
    print(family, "loss", tensors["loss"].item(), "lora loss", tensors["lora_loss"].item())


if __name__ == "__main__":
    for family in sys.argv[1:] or FAMILIES:
        main(family)

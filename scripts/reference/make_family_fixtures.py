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
has attention and MLP biases); phi3 (fused qkv_proj and gate_up_proj, LoRA on the fused matrices). Biases are part of full fine-tuning's gradients; PEFT's LoRA
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


FAMILIES = {"gemma3": gemma3, "qwen2": qwen2, "qwen3": qwen3, "mistral": mistral, "llama3": llama3,
            "llama_linear": llama_linear, "llama_dynamic": llama_dynamic, "phi3": phi3}
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
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().clone().contiguous()
    model.zero_grad()

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

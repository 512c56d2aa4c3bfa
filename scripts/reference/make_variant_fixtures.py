#!/usr/bin/env python3
"""PEFT references for the training-side LoRA variants: LoRA+ and DoRA.

    python3 scripts/reference/make_variant_fixtures.py

Model and batch: those of make_training_fixtures.py (Tests/ModelTests/Fixtures/tiny_llama, r = 4,
lora_alpha = 8, all seven projections, dropout 0, init_lora_weights="pissa", the same B = 2, T = 7
batch with a masked prompt and padding).

loraplus.safetensors  (LoRA+, peft.optimizers.create_loraplus_optimizer, loraplus_lr_ratio 16)
  Ten steps exactly as make_training_fixtures.py takes them (torch.optim.AdamW lr 1e-2 for the
  lora_A group, 1.6e-1 for lora_B, betas 0.9/0.999, eps 1e-8, weight decay 0; cosine schedule
  with 1 warmup step of 10; clipping to norm 1) from the PiSSA start of peft/pissa.safetensors.
  steps_loss (10), steps_grad_norm (10), steps_lr (10, lora_A's), and the factors after the ten
  steps: <module>.lora_A / .lora_B.

dora.safetensors  (DoRA, LoraConfig(use_dora=True) on the same PiSSA start)
  In make_training_fixtures.py's layout: base.<hf name> (the residual), <module>.lora_A / .lora_B,
  <module>.magnitude (lora_magnitude_vector, [out] = ‖W_res + s·B·A‖ per output row), the
  gradients <module>.grad_A / .grad_B / .grad_magnitude of the mean masked loss, tokens, labels,
  loss; then ten steps as above with plain AdamW (lr 1e-2): steps_loss, steps_grad_norm, steps_lr.
"""
import os
import sys

import torch
from peft import LoraConfig, get_peft_model
from peft.optimizers import create_loraplus_optimizer
from transformers import LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_start_fixtures import save_file  # noqa: E402  (a byte-stable safetensors writer)
from make_training_fixtures import MODEL, OUT, TARGETS, batch, ten_steps  # noqa: E402


def peft_model(use_dora):
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS,
                                            init_lora_weights="pissa", use_dora=use_dora))


def adapted_modules(peft):
    return {n.replace("base_model.model.", ""): m for n, m in peft.named_modules()
            if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})}


def loraplus():
    peft = peft_model(use_dora=False)
    optimizer = create_loraplus_optimizer(peft, torch.optim.AdamW, lr=1e-2, loraplus_lr_ratio=16.0,
                                          betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    tensors = {}
    losses = ten_steps(peft, optimizer, tensors)
    for key, m in adapted_modules(peft).items():
        tensors[key + ".lora_A"] = m.lora_A["default"].weight.detach().clone().contiguous()
        tensors[key + ".lora_B"] = m.lora_B["default"].weight.detach().clone().contiguous()
    save_file(tensors, os.path.join(OUT, "loraplus.safetensors"),
              metadata={"r": "4", "lora_alpha": "8", "init": "pissa", "loraplus_lr_ratio": "16"})
    print("loraplus losses", [round(x, 5) for x in losses])


def dora():
    peft = peft_model(use_dora=True)
    tokens, labels, attention = batch()
    tensors = {}
    for name, p in peft.base_model.model.state_dict().items():
        if "lora_" not in name:
            tensors["base." + name.replace(".base_layer", "")] = p.detach().clone().contiguous()
    modules = adapted_modules(peft)
    for key, m in modules.items():
        tensors[key + ".lora_A"] = m.lora_A["default"].weight.detach().clone().contiguous()
        tensors[key + ".lora_B"] = m.lora_B["default"].weight.detach().clone().contiguous()
        tensors[key + ".magnitude"] = m.lora_magnitude_vector["default"].weight.detach().clone().contiguous()
    out = peft(input_ids=tokens, attention_mask=attention, labels=labels)
    out.loss.backward()
    for key, m in modules.items():
        tensors[key + ".grad_A"] = m.lora_A["default"].weight.grad.detach().clone().contiguous()
        tensors[key + ".grad_B"] = m.lora_B["default"].weight.grad.detach().clone().contiguous()
        tensors[key + ".grad_magnitude"] = m.lora_magnitude_vector["default"].weight.grad.detach().clone().contiguous()
    tensors["tokens"] = tokens.to(torch.int64)
    tensors["labels"] = labels.to(torch.int64)
    tensors["loss"] = out.loss.detach().reshape(1)
    params = [p for p in peft.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    optimizer = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    losses = ten_steps(peft, optimizer, tensors)
    save_file(tensors, os.path.join(OUT, "dora.safetensors"),
              metadata={"r": "4", "lora_alpha": "8", "scale": "2.0", "init": "pissa", "use_dora": "true"})
    print("dora loss", out.loss.item(), "losses", [round(x, 5) for x in losses])


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    loraplus()
    dora()

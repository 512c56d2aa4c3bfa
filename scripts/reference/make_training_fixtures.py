#!/usr/bin/env python3
"""PEFT reference for one training step and ten optimiser steps on a tiny random Llama.

    python3 scripts/reference/make_training_fixtures.py

Model: Tests/ModelTests/Fixtures/tiny_llama (made by make_model_fixtures.py; SmolLM2's structure in
miniature). For each case, PEFT's get_peft_model on all seven projections (r = 4, lora_alpha = 8,
dropout 0) then one batch (B = 2, T = 7; sequence 0 has its first three labels masked as a prompt,
sequence 1 ends in two padding tokens whose labels are masked):

  pissa: init_lora_weights="pissa" (exact SVD): B ≠ 0, so A and B both get gradients.
  lora:  init_lora_weights=True (Kaiming A, B = 0): only B gets a gradient at step 0.

Writes Tests/TrainingTests/Fixtures/peft/<case>.safetensors with
  base.<hf name>            every base-model tensor after PEFT's init (the residual for pissa)
  <module>.lora_A / .lora_B the initial factors (float32)
  <module>.grad_A / .grad_B their gradients of the mean masked next-token loss
  tokens, labels (int64, B×T; labels −100 where ignored, HF's unshifted convention), loss (1)
  steps_loss (10): the loss before each of 10 AdamW steps (lr 1e-2, betas 0.9/0.999, eps 1e-8,
  weight decay 0) under transformers' cosine schedule with 1 warmup step of 10, and gradient
  clipping to norm 1.0 (torch.nn.utils.clip_grad_norm_); steps_grad_norm (10): the norm before
  clipping; steps_lr (10): the learning rate used by each step.
"""
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForCausalLM, get_cosine_schedule_with_warmup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "Tests/ModelTests/Fixtures/tiny_llama")
OUT = os.path.join(ROOT, "Tests/TrainingTests/Fixtures/peft")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def batch():
    g = torch.Generator().manual_seed(7)
    tokens = torch.randint(3, 96, (2, 7), generator=g)
    tokens[1, 5:] = 2  # pad
    labels = tokens.clone()
    labels[0, :3] = -100
    labels[1, 5:] = -100
    attention = torch.ones_like(tokens)
    attention[1, 5:] = 0
    return tokens, labels, attention


def ten_steps(peft, opt, tensors):
    """Ten steps on the batch under transformers' cosine schedule (1 warmup step of 10), clipping to
    norm 1: steps_loss, steps_grad_norm, steps_lr (the first param group's) into `tensors`."""
    tokens, labels, attention = batch()
    params = [p for p in peft.parameters() if p.requires_grad]
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=1, num_training_steps=10)
    losses, norms, lrs = [], [], []
    for _ in range(10):
        loss = peft(input_ids=tokens, attention_mask=attention, labels=labels).loss
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(params, 1.0).item())
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    tensors["steps_loss"] = torch.tensor(losses, dtype=torch.float64)
    tensors["steps_grad_norm"] = torch.tensor(norms, dtype=torch.float64)
    tensors["steps_lr"] = torch.tensor(lrs, dtype=torch.float64)
    return losses


def run(case, init):
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS,
                                            init_lora_weights=init))
    tokens, labels, attention = batch()
    tensors = {}
    for name, p in peft.base_model.model.state_dict().items():
        if "lora_" not in name:
            tensors["base." + name.replace(".base_layer", "")] = p.detach().clone().contiguous()
    modules = {n: m for n, m in peft.named_modules() if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})}
    for n, m in modules.items():
        key = n.replace("base_model.model.", "")
        tensors[key + ".lora_A"] = m.lora_A["default"].weight.detach().clone().contiguous()
        tensors[key + ".lora_B"] = m.lora_B["default"].weight.detach().clone().contiguous()
    out = peft(input_ids=tokens, attention_mask=attention, labels=labels)
    out.loss.backward()
    for n, m in modules.items():
        key = n.replace("base_model.model.", "")
        tensors[key + ".grad_A"] = m.lora_A["default"].weight.grad.detach().clone().contiguous()
        tensors[key + ".grad_B"] = m.lora_B["default"].weight.grad.detach().clone().contiguous()
    tensors["tokens"] = tokens.to(torch.int64)
    tensors["labels"] = labels.to(torch.int64)
    tensors["loss"] = out.loss.detach().reshape(1)

    params = [p for p in peft.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    losses = ten_steps(peft, opt, tensors)
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, f"{case}.safetensors"),
              metadata={"r": "4", "lora_alpha": "8", "scale": "2.0", "init": str(init)})
    print(case, "loss", out.loss.item(), "losses", [round(x, 5) for x in losses])


if __name__ == "__main__":
    run("pissa", "pissa")
    run("lora", True)

#!/usr/bin/env python3
"""PyTorch reference for full fine-tuning (every weight trained) on the tiny random Llama.

    python3 scripts/reference/make_full_ft_fixtures.py

Model: Tests/ModelTests/Fixtures/tiny_llama (made by make_model_fixtures.py; tied embeddings).
Batch: the one of make_training_fixtures.py (B = 2, T = 7; sequence 0 has its first three labels
masked as a prompt, sequence 1 ends in two padding tokens whose labels are masked).

Writes Tests/TrainingTests/Fixtures/full/full.safetensors with
  grad.<hf name>   the gradient of the mean masked next-token loss for every parameter
                   (named_parameters: the tied head has no tensor of its own, so
                   grad.model.embed_tokens.weight is the lookup's gradient plus the head's)
  tokens, labels   (int64, B×T; labels −100 where ignored), loss (1)
  steps_loss (10)  the loss before each of 10 AdamW steps (lr 1e-3, betas 0.9/0.999, eps 1e-8,
                   weight decay 0) under transformers' cosine schedule with 1 warmup step of 10 and
                   clipping to norm 1.0; steps_grad_norm (10) the norm before clipping; steps_lr (10).
"""
import os

import torch
from safetensors.torch import save_file
from transformers import LlamaForCausalLM, get_cosine_schedule_with_warmup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "Tests/ModelTests/Fixtures/tiny_llama")
OUT = os.path.join(ROOT, "Tests/TrainingTests/Fixtures/full")


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


def main():
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    tokens, labels, attention = batch()
    out = model(input_ids=tokens, attention_mask=attention, labels=labels)
    out.loss.backward()
    tensors = {}
    params = list(model.named_parameters())
    for name, p in params:
        tensors["grad." + name] = p.grad.detach().clone().contiguous()
    tensors["tokens"] = tokens.to(torch.int64)
    tensors["labels"] = labels.to(torch.int64)
    tensors["loss"] = out.loss.detach().reshape(1)

    ps = [p for _, p in params]
    for p in ps:
        p.grad = None
    opt = torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=1, num_training_steps=10)
    losses, norms, lrs = [], [], []
    for _ in range(10):
        loss = model(input_ids=tokens, attention_mask=attention, labels=labels).loss
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(ps, 1.0).item())
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    tensors["steps_loss"] = torch.tensor(losses, dtype=torch.float64)
    tensors["steps_grad_norm"] = torch.tensor(norms, dtype=torch.float64)
    tensors["steps_lr"] = torch.tensor(lrs, dtype=torch.float64)
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "full.safetensors"), metadata={"parameters": str(len(params))})
    print("loss", out.loss.item(), "losses", [round(x, 5) for x in losses], "norms", [round(x, 4) for x in norms])


if __name__ == "__main__":
    main()

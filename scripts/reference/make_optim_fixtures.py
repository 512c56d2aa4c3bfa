#!/usr/bin/env python3
"""Reference fixtures for the Swift optimiser (AdamW, gradient clipping, learning-rate schedules).

Run from anywhere:  python3 scripts/reference/make_optim_fixtures.py
Writes into Tests/TrainingTests/Fixtures/optim/ (deterministic: fixed torch.Generator seeds).

adamw.safetensors / adamw.json
------------------------------
Three parameters, 100 values in all (layout order, as registered in the Swift ParameterStore):
    a [4, 7], b [5, 9], c [27]
initialised N(0, 1) (seed 1). Ten gradient sets (seed 2): step k draws N(0, 1) * SCALES[k], so the
global norm is about 10 * SCALES[k] and clip_grad_norm_(max_norm=1.0) clips some steps, not others.

Tensors (float32, "flat" = a, b, c concatenated in that order, 100 values):
    init                 [100]      the initial parameters
    grads                [10, 100]  the raw gradients of each step (before clipping)
    <config>/grads_used  [10, 100]  the gradients AdamW saw (after clipping, if the config clips)
    <config>/params      [10, 100]  parameters after each optimizer.step()
    <config>/exp_avg     [10, 100]  AdamW state after each step
    <config>/exp_avg_sq  [10, 100]
Configs (torch.optim.AdamW(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, foreach=False)):
    clip_cosine_wd0    weight_decay 0.0, clip_grad_norm_(1.0), get_cosine_schedule_with_warmup(
                       num_warmup_steps=ceil(0.1 * 10) = 1, num_training_steps=10)
    clip_cosine_wd0.1  the same with weight_decay 0.1
    plain_wd0.1        weight_decay 0.1, no clipping, constant lr 1e-2
adamw.json holds the layout, hyperparameters, and per config the lr each step used (read from
param_groups before optimizer.step(), exactly as the Trainer's loop sees it) and the total norm
clip_grad_norm_ returned (a float32 tensor, stored as a Python float).

The loop is the Trainer's:  loss.backward(); clip_grad_norm_; optimizer.step(); scheduler.step().
LambdaLR evaluates the lambda at construction (last_epoch 0), so update k (k = 0, 1, ...) uses
base_lr * lambda(k): with warmup > 0 the first update has lr 0 (moments still advance, step = 1).

schedules.json
--------------
lr values over total_steps optimizer steps for transformers' get_constant_schedule_with_warmup,
get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup (num_cycles 0.5), base lr 2e-5,
each with warmup given as a ratio (resolved as TrainingArguments.get_warmup_steps does:
ceil(total * ratio), in binary floating point: 100 * 0.07 gives 8) or as steps. lrs[k] is the lr of
update k (0-based).
"""
import json
import math
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import (
    TrainingArguments,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "TrainingTests", "Fixtures", "optim")

LAYOUT = [("a", [4, 7]), ("b", [5, 9]), ("c", [27])]
STEPS = 10
SCALES = [0.3, 0.03, 0.2, 0.05, 0.5, 0.02, 0.15, 0.08, 0.4, 0.01]
LR, BETAS, EPS, MAX_NORM = 1e-2, (0.9, 0.999), 1e-8, 1.0


def warmup_steps(total, ratio=None, steps=None):
    """TrainingArguments.get_warmup_steps (transformers 5: one float field, < 1 is a ratio)."""
    args = TrainingArguments(output_dir="/tmp/unused", warmup_steps=ratio if ratio is not None else steps,
                             report_to=[])
    return args.get_warmup_steps(total)


def flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def make_adamw():
    gen = torch.Generator().manual_seed(1)
    init = [torch.randn(shape, generator=gen) for _, shape in LAYOUT]
    gen = torch.Generator().manual_seed(2)
    grads = [[torch.randn(shape, generator=gen) * SCALES[k] for _, shape in LAYOUT] for k in range(STEPS)]

    tensors = {"init": flat(init), "grads": torch.stack([flat(g) for g in grads])}
    configs = {}
    for name, wd, clip, cosine in [("clip_cosine_wd0", 0.0, True, True),
                                   ("clip_cosine_wd0.1", 0.1, True, True),
                                   ("plain_wd0.1", 0.1, False, False)]:
        params = [torch.nn.Parameter(t.clone()) for t in init]
        opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=wd, foreach=False)
        warm = warmup_steps(STEPS, ratio=0.1)
        sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=warm, num_training_steps=STEPS) if cosine else None
        lrs, norms, used, after, m, v = [], [], [], [], [], []
        for k in range(STEPS):
            for p, g in zip(params, grads[k]):
                p.grad = g.clone()
            if clip:
                norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm=MAX_NORM)))
            lrs.append(opt.param_groups[0]["lr"])
            used.append(flat([p.grad for p in params]))
            opt.step()
            if sched is not None:
                sched.step()
            after.append(flat([p.detach() for p in params]))
            m.append(flat([opt.state[p]["exp_avg"] for p in params]))
            v.append(flat([opt.state[p]["exp_avg_sq"] for p in params]))
        tensors[f"{name}/grads_used"] = torch.stack(used)
        tensors[f"{name}/params"] = torch.stack(after)
        tensors[f"{name}/exp_avg"] = torch.stack(m)
        tensors[f"{name}/exp_avg_sq"] = torch.stack(v)
        configs[name] = {"weight_decay": wd, "clip": clip, "max_norm": MAX_NORM if clip else None,
                         "schedule": "cosine" if cosine else "constant",
                         "warmup_steps": warm if cosine else 0, "lrs": lrs, "grad_norms": norms}

    save_file({k: t.contiguous() for k, t in tensors.items()}, os.path.join(OUT, "adamw.safetensors"),
              metadata={"format": "pt"})
    meta = {"torch_version": torch.__version__, "transformers_version": transformers.__version__,
            "layout": [{"name": n, "shape": s} for n, s in LAYOUT], "steps": STEPS, "lr": LR,
            "betas": list(BETAS), "eps": EPS, "configs": configs}
    with open(os.path.join(OUT, "adamw.json"), "w") as f:
        json.dump(meta, f, indent=1)


def make_schedules():
    base = 2e-5
    makers = {
        "constant": lambda o, w, t: get_constant_schedule_with_warmup(o, num_warmup_steps=w),
        "linear": lambda o, w, t: get_linear_schedule_with_warmup(o, num_warmup_steps=w, num_training_steps=t),
        "cosine": lambda o, w, t: get_cosine_schedule_with_warmup(o, num_warmup_steps=w, num_training_steps=t),
    }
    cases = []
    # total 100 with ratio 0.07: 100 * 0.07 = 7.000000000000001 in binary, so ceil gives 8 warmup steps.
    for total, warmup in [(20, {"ratio": 0.1}), (20, {"steps": 3}), (20, {"steps": 0}), (100, {"ratio": 0.07}),
                          (7, {"ratio": 0.5})]:
        w = warmup_steps(total, **warmup)
        for kind, make in makers.items():
            p = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.SGD([p], lr=base)
            sched = make(opt, w, total)
            lrs = []
            for _ in range(total):
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                sched.step()
            cases.append({"kind": kind, "base_lr": base, "total_steps": total, "warmup": warmup,
                          "warmup_steps": w, "lrs": lrs})
    with open(os.path.join(OUT, "schedules.json"), "w") as f:
        json.dump({"transformers_version": transformers.__version__, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_adamw()
    make_schedules()
    print("wrote", os.path.normpath(OUT))

#!/usr/bin/env python3
"""A LoRA adapter made by PEFT itself on the tiny fixture model, and the logits PEFT computes with it.

    python3 scripts/reference/make_peft_adapter_fixture.py   # writes Tests/TrainingTests/Fixtures/peft_made/

Writes, under Tests/TrainingTests/Fixtures/peft_made/:
  f32/          PeftModel.save_pretrained output as PEFT writes it (adapter_config.json with rank_pattern
                {"q_proj": 2} and alpha_pattern {"down_proj": 3.0}, r 4, lora_alpha 8, no rsLoRA;
                adapter_model.safetensors in float32), README.md removed
  bf16/         the same adapter with every tensor stored as bfloat16 (values were rounded to bfloat16
                before the logits were computed, so both directories give the same logits)
  rslora_f16/   a second adapter (r 4, lora_alpha 6, use_rslora, no patterns), tensors stored as float16
  logits.safetensors  "tokens" [2, 12] int64, "logits_f32" / "logits_rslora" [2, 12, V] float32: the base model
                + adapter in PEFT, float32
The factors are random (init_lora_weights=False makes PEFT draw A and B), seeded.
"""
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "Tests/Fixtures/tiny_trainable")
OUT = os.path.join(ROOT, "Tests/TrainingTests/Fixtures/peft_made")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make(config, rounding, seed):
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    model = get_peft_model(base, config)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.mul_(4.0)  # make the update large enough to matter
                p.copy_(p.to(rounding).to(torch.float32))
    return model.eval()


def save_as(src, dst, dtype):
    shutil.copytree(src, dst)
    path = os.path.join(dst, "adapter_model.safetensors")
    tensors = {k: v.to(dtype).contiguous() for k, v in load_file(path).items()}
    save_file(tensors, path, metadata={"format": "pt"})


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    tokens = torch.randint(0, 320, (2, 12), generator=torch.Generator().manual_seed(1))
    out = {"tokens": tokens}

    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0, init_lora_weights=False,
                     rank_pattern={"q_proj": 2}, alpha_pattern={"down_proj": 3.0}, task_type="CAUSAL_LM")
    model = make(cfg, torch.bfloat16, 0)
    with torch.no_grad():
        out["logits_f32"] = model(input_ids=tokens).logits.float()
    model.save_pretrained(os.path.join(OUT, "f32"))
    save_as(os.path.join(OUT, "f32"), os.path.join(OUT, "bf16"), torch.bfloat16)

    cfg = LoraConfig(r=4, lora_alpha=6, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0,
                     init_lora_weights=False, use_rslora=True, task_type="CAUSAL_LM")
    model = make(cfg, torch.float16, 1)
    with torch.no_grad():
        out["logits_rslora"] = model(input_ids=tokens).logits.float()
    model.save_pretrained(os.path.join(OUT, "rslora_tmp"))
    save_as(os.path.join(OUT, "rslora_tmp"), os.path.join(OUT, "rslora_f16"), torch.float16)
    shutil.rmtree(os.path.join(OUT, "rslora_tmp"))
    for d in ["f32", "bf16", "rslora_f16"]:
        readme = os.path.join(OUT, d, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
        cfg_path = os.path.join(OUT, d, "adapter_config.json")
        text = open(cfg_path).read().replace(MODEL, "Tests/Fixtures/tiny_trainable")  # no machine-specific path
        open(cfg_path, "w").write(text)
    # Check the saved directories load back in PEFT to the same logits.
    for d, key in [("bf16", "logits_f32"), ("rslora_f16", "logits_rslora")]:
        base = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
        m = PeftModel.from_pretrained(base, os.path.join(OUT, d)).eval()
        m = m.float()
        with torch.no_grad():
            got = m(input_ids=tokens).logits.float()
        print(d, "reload max |diff|", (got - out[key]).abs().max().item())
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "logits.safetensors"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()

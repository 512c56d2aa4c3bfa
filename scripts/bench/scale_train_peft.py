#!/usr/bin/env python3
"""PyTorch + PEFT + bitsandbytes (CPU 4-bit) on the same QPiSSA start as scale_train.sh's run b:
transformers loads the NF4 residual that `pissa init --quant nf4` wrote (its config.json carries
bitsandbytes' quantization_config, so every target projection is a Linear4bit), PEFT loads
RES/pissa_init as a trainable adapter, and batch 1 × 256 tokens trains with gradient
checkpointing and AdamW (lr 1e-4), 2 threads.

    /usr/bin/time -v python3 scripts/bench/scale_train_peft.py RES DATA [--steps 3] [--embed-dtype bfloat16]

prepare_model_for_kbit_training (the QLoRA recipe) is not called: it casts every non-quantised
weight, embedding and head included, to float32; --embed-dtype float32 loads them so instead.
Prints start-up and each step's wall and CPU seconds, and the peak RSS (ru_maxrss).
"""
import argparse
import os
import resource
import time

t_start = time.perf_counter()
import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6   # kB → GB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("residual")
    ap.add_argument("data")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--embed-dtype", default="bfloat16", choices=["bfloat16", "float32"])
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    dtype = getattr(torch, args.embed_dtype)
    model = AutoModelForCausalLM.from_pretrained(args.residual, device_map="cpu", dtype=dtype)
    kinds = {}
    for m in model.modules():
        kinds[type(m).__name__] = kinds.get(type(m).__name__, 0) + 1
    print(f"loaded: {kinds.get('Linear4bit', 0)} Linear4bit; embedding {model.get_input_embeddings().weight.dtype}, "
          f"head {model.get_output_embeddings().weight.dtype}; RSS so far {rss_gb():.2f} GB", flush=True)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model.config.use_cache = False
    model = PeftModel.from_pretrained(model, os.path.join(args.residual, "pissa_init"), is_trainable=True)
    trained = [p for p in model.parameters() if p.requires_grad]
    print(f"adapter: {sum(p.numel() for p in trained):,} trained parameters ({trained[0].dtype})", flush=True)
    optimizer = torch.optim.AdamW(trained, lr=1e-4, weight_decay=0.0)
    tok = Tokenizer.from_file(os.path.join(args.residual, "tokenizer.json"))
    ids = tok.encode(open(args.data, encoding="utf-8").read()).ids
    startup = time.perf_counter() - t_start
    print(f"start-up {startup:.1f} s wall, {cpu():.1f} CPU s (imports, load, adapter, tokenising); RSS {rss_gb():.2f} GB", flush=True)
    model.train()
    for step in range(args.steps):
        t0, c0 = time.perf_counter(), cpu()
        begin = step * args.seq
        x = torch.tensor([ids[begin:begin + args.seq]])
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        print(f"step {step + 1}: {time.perf_counter() - t0:.1f} s wall, {cpu() - c0:.1f} CPU s, loss {loss.item():.4f}, "
              f"peak RSS {rss_gb():.2f} GB", flush=True)
    print(f"peak RSS (ru_maxrss) {rss_gb():.2f} GB")


if __name__ == "__main__":
    main()

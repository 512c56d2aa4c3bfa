#!/usr/bin/env python3
"""Time PEFT's data-driven starts, CorDA and EVA, the reference `pissa init --init corda|eva` is
compared with (scripts/bench/calib_vs_peft.sh runs both, interleaved, on the same CPU).

    python3 scripts/bench/peft_calib_bench.py MODEL_DIR TEXT --method corda|eva [--rank 16]
        [--batches 8] [--batch-size 4] [--seq-len 256] [--threads 2] --json OUT.json

Calibration data: TEXT tokenised with the model's tokenizer and cut into sequences of --seq-len
tokens (as `pissa` reads a .txt), the first --batches × --batch-size of them, every token
supervised. Timed, after loading the model (not timed):
  corda: preprocess_corda(model, LoraConfig(init_lora_weights="corda", CordaConfig(ipm)), run_model)
         with run_model = one forward per sequence (PEFT's CorDA hook takes batch size 1), then
         get_peft_model (corda_init: W − s·B·A per module);
  eva:   get_peft_model(LoraConfig(init_lora_weights="eva", EvaConfig())), then
         initialize_lora_eva_weights over the batches (input_ids, attention_mask, labels), cycled
         by PEFT until convergence.
Prints and writes {"seconds": [...], "median": s, "threads": n}. torch.set_num_threads(--threads).
"""
import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def sequences(tokenizer, path, count, length):
    ids = tokenizer(open(path, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    return torch.tensor([ids[i * length:(i + 1) * length] for i in range(count)])


def run_once(args, tokens):
    from peft import LoraConfig, get_peft_model
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    start = time.perf_counter()
    if args.method == "corda":
        from peft.tuners.lora.config import CordaConfig
        from peft.tuners.lora.corda import preprocess_corda
        config = LoraConfig(r=args.rank, lora_alpha=args.rank, target_modules=TARGETS, init_lora_weights="corda",
                            corda_config=CordaConfig(corda_method="ipm"))

        @torch.no_grad()
        def run_model():
            for i in range(tokens.shape[0]):
                model(input_ids=tokens[i:i + 1])

        preprocess_corda(model, config, run_model=run_model)
        get_peft_model(model, config)
        extra = {}
    else:
        from peft.tuners.lora.config import EvaConfig
        from peft.tuners.lora.eva import initialize_lora_eva_weights
        config = LoraConfig(r=args.rank, lora_alpha=args.rank, target_modules=TARGETS, init_lora_weights="eva", eva_config=EvaConfig())
        peft = get_peft_model(model, config)
        batches = [{"input_ids": tokens[i:i + args.batch_size], "attention_mask": torch.ones_like(tokens[i:i + args.batch_size]),
                    "labels": tokens[i:i + args.batch_size]} for i in range(0, tokens.shape[0], args.batch_size)]
        initialize_lora_eva_weights(peft, batches, show_progress_bar=False)
        extra = {"rank_pattern_entries": len(peft.peft_config["default"].rank_pattern)}
    return time.perf_counter() - start, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("text")
    ap.add_argument("--method", choices=["corda", "eva"], required=True)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    tokens = sequences(tokenizer, args.text, args.batches * args.batch_size, args.seq_len)
    seconds, extra = [], {}
    for _ in range(args.repeats):
        s, extra = run_once(args, tokens)
        seconds.append(s)
        print(f"PEFT {args.method}: {s:.2f} s")
    result = {"method": args.method, "seconds": seconds, "median": statistics.median(seconds), "threads": args.threads,
              "sequences": int(tokens.shape[0]), "seq_len": args.seq_len, **extra}
    if args.json:
        json.dump(result, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Model of data-parallel step time and scaling efficiency for docs/SCALING.md.

    python3 scripts/bench/scaling_model.py --gflops 60 --latency-us 30 [--tokens 1024]
        [--gflops-7b 40 --tokens-7b 256]

--gflops-7b and --tokens-7b give the 7B shape its own rate and batch (QPiSSA's NF4 steps at
batch 1 x 256, what fits in 8 GB, measured by scale_train.sh); by default it shares the others'.

Weak scaling: every machine trains `--tokens` tokens per step (its share of a global batch that
grows with the machines), so one step is

    t(N) = t_compute + t_sum(N),   efficiency(N) = t_compute / t(N)
    t_compute = FLOPs(tokens) / R                       (R: one machine's sustained GFLOP/s)
    t_sum(N)  = 2 (N - 1) / N * G / B  +  2 (N - 1) * alpha * ceil(G / S)

G is the bytes of trained gradients each rank contributes (4 bytes a parameter), B the link's
bandwidth in bytes/s, alpha the time of one message (software + wire), S the 16 MiB segment of
the fixed-order sum (an all-to-all then an all-gather per segment, N - 1 messages each way for
each): the sum neither overlaps the backward pass nor compresses anything. Strong scaling is
printed for 32 machines sharing a global batch of 32 sequences (one each; sequences are not
split over machines), against one machine running all 32: t_compute(1 sequence) + t_sum(32)
per step instead of 32 t_compute(1 sequence).

FLOPs of a step on T tokens of length L (forward 2 P_f per token for the frozen matrices, backward
2 P_f for dx, + 2 P_t for the trained weights' dW, attention 4 L d per layer and token each way,
the head 2 V d forward and backward), with gradient checkpointing adding one forward for the 7B.
"""
import argparse
import math

MODELS = {
    # name: layers, hidden, ffn, heads, kv_heads, head_dim, vocab, tied
    "SmolLM2-135M": (30, 576, 1536, 9, 3, 64, 49152, True),
    "Qwen2.5-0.5B shape": (24, 896, 4864, 14, 2, 64, 151936, True),
    "LLaMA-2-7B shape": (32, 4096, 11008, 32, 32, 128, 32000, False),
}
LINKS = {"1 GbE": 0.94e9 / 8, "10 GbE": 9.4e9 / 8, "25 GbE": 23.5e9 / 8}   # TCP goodput ~94 % of line rate
SEGMENT = 16 * 2**20


def shapes(m):
    L, C, F, H, KV, D, V, tied = m
    proj = [(H * D, C), (KV * D, C), (KV * D, C), (C, H * D), (F, C), (F, C), (C, F)]   # q k v o gate up down (out, in)
    return L, C, V, tied, proj


def params(m):
    L, C, V, tied, proj = shapes(m)
    linear = L * sum(o * i for o, i in proj)
    embed = V * C * (1 if tied else 2)
    norms = (2 * L + 1) * C
    return linear, embed, norms


def adapter_params(m, r=16):
    L, C, V, tied, proj = shapes(m)
    return L * sum(r * (o + i) for o, i in proj)


def step_flops(m, tokens, seq, full, checkpoint):
    L, C, V, tied, proj = shapes(m)
    linear, embed, norms = params(m)
    attn = 4 * seq * C * L   # QK^T and PV, per token, forward (causal halves it; backward doubles)
    fwd = 2 * linear + attn + 2 * V * C
    bwd = 2 * linear + 2 * attn + 4 * V * C
    if full:
        bwd += 2 * linear
    else:
        bwd += 6 * adapter_params(m)   # the adapters' own products, forward and backward
    return tokens * (fwd + bwd + (fwd if checkpoint else 0))


def sum_seconds(g, n, bandwidth, alpha):
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * g / bandwidth + 2 * (n - 1) * alpha * math.ceil(g / SEGMENT)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gflops", type=float, required=True, help="one machine's sustained GFLOP/s in training steps")
    ap.add_argument("--latency-us", type=float, required=True, help="time of one message between machines, µs")
    ap.add_argument("--tokens", type=int, default=1024, help="tokens per machine per step (batch 4 x 256)")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--gflops-7b", type=float, help="the 7B shape's GFLOP/s per machine (default: --gflops)")
    ap.add_argument("--tokens-7b", type=int, help="the 7B shape's tokens per machine per step (default: --tokens)")
    args = ap.parse_args()
    alpha = args.latency_us * 1e-6
    big_rate, big_tokens = (args.gflops_7b or args.gflops), (args.tokens_7b or args.tokens)
    print(f"R = {args.gflops:g} GFLOP/s per machine ({big_rate:g} for the 7B shape), alpha = {args.latency_us:g} us, "
          f"{args.tokens} tokens per machine per step ({big_tokens} for the 7B shape)\n")
    print("| model | trained | gradient MB | compute s | link | 2 machines | 8 | 32 | 32, global batch 32 sequences |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m in MODELS.items():
        linear, embed, norms = params(m)
        big = name.startswith("LLaMA")
        rate, tokens = ((big_rate, big_tokens) if big else (args.gflops, args.tokens))
        rate *= 1e9
        for full in (False, True):
            trained = linear + embed + norms if full else adapter_params(m)
            g = 4 * trained
            tc = step_flops(m, tokens, args.seq, full, checkpoint=big) / rate
            for link, bw in LINKS.items():
                cells = []
                for n in (2, 8, 32):
                    ts = sum_seconds(g, n, bw, alpha)
                    cells.append(f"{tc + ts:.2f} s ({100 * tc / (tc + ts):.0f} %)")
                ts32 = sum_seconds(g, 32, bw, alpha)
                one = step_flops(m, args.seq, args.seq, full, checkpoint=big) / rate   # one sequence
                strong = one / (one + ts32)
                what = "full" if full else "r=16 adapters"
                print(f"| {name} | {what} | {g / 1e6:.1f} | {tc:.2f} | {link} | " + " | ".join(cells) + f" | {100 * strong:.0f} % |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Time PEFT's PiSSA initialisation (the reference our Swift `pissa init` is compared against).

    python3 scripts/bench/peft_init_bench.py MODEL_DIR --rank 16 \
        --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
        --modes pissa,pissa_niter_4 --repeats 3 --json OUT.json [--alpha A] [--threads 2]
        [--oversample P] [--encoder|--causal]

For every mode and repeat: load the model in float32 (timed separately: "load"), then time
get_peft_model(model, LoraConfig(r, lora_alpha, target_modules, lora_dropout=0, init_lora_weights=mode))
("decompose"; for 'pissa' this is one full float32 SVD per targeted matrix, for 'pissa_niter_K'
torch.svd_lowrank(W, q=r, niter=K), for 'lora' Kaiming-uniform A and B = 0). Reports medians.
torch.set_num_threads(--threads, default 2).

For every randomized mode (pissa_niter_K), the relative Frobenius difference of each module's rank-r
product scale*B@A from the exact SVD's best rank-r product U_r S_r V_r^T:
||P_mode - P_exact||_F / ||P_exact||_F, aggregated over modules (median, max) per repeat; the JSON has
per-repeat figures and the summary (median of the per-repeat medians, max of the per-repeat maxima).

Also the excess residual ||W - P_mode||_F / ||W - P_exact||_F - 1 (how much worse than the optimal rank-r
approximation; the product difference above is large whenever sigma_r ~ sigma_{r+1}, as in trained LLMs,
even when the approximation itself is nearly optimal).

Timing on a shared machine: each timed run records the CPU cores used by other processes meanwhile
("others"); --wait-idle S waits up to S seconds for the machine to be idle before each timed step, and
--retries N re-runs a disturbed step (others >= 0.25 cores) up to N times.

--oversample P (optional): additionally time torch.svd_lowrank(W, q=r+P, niter=K) truncated to rank r,
outside PEFT, over the same matrices, with the same error measure (PEFT itself never oversamples).

Mode names: pissa, pissa_niter_K, lora (init_lora_weights=True), gaussian.
The model class is AutoModelForCausalLM if config.architectures names a *ForCausalLM, else AutoModel.
"""
import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (scripts/bench/machine.py)
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM


def model_class(model_dir, force):
    if force == "causal":
        return AutoModelForCausalLM
    if force == "encoder":
        return AutoModel
    cfg = AutoConfig.from_pretrained(model_dir)
    return AutoModelForCausalLM if any(a.endswith("ForCausalLM") for a in (cfg.architectures or [])) else AutoModel


def target_weights(model, targets):
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in targets:
            out[name] = mod.weight.detach()
    return out


def _cpu_jiffies():
    """(busy jiffies of the whole machine, jiffies of this process) from /proc."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = sum(v) - v[3] - (v[4] if len(v) > 4 else 0)  # minus idle, iowait
    with open("/proc/self/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    own = int(st[11]) + int(st[12])  # utime + stime
    return busy, own


class OthersMeter:
    """CPU used by OTHER processes during a timed region, in cores (0 = machine otherwise idle)."""

    def __enter__(self):
        self.t0, (self.b0, self.o0) = time.perf_counter(), _cpu_jiffies()
        return self

    def __exit__(self, *exc):
        b1, o1 = _cpu_jiffies()
        dt = max(time.perf_counter() - self.t0, 1e-6)
        hz = os.sysconf("SC_CLK_TCK")
        self.others_cores = max(0.0, ((b1 - self.b0) - (o1 - self.o0)) / hz / dt)


def wait_idle(max_wait, threshold=0.15, window=2.0):
    """Wait (at most max_wait s) until other processes used < threshold cores over `window` seconds."""
    t_end = time.time() + max_wait
    while True:
        with OthersMeter() as m:
            time.sleep(window)
        if m.others_cores < threshold or time.time() > t_end:
            return m.others_cores


def rel_fro(a, b):
    return (torch.linalg.norm(a - b) / torch.linalg.norm(b)).item()


def summarize(vals):
    vals = sorted(vals)
    return {"median": statistics.median(vals), "max": vals[-1], "min": vals[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, help="lora_alpha (default = rank, the paper's default)")
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--modes", default="pissa,pissa_niter_4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--oversample", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--retries", type=int, default=0,
                    help="re-run a timed step up to N times while other processes used >= 0.25 cores during it")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                    help="before each timed step wait up to SECONDS for other processes to use < 0.15 cores "
                         "(this machine is shared; 2 MKL threads on a contended machine run many times slower)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--causal", action="store_const", const="causal", dest="force")
    g.add_argument("--encoder", action="store_const", const="encoder", dest="force")
    args = ap.parse_args()

    import peft
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(args.threads)
    targets = [t for t in args.targets.split(",") if t]
    modes = [m for m in args.modes.split(",") if m]
    alpha = args.alpha if args.alpha is not None else args.rank
    r = args.rank
    cls = model_class(args.model_dir, args.force)
    load_avg_start = os.getloadavg()
    if load_avg_start[0] > 0.5:
        print(f"warning: 1-min load average {load_avg_start[0]:.2f} at start; with {args.threads} torch threads "
              "on a busy machine MKL/OpenMP timings can be many times slower", file=sys.stderr)

    def load():
        if args.wait_idle:
            wait_idle(args.wait_idle)
        t0 = time.perf_counter()
        m = cls.from_pretrained(args.model_dir, dtype=torch.float32)
        return m, time.perf_counter() - t0

    # exact reference products (only needed for randomized modes)
    exact, exact_svd_s = None, None
    if any("_niter_" in m for m in modes) or args.oversample:
        m, _ = load()
        W = target_weights(m, targets)
        if args.wait_idle:
            wait_idle(args.wait_idle)
        t0 = time.perf_counter()
        exact, tail = {}, {}
        for name, w in W.items():
            U, S, Vh = torch.linalg.svd(w, full_matrices=False)
            exact[name] = (U[:, :r] * S[:r]) @ Vh[:r]
            tail[name] = torch.linalg.norm(S[r:]).item()  # ||W - best rank r||_F
        exact_svd_s = time.perf_counter() - t0
        weights = W
        del m
        gc.collect()

    results = {}
    for mode in modes:
        init = {"lora": True, "true": True}.get(mode, mode)
        loads, decs, per_rep, others = [], [], [], []
        n_modules = 0
        for rep in range(args.repeats):
            model, t_load = load()
            torch.manual_seed(args.seed + rep)
            cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0,
                             init_lora_weights=init)
            for attempt in range(1 + args.retries):
                if attempt:  # the previous attempt was disturbed: start again from a fresh model
                    del pm, model
                    gc.collect()
                    model, t_load = load()
                    torch.manual_seed(args.seed + rep)
                if args.wait_idle:
                    wait_idle(args.wait_idle)
                with OthersMeter() as om:
                    t0 = time.perf_counter()
                    pm = get_peft_model(model, cfg)
                    t_dec = time.perf_counter() - t0
                if om.others_cores < 0.25:
                    break
            loads.append(t_load)
            decs.append(t_dec)
            others.append(om.others_cores)
            errs, excess = {}, {}
            for name, mod in pm.named_modules():
                if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
                    n_modules += 1 if rep == 0 else 0
                    if isinstance(init, str) and "_niter_" in init:
                        path = name.removeprefix("base_model.model.")
                        s = mod.scaling["default"]
                        prod = s * mod.lora_B["default"].weight.detach() @ mod.lora_A["default"].weight.detach()
                        errs[path] = rel_fro(prod, exact[path])
                        excess[path] = torch.linalg.norm(weights[path] - prod).item() / tail[path] - 1.0
            if errs:
                per_rep.append({"median": statistics.median(errs.values()), "max": max(errs.values()),
                                "worst_module": max(errs, key=errs.get),
                                "excess_median": statistics.median(excess.values()),
                                "excess_max": max(excess.values())})
            del pm, model
            gc.collect()
        res = {"load_s": loads, "decompose_s": decs, "load_median_s": statistics.median(loads),
               "decompose_median_s": statistics.median(decs), "decompose_min_s": min(decs),
               "others_cpu_cores_during_decompose": others, "n_modules": n_modules}
        if per_rep:
            res["rel_fro_vs_exact"] = {
                "median": statistics.median(p["median"] for p in per_rep),
                "max": max(p["max"] for p in per_rep),
                "per_repeat": per_rep,
            }
            res["excess_residual"] = {
                "median": statistics.median(p["excess_median"] for p in per_rep),
                "max": max(p["excess_max"] for p in per_rep),
            }
        results[mode] = res

    oversampled = {}
    if args.oversample:
        for mode in modes:
            if "_niter_" not in mode:
                continue
            niter = int(mode.split("_niter_")[-1])
            q = r + args.oversample
            times, per_rep, others = [], [], []
            for rep in range(args.repeats):
                torch.manual_seed(args.seed + rep)
                errs, excess = {}, {}
                for attempt in range(1 + args.retries):
                    torch.manual_seed(args.seed + rep)
                    if args.wait_idle:
                        wait_idle(args.wait_idle)
                    with OthersMeter() as om:
                        t0 = time.perf_counter()
                        prods = {}
                        for name, w in weights.items():
                            U, S, V = torch.svd_lowrank(w, q=min(q, min(w.shape)), niter=niter)
                            prods[name] = (U[:, :r] * S[:r]) @ V[:, :r].T
                        t_svd = time.perf_counter() - t0
                    if om.others_cores < 0.25:
                        break
                times.append(t_svd)
                others.append(om.others_cores)
                for name in prods:
                    errs[name] = rel_fro(prods[name], exact[name])
                    excess[name] = torch.linalg.norm(weights[name] - prods[name]).item() / tail[name] - 1.0
                per_rep.append({"median": statistics.median(errs.values()), "max": max(errs.values()),
                                "worst_module": max(errs, key=errs.get),
                                "excess_median": statistics.median(excess.values()),
                                "excess_max": max(excess.values())})
            oversampled[f"svd_lowrank_q{q}_niter_{niter}"] = {
                "svd_s": times, "svd_median_s": statistics.median(times), "others_cpu_cores": others,
                "rel_fro_vs_exact": {"median": statistics.median(p["median"] for p in per_rep),
                                     "max": max(p["max"] for p in per_rep), "per_repeat": per_rep},
                "excess_residual": {"median": statistics.median(p["excess_median"] for p in per_rep),
                                    "max": max(p["excess_max"] for p in per_rep)}}

    out = {
        "model_dir": args.model_dir, "model_class": cls.__name__, "rank": r, "lora_alpha": alpha,
        "targets": targets, "repeats": args.repeats, "threads": args.threads, "dtype": "float32",
        "torch": torch.__version__, "peft": peft.__version__, "platform": platform.platform(),
        "load_average_start": load_avg_start, "load_average_end": os.getloadavg(),
        "exact_svd_reference_s": exact_svd_s, "modes": results,
    }
    if oversampled:
        out["oversampled_svd_lowrank_outside_peft"] = oversampled

    print(f"{args.model_dir}  r={r} alpha={alpha} threads={args.threads} repeats={args.repeats} "
          f"modules={next(iter(results.values()))['n_modules'] if results else 0}")
    nan = float("nan")
    print(f"{'mode':<28}{'load med s':>11}{'decomp med s':>13}{'(min)':>8}{'others':>7}"
          f"{'relF med':>10}{'relF max':>10}{'exc med':>10}{'exc max':>10}")
    for mode, res in results.items():
        e, x = res.get("rel_fro_vs_exact"), res.get("excess_residual")
        print(f"{mode:<28}{res['load_median_s']:>11.3f}{res['decompose_median_s']:>13.3f}"
              f"{res['decompose_min_s']:>8.3f}{max(res['others_cpu_cores_during_decompose']):>7.2f}"
              f"{(e['median'] if e else nan):>10.2e}{(e['max'] if e else nan):>10.2e}"
              f"{(x['median'] if x else nan):>10.2e}{(x['max'] if x else nan):>10.2e}")
    for mode, res in oversampled.items():
        e, x = res["rel_fro_vs_exact"], res["excess_residual"]
        print(f"{mode + ' (raw)':<28}{'':>11}{res['svd_median_s']:>13.3f}{min(res['svd_s']):>8.3f}"
              f"{max(res['others_cpu_cores']):>7.2f}{e['median']:>10.2e}{e['max']:>10.2e}"
              f"{x['median']:>10.2e}{x['max']:>10.2e}")
    print("others = max CPU cores used by other processes during a timed run (0 = clean); relF = "
          "||P - P_exact||_F/||P_exact||_F of the rank-r product; exc = ||W - P||_F/||W - P_exact||_F - 1")
    if exact_svd_s is not None:
        print(f"(exact torch.linalg.svd reference over all modules: {exact_svd_s:.3f} s)")
    out["machine"] = machine.record()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())

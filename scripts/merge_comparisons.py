#!/usr/bin/env python3
"""Merges `pissa compare` results of the same settings run one seed at a time into one results.json
(runs concatenated in seed order, config.seeds their union), so that `pissa report DIR` makes one
report with mean ± std bands over every seed:

    python3 scripts/merge_comparisons.py [--methods M1,M2,...] OUT_DIR RUN_DIR...

A RUN_DIR may hold a stopped comparison's results.partial.json (the runs it finished) instead of a
results.json, and may cover only some of the methods: a seed stopped partway is completed by a
comparison of the same seed with only the missing methods. Runs are ordered by seed, then by the
methods' order in the first input with all of them, or in --methods when the inputs split the
methods between them (--methods must name every method the inputs hold; those none holds are left
out). Refuses inputs whose configurations differ in
anything but the seeds, the methods, the output and the command line, and a (method, seed) given
twice.
"""
import json
import os
import sys


def load(d):
    for name in ("results.json", "results.partial.json"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            return json.load(open(path))
    sys.exit(f"{d}: no results.json or results.partial.json")


def main():
    args = sys.argv[1:]
    order = None
    if args[:1] == ["--methods"]:
        order, args = args[1].split(","), args[2:]
    out, inputs = args[0], args[1:]
    results = [load(d) for d in inputs]
    def comparable(c):
        return {k: v for k, v in c.items() if k not in ("seeds", "methods", "output", "commandLine")}
    base = comparable(results[0]["config"])
    for d, r in zip(inputs, results):
        if comparable(r["config"]) != base:
            sys.exit(f"{d}: its configuration differs from {inputs[0]}'s in more than the seeds and methods")
    methods = []
    for r in sorted(results, key=lambda r: -len(r["config"]["methods"])):
        methods += [m for m in r["config"]["methods"] if m not in methods]
    if order is not None:
        missing = [m for m in methods if m not in order]
        if missing:
            sys.exit(f"--methods {','.join(order)}: does not name {','.join(missing)}, which the inputs hold")
        methods = [m for m in order if m in methods]
    runs, seen = [], set()
    for d, r in zip(inputs, results):
        for run in r["runs"]:
            key = (run["method"], run["seed"])
            if key in seen:
                sys.exit(f"{d}: {key[0]} with seed {key[1]} is in more than one input")
            seen.add(key)
            runs.append(run)
    runs.sort(key=lambda run: (run["seed"], methods.index(run["method"])))
    # The quantisation-error table and init timings do not depend on the seed: take them from an
    # input that finished (a partial result has neither).
    finished = [r for r in results if r.get("quantError") is not None] or results
    merged = dict(finished[0])
    merged["runs"] = runs
    merged["config"] = dict(results[0]["config"])
    merged["config"]["methods"] = methods
    merged["config"]["seeds"] = sorted({run["seed"] for run in runs})
    merged["config"]["output"] = out
    merged["config"]["commandLine"] = " ; ".join(r["config"]["commandLine"] for r in results)
    os.makedirs(out, exist_ok=True)
    json.dump(merged, open(os.path.join(out, "results.json"), "w"), indent=2, sort_keys=True)
    json.dump(merged["config"], open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
    print(f"{out}: {len(merged['runs'])} runs, seeds {merged['config']['seeds']}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Merges `pissa compare` results of the same settings run one seed at a time into one results.json
(runs concatenated in seed order, config.seeds their union), so that `pissa report DIR` makes one
report with mean ± std bands over every seed:

    python3 scripts/merge_comparisons.py OUT_DIR RUN_DIR...

Refuses inputs whose configurations differ in anything but the seeds, the output and the command line.
"""
import json
import os
import sys


def main():
    out, inputs = sys.argv[1], sys.argv[2:]
    results = [json.load(open(os.path.join(d, "results.json"))) for d in inputs]
    def comparable(c):
        return {k: v for k, v in c.items() if k not in ("seeds", "output", "commandLine")}
    base = comparable(results[0]["config"])
    for d, r in zip(inputs, results):
        if comparable(r["config"]) != base:
            sys.exit(f"{d}: its configuration differs from {inputs[0]}'s in more than the seeds")
    merged = dict(results[0])
    merged["runs"] = [run for r in sorted(results, key=lambda r: r["config"]["seeds"][0]) for run in r["runs"]]
    merged["config"] = dict(results[0]["config"])
    merged["config"]["seeds"] = sorted({s for r in results for s in r["config"]["seeds"]})
    merged["config"]["output"] = out
    merged["config"]["commandLine"] = " ; ".join(r["config"]["commandLine"] for r in results)
    os.makedirs(out, exist_ok=True)
    json.dump(merged, open(os.path.join(out, "results.json"), "w"), indent=2, sort_keys=True)
    json.dump(merged["config"], open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
    print(f"{out}: {len(merged['runs'])} runs, seeds {merged['config']['seeds']}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The learning-rate table of docs/RESULTS.md, from the results.json files `pissa compare` wrote.

Reads docs/results/math/results.json (the shared learning rate) and docs/results/lr-*/results.json
(the other rates) and prints, for LoRA and PiSSA with seed 0, the final training loss (mean of the
last tenth of the steps, as report.md), the held-out loss and the exact match at each rate.

    python3 scripts/results_lr_table.py [docs/results]
"""
import glob
import json
import os
import sys


def final_train_loss(run):
    losses = [m["loss"] for m in run["metrics"]]
    tail = max(1, len(losses) // 10)
    return sum(losses[-tail:]) / tail


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "docs/results"
    rows = {}
    for path in [os.path.join(root, "math", "results.json")] + sorted(glob.glob(os.path.join(root, "lr-*", "results.json"))):
        results = json.load(open(path))
        lr = results["config"]["learningRate"]
        for run in results["runs"]:
            if run["seed"] == 0 and run["method"] in ("lora", "pissa"):
                rows.setdefault(lr, {})[run["method"]] = run
    print("| learning rate | LoRA final train loss | LoRA held-out loss | LoRA exact match "
          "| PiSSA final train loss | PiSSA held-out loss | PiSSA exact match |")
    print("|---|---|---|---|---|---|---|")
    for lr in sorted(rows):
        cells = []
        for method in ("lora", "pissa"):
            run = rows[lr].get(method)
            if run is None:
                cells += ["—"] * 3
                continue
            accuracy = run.get("accuracy")
            cells += [f"{final_train_loss(run):.4f}", f"{run['heldOutLoss']:.4f}",
                      "—" if accuracy is None else f"{100 * accuracy:.1f} %"]
        print(f"| {lr:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

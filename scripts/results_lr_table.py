#!/usr/bin/env python3
"""The learning-rate table of docs/RESULTS.md, from the results.json files `pissa compare` wrote.

Reads docs/results/math/results.json (the shared learning rate) and docs/results/lr-*/results.json
(the other rates) and prints, for LoRA and PiSSA with seed 0, the final training loss (mean of the
last tenth of the steps, as report.md), the held-out loss and the exact match at each rate: the
accuracy, right/answered and its 95 % Wilson interval, then McNemar's exact p-value of PiSSA
against LoRA on the same problems (scipy; uncorrected) where both runs recorded their answers.

    python3 scripts/results_lr_table.py [docs/results]
"""
import glob
import json
import os
import sys

from scipy import stats


def final_train_loss(run):
    losses = [m["loss"] for m in run["metrics"]]
    tail = max(1, len(losses) // 10)
    return sum(losses[-tail:]) / tail


def exact_match(run):
    answers = run.get("answers")
    if answers:
        right, n = answers.count("1"), len(answers)
    elif run.get("accuracy") is not None and run.get("answered"):
        n = run["answered"]
        right = round(run["accuracy"] * n)
    else:
        return "—"
    ci = stats.binomtest(right, n).proportion_ci(method="wilson")
    return f"{100 * right / n:.1f} % ({right}/{n}) [{100 * ci.low:.1f}, {100 * ci.high:.1f}]"


def mcnemar(lora, pissa):
    a, b = (lora or {}).get("answers"), (pissa or {}).get("answers")
    if not a or not b:
        return "—"
    only_pissa = sum(x == "0" and y == "1" for x, y in zip(a, b))
    only_lora = sum(x == "1" and y == "0" for x, y in zip(a, b))
    if only_pissa + only_lora == 0:
        return "1.000 (0 vs 0)"
    p = stats.binomtest(only_pissa, only_pissa + only_lora, 0.5).pvalue
    return f"{p:.3f} ({only_pissa} vs {only_lora})"


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
          "| PiSSA final train loss | PiSSA held-out loss | PiSSA exact match | McNemar p (PiSSA alone vs LoRA alone right) |")
    print("|---|---|---|---|---|---|---|---|")
    for lr in sorted(rows):
        cells = []
        for method in ("lora", "pissa"):
            run = rows[lr].get(method)
            if run is None:
                cells += ["—"] * 3
                continue
            cells += [f"{final_train_loss(run):.4f}", f"{run['heldOutLoss']:.4f}", exact_match(run)]
        cells.append(mcnemar(rows[lr].get("lora"), rows[lr].get("pissa")))
        print(f"| {lr:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

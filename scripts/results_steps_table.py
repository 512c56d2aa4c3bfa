#!/usr/bin/env python3
"""The per-step training-loss tables of docs/RESULTS.md, from a results.json `pissa compare` wrote.

Prints, per method, the training loss at the given steps, averaged over the seeds that ran it.

    python3 scripts/results_steps_table.py docs/results/math/results.json 1,5,10,20,40
"""
import json
import sys

LABELS = {"lora": "LoRA", "pissa": "PiSSA", "full": "Full FT", "qlora": "QLoRA", "qpissa": "QPiSSA"}


def main():
    results = json.load(open(sys.argv[1]))
    steps = [int(s) for s in sys.argv[2].split(",")]
    print("| method | " + " | ".join(f"step {s}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for method in results["config"]["methods"]:
        runs = [r for r in results["runs"] if r["method"] == method]
        cells = []
        for s in steps:
            losses = [m["loss"] for r in runs for m in r["metrics"] if m["step"] == s]
            cells.append(f"{sum(losses) / len(losses):.4f}" if losses else "—")
        print(f"| {LABELS.get(method, method)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

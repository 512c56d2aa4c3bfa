#!/usr/bin/env python3
"""One round of a side-by-side benchmark: runs each side's command once, in the order given on
odd rounds and in reverse on even ones (so neither side always runs first, right after the other
or after a build), and records the machine's load around each run.

    python3 scripts/bench/rounds.py --out DIR --round R SIDE='COMMAND' [SIDE='COMMAND' ...]

Each COMMAND runs under bash; its standard output is read as JSON (from its first line that
starts with '{' or '['; null if there is none) and its standard error goes to DIR/SIDE_R.log.
Writes DIR/SIDE_R.json:
  {"side", "round", "command", "startUTC", "wallSeconds", "loadBefore", "loadAfter"
   (1-minute load averages), "machine" (scripts/bench/machine.py), "result" (the command's JSON)}
and prints one line per side on standard error. A failing command stops the round (exit 1).
`python3 scripts/bench/summarize.py KIND DIR` prints the medians and ratios.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402


def parse_json(text):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("{", "[")):
            try:
                return json.loads("\n".join(lines[i:]))
            except json.JSONDecodeError:
                continue
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("sides", nargs="+", metavar="SIDE=COMMAND")
    args = ap.parse_args()
    sides = []
    for s in args.sides:
        name, sep, command = s.partition("=")
        if not sep or not name or "/" in name:
            ap.error(f"expected SIDE=COMMAND, got {s!r}")
        sides.append((name, command))
    if args.round % 2 == 0:
        sides.reverse()
    os.makedirs(args.out, exist_ok=True)
    for name, command in sides:
        start = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        before = os.getloadavg()[0]
        t = time.perf_counter()
        with open(os.path.join(args.out, f"{name}_{args.round}.log"), "w") as log:
            run = subprocess.run(["bash", "-c", command], stdout=subprocess.PIPE, stderr=log, text=True)
        wall = time.perf_counter() - t
        record = {"side": name, "round": args.round, "command": command, "startUTC": start, "wallSeconds": wall,
                  "loadBefore": before, "loadAfter": os.getloadavg()[0], "machine": machine.record(),
                  "result": parse_json(run.stdout), "exitCode": run.returncode}
        with open(os.path.join(args.out, f"{name}_{args.round}.json"), "w") as f:
            json.dump(record, f, indent=1)
        print(f"round {args.round} {name}: {wall:.1f} s, load {before:.1f} → {record['loadAfter']:.1f}"
              + ("" if run.returncode == 0 else f", exit {run.returncode} (see {name}_{args.round}.log)"), file=sys.stderr)
        if run.returncode != 0:
            sys.exit(1)


if __name__ == "__main__":
    main()

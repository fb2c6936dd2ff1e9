#!/usr/bin/env python
"""The step-budget arithmetic behind issue #16's targets, from the tables bench_cpu.py wrote.

    python benchmarks/step_budget.py                       # reads benchmarks/RESULTS.md
    python benchmarks/step_budget.py --results other.md

For each speed target (training step at batch 128 >= 2.5x the fastest PyTorch, at batch 32 >=
2.0x, evaluation forward at batch 128 >= 2.5x) it prints the time the target allows, and what
minitorch_alex's own algorithms need at the least: the GEMM floor, i.e. their multiply-adds at
the sgemm rate measured in the same run (the convolutions' 'mt floor' column; fc6-8 from their
shapes), against the time everything else takes today (the convolutions' transforms: 'mt total'
minus 'mt floor'; LRN, pooling, ReLU, dropout, the SGD update and the framework: the rest of the
step). Batch 32 scales the batch-128 layer times by 32/128 (every layer's work is linear in the
batch); evaluation is the forward pass: conv1's floor / 2 (forward and weight gradient), conv2-5's
/ 3, fc6-8 one product each, the transforms' and the rest's share taken as the forward's share of
the measured layer times.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")
FCS = {"fc6": (9216, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000)}
TARGETS = [("train b128", 128, 2.5, "training step, batch 128"), ("train b32", 32, 2.0, "training step, batch 32"),
           ("eval b128", 128, 2.5, "evaluation forward, batch 128")]


def table(text, heading):
    """Rows (lists of cells) of the first markdown table after ``heading``."""
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[0], rows[2:]  # the header, then the body (after the |---| line)


def ms(cell):
    """'54.3 (2357 ms)' -> 2357.0; '318.5' -> 318.5."""
    found = re.search(r"\(([\d.]+) ms\)", cell)
    return float(found.group(1) if found else cell.split()[0])


def read(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, body = table(text, "## Whole network")
    fastest = head.index("fastest PyTorch")
    whole = {}
    for row in body:
        best = row[fastest]
        whole[row[0]] = {"mt": ms(row[1]), "torch": ms(row[head.index(best)]), "torch_name": best}
    head, body = table(text, "## Layers, forward + backward")
    layers = {}
    for row in body:
        layers[row[0]] = {"fwd": float(row[1]), "bwd": float(row[2]), "total": float(row[3])}
        if "fastest PyTorch" in head:
            best = row[head.index("fastest PyTorch")]
            layers[row[0]].update(torch=float(row[head.index(best)]), torch_name=best)
    head, body = table(text, "### Convolutions against the GEMM floor")
    floors = {row[0]: float(row[head.index("mt floor (ms)")]) for row in body}
    rate = float(re.search(r"reaches (\d+) GFLOP/s", text).group(1))
    return whole, layers, floors, rate


def budget_rows(whole, layers, floors, rate):
    fc_products = {name: 2 * 128 * i * o / 1e9 for name, (i, o) in FCS.items()}  # GFLOP of one product, batch 128
    out = []
    for label, batch, goal, what in TARGETS:
        if label not in whole:
            continue
        scale = batch / 128
        evaluation = label.startswith("eval")
        if evaluation:
            conv_floor = sum(floors[c] / (2 if c == "conv1" else 3) for c in CONVS)
            fc_floor = sum(fc_products.values()) / rate * 1e3
            transforms = sum((layers[c]["fwd"] / layers[c]["total"]) * (layers[c]["total"] - floors[c]) for c in CONVS)
        else:
            conv_floor = sum(floors[c] for c in CONVS) * scale
            fc_floor = 3 * sum(fc_products.values()) / rate * 1e3 * scale
            transforms = sum(layers[c]["total"] - floors[c] for c in CONVS) * scale
        step, torch_step = whole[label]["mt"], whole[label]["torch"]
        allowed = torch_step / goal
        floor = conv_floor + fc_floor
        rest = step - floor - transforms  # LRN, pooling, ReLU, dropout, SGD, fc overheads, the framework
        room = allowed - floor - max(rest, 0.0)
        out.append({"what": what, "goal": goal, "torch": torch_step, "torch_name": whole[label]["torch_name"],
                    "allowed": allowed, "step": step, "conv_floor": conv_floor, "fc_floor": fc_floor, "floor": floor,
                    "transforms": transforms, "rest": rest, "room": room})
    return out


def layer_rows(layers, floors, rate, goal=2.5):
    """Per layer at batch 128 (training): what ``goal`` x the fastest PyTorch's layer time allows,
    against minitorch_alex's GEMM floor for the layer and its time now."""
    out = []
    for name, t in layers.items():
        if "torch" not in t:
            continue
        if name in floors:
            floor = floors[name]
        elif name in FCS:
            i, o = FCS[name]
            floor = 3 * 2 * 128 * i * o / 1e9 / rate * 1e3
        else:
            floor = None  # memory-bound: no GEMM
        out.append({"layer": name, "torch": t["torch"], "torch_name": t["torch_name"], "allowed": t["torch"] / goal,
                    "floor": floor, "now": t["total"]})
    return out


def layer_report(rows, goal=2.5):
    lines = ["", f"Per layer, training at batch 128: {goal}x the fastest PyTorch's time of each layer, against "
             "minitorch_alex's GEMM floor for it ('-': no GEMM, memory-bound).", "",
             f"| layer | fastest PyTorch | / {goal} | mt GEMM floor | mt now | |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["now"] <= r["allowed"]:
            verdict = "met"
        elif r["floor"] is not None and r["floor"] > r["allowed"]:
            verdict = "out of reach: the GEMMs alone take longer"
        else:
            verdict = "not met"
        floor = "-" if r["floor"] is None else f"{r['floor']:.0f}"
        lines.append(f"| {r['layer']} | {r['torch']:.1f} ({r['torch_name']}) | {r['allowed']:.1f} | {floor} | "
                     f"{r['now']:.1f} | {verdict} |")
    total = {k: sum(r[k] for r in rows) for k in ("torch", "allowed", "now")}
    lines.append(f"| all layers | {total['torch']:.0f} | {total['allowed']:.0f} | "
                 f"{sum(r['floor'] or 0 for r in rows):.0f} | {total['now']:.0f} | |")
    return "\n".join(lines)


def report(rows, rate, path):
    lines = [f"`python benchmarks/step_budget.py` (from the tables above, {os.path.basename(path)}; sgemm "
             f"{rate:.0f} GFLOP/s). All times in ms.", "",
             "| target | fastest PyTorch | the target allows | minitorch_alex now | GEMM floor: convs + fc6-8 | "
             "conv transforms now | everything else now | left for the transforms at the target |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        left = (f"{r['room']:.0f} ({100 * r['room'] / r['transforms']:.0f}% of now)" if r["room"] > 0
                else f"none: {-r['room']:.0f} over before any transform")
        lines.append(f"| {r['what']} >= {r['goal']}x | {r['torch']:.0f} ({r['torch_name']}) | {r['allowed']:.0f} | "
                     f"{r['step']:.0f} | {r['floor']:.0f} = {r['conv_floor']:.0f} + {r['fc_floor']:.0f} | "
                     f"{r['transforms']:.0f} | {r['rest']:.0f} | {left} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    args = p.parse_args(argv)
    whole, layers, floors, rate = read(args.results)
    print(report(budget_rows(whole, layers, floors, rate), rate, args.results))
    print(layer_report(layer_rows(layers, floors, rate)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

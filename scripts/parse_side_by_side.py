#!/usr/bin/env python3
"""Ratios from the output of scripts/bench_side_by_side.sh (docs/BENCHMARKS.md).

Per round: forward tokens/s against the base model and the causal-LM call, generation at
batch 1, PGD seconds per step (PyTorch / ours) at the embedding, mid and last layers, full and
LoRA fine-tuning tokens/s with our peak RSS, and the hypervisor's steal while our PGD and
PyTorch's ran. Then the median and the rounds meeting each goal. Standard library only.

Usage: python3 scripts/parse_side_by_side.py OUTPUT.txt [MORE.txt ...]
"""
import json
import re
import statistics
import sys

# The commands of one round, in the script's order (their "# steal" lines follow them).
COMMANDS = ["forward", "torch-forward", "generate", "torch-generate", "pgd", "torch-pgd",
            "train", "torch-full", "lora", "lora-checkpointing", "torch-lora"]
# Ratio name -> goal (ours / baseline, or baseline / ours for PGD seconds).
GOALS = {"forward": 1.2, "forward vs causal LM": 1.2, "generate": 3.0, "pgd embedding": 3.0,
         "pgd mid": 3.0, "pgd last": 3.0, "full fine-tuning": 1.2, "lora": 1.5}


def tokens_per_second(lines, pattern):
    for line in lines:
        if re.search(pattern, line):
            match = re.search(r"([\d.]+) (new )?tokens/s", line)
            if match:
                return float(match.group(1))
    return None


def parse_round(lines):
    ratios = {}
    ours_f = tokens_per_second(lines, r"^forward \(hidden")
    base = tokens_per_second(lines, r"^torch forward \(hidden states, no LM head")
    causal = tokens_per_second(lines, r"^torch forward \(hidden states \+ LM head")
    if ours_f and base:
        ratios["forward"] = ours_f / base
    if ours_f and causal:
        ratios["forward vs causal LM"] = ours_f / causal
    ours_g = tokens_per_second(lines, r"^generate .*batch 1,")
    torch_g = tokens_per_second(lines, r"^torch generate .*batch 1,")
    if ours_g and torch_g:
        ratios["generate"] = ours_g / torch_g
    pgd = [line.split() for line in lines if re.match(r"^(embedding|mid|last)\s", line)]
    ours_p = {p[0]: float(p[2]) for p in pgd if len(p) == 5}
    torch_p = {p[0]: float(p[2]) for p in pgd if len(p) == 4}
    for layer in ("embedding", "mid", "last"):
        if layer in ours_p and layer in torch_p:
            ratios[f"pgd {layer}"] = torch_p[layer] / ours_p[layer]
    steps = [line for line in lines if line.startswith("median step")]
    runs = [json.loads(line) for line in lines if line.startswith("{")]
    extra = {}
    for name, ours_line, key in (("full fine-tuning", 0, "torch-full"), ("lora", 1, "torch-lora")):
        theirs = [j for j in runs if j.get("benchmark") == key]
        if len(steps) > ours_line and theirs:
            ours = float(re.search(r"-> ([\d.]+) tokens/s", steps[ours_line]).group(1))
            ratios[name] = ours / theirs[0]["tokens_per_second"]
            rss = re.search(r"peak RSS ([\d.]+) GB", steps[ours_line])
            if rss:
                extra[f"{name} RSS GB"] = float(rss.group(1))
    steal = [float(m.group(1)) for m in (re.match(r"^# steal ([\d.]+)%", line) for line in lines) if m]
    if len(steal) == len(COMMANDS):
        extra["steal % (our pgd, torch pgd)"] = (steal[COMMANDS.index("pgd")], steal[COMMANDS.index("torch-pgd")])
    return ratios, extra


def main(paths):
    per_goal = {}
    for path in paths:
        text = open(path).read()
        for block in text.split("## round ")[1:]:
            lines = block.splitlines()
            ratios, extra = parse_round(lines)
            shown = ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
            more = ", ".join(f"{k} {v}" for k, v in extra.items())
            print(f"{path} round {lines[0].strip()}: {shown}" + (f"; {more}" if more else ""))
            for k, v in ratios.items():
                per_goal.setdefault(k, []).append(v)
    print()
    for name, values in per_goal.items():
        goal = GOALS.get(name)
        met = sum(v >= goal for v in values) if goal else 0
        print(f"{name:22s} median {statistics.median(values):6.2f}  rounds {len(values)}"
              + (f"  goal >= {goal}: {met} of {len(values)}" if goal else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])

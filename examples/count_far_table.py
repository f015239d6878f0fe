"""docs/counting-far.md's tables from the runs of examples/count_far_runs.sh.

    python examples/count_far_table.py runs/count10k

Reads OUT/LABEL/lstm-seedS/generalization.json; for each label (the recipes first, then the ablation's
rows) and length: the exact-count accuracy and the MAE over the seeds as min / median / max, and the
number of seeds whose accuracy at 10,000 is at least 0.99 (the issue's target).
"""

import argparse
import json
import statistics
from pathlib import Path

TARGET_LENGTH, TARGET = 10_000, 0.99
FIRST = ("far", "generalize")


def spread(values: list[float], form: str) -> str:
    return " / ".join(format(v, form) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    runs = {}  # label -> {seed: rows}
    for path in sorted(args.out.glob("*/lstm-seed*/generalization.json")):
        label, seed = path.parent.parent.name, int(path.parent.name.split("-seed")[1])
        runs.setdefault(label, {})[seed] = json.loads(path.read_text())["lengths"]
    order = [label for label in FIRST if label in runs] + sorted(set(runs) - set(FIRST))
    for key, form, title in (("accuracy", ".3f", "accuracy"), ("mae", ".2g", "MAE")):
        lengths = sorted({row["length"] for seeds in runs.values() for rows in seeds.values() for row in rows})
        print(f"| LSTM | seeds | " + " | ".join(f"{title} at {n:,}" for n in lengths)
              + (f" | seeds >= {TARGET} at {TARGET_LENGTH:,} |" if key == "accuracy" else " |"))
        print("|---" * (len(lengths) + 2 + (key == "accuracy")) + "|")
        for label in order:
            seeds = runs[label]
            by_length = {n: [r[key] for s in sorted(seeds) for r in seeds[s] if r["length"] == n] for n in lengths}
            cells = [spread(by_length[n], form) if by_length[n] else "" for n in lengths]
            line = f"| {label} | {','.join(map(str, sorted(seeds)))} | " + " | ".join(cells)
            if key == "accuracy":
                met = sum(a >= TARGET for a in by_length.get(TARGET_LENGTH, []))
                line += f" | {met}/{len(seeds)}" if by_length.get(TARGET_LENGTH) else " | "
            print(line + " |")
        print()


if __name__ == "__main__":
    main()

"""The generalization table of docs/generalization.md (and plot) from the runs of examples/generalization_runs.sh.

    python examples/generalization_table.py runs/generalization [--plot docs/generalization.png]

Reads OUT/RECIPE/CELL-seedS/generalization.json; prints one row per cell and recipe, one column per
length, each cell holding the exact-count accuracy of every seed (seed 0 / 1 / 2), and the number of
seeds that meet the issue's targets (>= 0.99 at 40, >= 0.95 at 200, >= 0.90 at 1000, 1.0 at 20);
then the median MAE over the seeds.
"""

import argparse
import json
import statistics
from pathlib import Path

TARGETS = {20: 1.0, 40: 0.99, 200: 0.95, 1000: 0.90}
ORDER = ("lstm", "peephole-lstm", "cifg-lstm", "layernorm-lstm", "gru", "layernorm-gru", "rnn", "mingru", "minlstm",
         "unnormalized-minlstm", "slstm")


def row_order(key: tuple[str, str]) -> tuple:
    """Cells in ORDER (others after them), the reference recipe first in each."""
    recipe, cell = key
    return (ORDER.index(cell) if cell in ORDER else len(ORDER), cell, recipe != "reference", recipe)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--plot", type=Path, help="save mean accuracy against length, one line per cell and recipe")
    args = parser.parse_args()
    runs = {}  # (recipe, cell) -> {seed: rows}
    for path in sorted(args.out.glob("*/*-seed*/generalization.json")):
        recipe, (cell, seed) = path.parent.parent.name, path.parent.name.split("-seed")
        runs.setdefault((recipe, cell), {})[int(seed)] = json.loads(path.read_text())["lengths"]
    lengths = sorted({row["length"] for seeds in runs.values() for rows in seeds.values() for row in rows})
    print("| cell | recipe | " + " | ".join(f"length {n}" for n in lengths) + " | seeds meeting the targets |")
    print("|---" * (len(lengths) + 3) + "|")
    curves = {}
    for recipe, cell in sorted(runs, key=row_order):
        seeds = runs[recipe, cell]
        by_length = {n: [next(r["accuracy"] for r in seeds[s] if r["length"] == n) for s in sorted(seeds)]
                     for n in lengths}
        met = sum(all(by_length[n][i] >= t for n, t in TARGETS.items() if n in by_length) for i in range(len(seeds)))
        print(f"| {cell} | {recipe} | " + " | ".join(" / ".join(f"{a:.3f}" for a in by_length[n]) for n in lengths)
              + f" | {met}/{len(seeds)} |")
        curves[f"{cell}, {recipe}"] = [{"length": n, "accuracy": statistics.mean(by_length[n])} for n in lengths]
    print("\n| cell | recipe | " + " | ".join(f"MAE at {n}" for n in lengths) + " |")
    print("|---" * (len(lengths) + 2) + "|")
    for recipe, cell in sorted(runs, key=row_order):
        seeds = runs[recipe, cell]
        maes = [statistics.median(next(r["mae"] for r in seeds[s] if r["length"] == n) for s in seeds) for n in lengths]
        print(f"| {cell} | {recipe} | " + " | ".join(f"{m:.3g}" for m in maes) + " |")
    if args.plot:
        from rnncount.plots import save_generalization
        save_generalization(curves, args.plot, trained_length=20)


if __name__ == "__main__":
    main()

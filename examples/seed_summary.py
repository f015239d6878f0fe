"""Summarise several `rnncount compare` runs (one per seed): first epoch at 100% and final test loss per cell.

    for seed in 0 1 2 3 4; do rnncount compare --seed $seed --out runs/seed$seed; done
    python examples/seed_summary.py runs/seed*
"""

import json
import statistics
import sys
from pathlib import Path

from rnncount.train import first_perfect_epoch


def main(folders: list[str]) -> None:
    runs = [json.loads((Path(folder) / "metrics.json").read_text()) for folder in folders]
    cells = runs[0]["config"]["cells"]
    print(f"| cell | first epoch at 100% (min / median / max over {len(runs)} seeds) | runs reaching 100% "
          "| final test loss (min / median / max) |")
    print("|---|---|---|---|")
    for cell in cells:
        firsts, losses = [], []
        for run in runs:
            epochs = run["cells"][cell]["epochs"]
            firsts.append(first_perfect_epoch(epochs))
            losses.append(epochs[-1]["test_loss"])
        reached = sorted(f for f in firsts if f is not None)
        spread = (f"{reached[0]} / {statistics.median(reached):g} / {reached[-1]}" if len(reached) == len(runs)
                  else "never on some seeds: " + ", ".join("-" if f is None else str(f) for f in firsts))
        print(f"| {cell} | {spread} | {len(reached)}/{len(runs)} | "
              f"{min(losses):.4f} / {statistics.median(losses):.4f} / {max(losses):.4f} |")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Reporting runs: the tables (one renderer for all), the summary JSON and CSV, the plots (rnncount.plots).

Each report function writes its files and returns a Printout, what the command line prints: the text for
stdout and the notes for stderr (a plot that could not be drawn). Nothing here trains or reads a Namespace.

    print(markdown_table(["epoch", "lstm"], [["1", "0.070"], ["2", "0.692"]]))
    | epoch | lstm |
    |---|---|
    | 1 | 0.070 |
    | 2 | 0.692 |
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .files import write_json_atomically, write_text_atomically
from .train import first_perfect_epoch


@dataclass
class Printout:
    """What a report prints: stdout's text (one print) and stderr's notes (one line each)."""

    text: str
    notes: list[str] = field(default_factory=list)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """The one table renderer: a Markdown table, a header, its rule and a line per row (cells already text)."""
    lines = [_row(header), "|---" * len(header) + "|"]
    return "\n".join(lines + [_row(row) for row in rows])


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _plot(draw, path: Path, saved: str, who: str, notes: list[str]) -> str:
    """draw(path) (a function of rnncount.plots); `saved` extended by the plot, or a note on why there is none."""
    try:
        draw(path)
    except RuntimeError as error:  # matplotlib missing: everything else is saved
        notes.append(f"{who}: no plot: {error}")
        return saved
    return saved + f", the plot to {path}"


# ---- train/compare: one run per cell ---------------------------------------------------------------------

def comparison_table(histories: dict[str, list[dict]], lengths: dict[str, list[dict]] | None = None) -> str:
    """Test accuracy per epoch per cell, first epoch at 100%, final test loss, time in all and per epoch; with
    lengths (each cell's rnncount.generalize rows), its accuracy at each of those lengths."""
    cells = list(histories)
    rows = [[str(i + 1)] + [f"{histories[c][i]['test_accuracy']:.3f}" if i < len(histories[c]) else "" for c in cells]
            for i in range(max(len(h) for h in histories.values()))]
    rows.append(["first epoch at 100%"] + [str(first_perfect_epoch(histories[c]) or "never") for c in cells])
    rows.append(["final test loss"] + [f"{histories[c][-1]['test_loss']:.4f}" for c in cells])
    rows.append(["time (s)"] + [f"{sum(e['seconds'] for e in histories[c]):.1f}" for c in cells])
    rows.append(["time per epoch (s)"] + [f"{sum(e['seconds'] for e in histories[c]) / len(histories[c]):.1f}"
                                          for c in cells])
    for index, row in enumerate(next(iter(lengths.values())) if lengths else []):
        rows.append([f"accuracy at length {row['length']}"] + [f"{lengths[c][index]['accuracy']:.3f}" for c in cells])
    return markdown_table(["epoch", *cells], rows)


def report_comparison(histories: dict[str, list[dict]], out: Path, settings: dict[str, dict],
                      lengths: dict[str, list[dict]] | None = None) -> Printout:
    """The table (with each cell's accuracy at other lengths, if scored); saved with the metrics and the learning
    curves. settings: each cell's configuration; metrics.json keeps it per cell, and under "config" the cells
    and what all of them share (a recipe gives each cell its own readout, forget bias, ...)."""
    table = comparison_table(histories, lengths)
    first = next(iter(settings.values()))
    shared = {k: v for k, v in first.items() if all(s.get(k) == v for s in settings.values())}
    report = {"config": {"cells": list(histories), **shared},
              "cells": {cell: {"config": settings[cell], "epochs": epochs,
                               **({"lengths": lengths[cell]} if lengths else {})}
                        for cell, epochs in histories.items()}}
    write_json_atomically(out / "metrics.json", report)
    write_text_atomically(out / "summary.md", table + "\n")
    notes: list[str] = []
    saved = _plot(lambda path: _plots().save_learning_curves(histories, path), out / "learning_curves.png",
                  f"the table to {out / 'summary.md'}, the metrics to {out / 'metrics.json'}", "rnncount compare",
                  notes)
    return Printout(f"{table}\nSaved {saved}, and each model to {out}/CELL/model.pt", notes)


# ---- train/compare --seeds: each cell's seeds as one stack -------------------------------------------------

def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}} / {max(values):{fmt}}"


def seeds_table(histories: dict[str, list[list[dict]]], diverged: dict[str, list[str]],
                seconds: dict[str, float]) -> str:
    """Per cell, min / median / max over its seeds of the test accuracy at every epoch, the first epoch at 100%,
    the final test loss; how many runs reached 100% (and which diverged), the wall time of the stack.
    histories: each cell's runs' epochs (metrics dicts); diverged: each cell's labels of the runs that did."""
    cells = list(histories)
    rows = [[str(i + 1)] + [_spread([h[i]["test_accuracy"] for h in histories[c] if i < len(h)], ".3f")
                            for c in cells]
            for i in range(max((len(h) for hs in histories.values() for h in hs), default=0))]
    firsts = []
    for cell in cells:
        found = [first_perfect_epoch(h) for h in histories[cell]]
        reached = [f for f in found if f is not None]
        firsts.append(_spread(reached, "d") if len(reached) == len(found) else "never" if not reached else
                      "never on some seeds: " + ", ".join("-" if f is None else str(f) for f in found))
    rows.append(["first epoch at 100%"] + firsts)
    rows.append(["runs reaching 100%"] + [
        f"{sum(first_perfect_epoch(h) is not None for h in histories[c])}/{len(histories[c])}" for c in cells])
    rows.append(["final test loss"] + [_spread([h[-1]["test_loss"] for h in histories[c] if h], ".4f")
                                       for c in cells])
    if any(diverged.values()):
        rows.append(["diverged"] + [", ".join(diverged[c]) or "-" for c in cells])
    rows.append(["wall time of the stack (s)"] + [f"{seconds[c]:.1f}" for c in cells])
    return markdown_table(["epoch"] + [f"{cell} ({len(histories[cell])} seeds: min / median / max)"
                                       for cell in cells], rows)


def report_seeds(runs: dict, seconds: dict[str, float], out: Path, config: dict) -> Printout:
    """The table; saved (summary.md) with every run's metrics (metrics.json) and the median learning curves.
    runs: each cell's stacked.Members."""
    histories = {cell: [[e.to_dict() for e in m.trainer.history] for m in members] for cell, members in runs.items()}
    diverged = {cell: [m.label for m in members if m.error] for cell, members in runs.items()}
    table = seeds_table(histories, diverged, seconds)
    report = {"config": config, "cells": {
        cell: {"seconds": seconds[cell], "seeds": {
            str(m.trainer.train_config.seed): {"epochs": [e.to_dict() for e in m.trainer.history], "error": m.error,
                                               "folder": str(m.out)} for m in members}}
        for cell, members in runs.items()}}
    write_json_atomically(Path(out) / "metrics.json", report)
    write_text_atomically(Path(out) / "summary.md", table + "\n")
    medians = {}
    for cell, members in runs.items():
        kept = [m.trainer.history for m in members if m.trainer.history]
        epochs = min((len(h) for h in kept), default=0)
        medians[f"{cell} (median of {len(kept)})"] = [
            {"epoch": i + 1, "test_accuracy": statistics.median(h[i].test_accuracy for h in kept),
             "test_loss": statistics.median(h[i].test_loss for h in kept)} for i in range(epochs)]
    notes: list[str] = []
    saved = _plot(lambda path: _plots().save_learning_curves(medians, path), Path(out) / "learning_curves.png",
                  f"the table to {Path(out) / 'summary.md'}, the metrics to {Path(out) / 'metrics.json'}",
                  "rnncount", notes)
    return Printout(f"{table}\nSaved {saved}, and each run's model.pt and metrics.json to its seedS folder", notes)


# ---- sweep: a grid of runs ----------------------------------------------------------------------------------

def sweep_table(rows: list[dict]) -> str:
    """One line per (cell, hidden size, length) of rnncount.sweep.summarize."""
    return markdown_table(
        ["cell", "hidden", "length", "runs", "final accuracy mean (min-max)", "reached 100%",
         "first epoch at 100% mean (min-max)", "time per run (s)"],
        [[r["cell"], str(r["hidden_size"]), str(r["length"]), str(r["runs"]),
          f"{r['accuracy_mean']:.3f} ({r['accuracy_min']:.3f}-{r['accuracy_max']:.3f})",
          f"{r['reached_100']}/{r['runs']}",
          "-" if r["first_100_mean"] is None else
          f"{r['first_100_mean']:.1f} ({r['first_100_min']}-{r['first_100_max']})",
          f"{r['seconds_mean']:.1f}"] for r in rows])


def sweep_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["cell"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def report_sweep(rows: list[dict], out: Path) -> Printout:
    """The summary table; saved as summary.csv and summary.md."""
    table = sweep_table(rows)
    write_text_atomically(out / "summary.csv", sweep_csv(rows))
    write_text_atomically(out / "summary.md", table + "\n")
    return Printout(f"{table}\nSaved the summary to {out / 'summary.csv'} and {out / 'summary.md'}, "
                    f"each run to {out}/RUN/")


def run_ended(name: str, outcome: dict, epochs: list[dict] | None) -> str:
    """One line about a sweep's run that just ended: its error, or its result (epochs: its metrics)."""
    if outcome["error"]:
        return f"{name}: {outcome['error']}"
    first = first_perfect_epoch(epochs)
    return (f"{name}: test accuracy {epochs[-1]['test_accuracy']:.3f}, first epoch at 100%: "
            f"{first or 'never'}, {sum(e['seconds'] for e in epochs):.1f} s")


# ---- generalize, handmade: one model at many lengths ----------------------------------------------------------

def lengths_table(rows: list[dict], loss: bool = True, mae: str = ".3f") -> str:
    """One line per length of rnncount.generalize.generalization: accuracy, MAE (and loss)."""
    return markdown_table(["length", "accuracy", "MAE"] + (["loss"] if loss else []),
                          [[str(r["length"]), f"{r['accuracy']:.3f}", f"{r['mae']:{mae}}"]
                           + ([f"{r['loss']:.4g}"] if loss else []) for r in rows])


def report_generalization(rows: list[dict], out: Path, report: dict, label: str, trained: int | None) -> Printout:
    """The table; saved as generalization.json (report, with the rows), .md and .png."""
    table = lengths_table(rows)
    write_json_atomically(out / "generalization.json", {**report, "lengths": rows})
    write_text_atomically(out / "generalization.md", table + "\n")
    notes: list[str] = []
    saved = _plot(lambda path: _plots().save_generalization({label: rows}, path, trained), out / "generalization.png",
                  f"the table to {out / 'generalization.md'}, the results to {out / 'generalization.json'}",
                  "rnncount generalize", notes)
    return Printout(f"{table}\nSaved {saved}", notes)


def _plots():
    """rnncount.plots, imported when a plot is drawn (matplotlib is an extra; its absence is a RuntimeError)."""
    from . import plots
    return plots

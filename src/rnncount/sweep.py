"""Sweeps: a grid of independent runs (cells x hidden sizes x lengths x seeds), and its summary.

Each run lives in its own folder, DIR/CELL-hH-lenL-seedS/, with the model file and metrics.json
that `rnncount train` writes after every epoch. A rerun skips the finished runs and resumes the
unfinished ones from their last checkpoint; the summary is read back from the folders, so each
run counts once however often the sweep was started. rnncount.runs trains the grid in worker processes
(runs.sweep_grid), rnncount.report prints and saves the summary.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path

from .model import ModelConfig
from .train import TrainConfig, first_perfect_epoch


@dataclass(frozen=True)
class Run:
    """One point of the grid."""

    model: ModelConfig
    train: TrainConfig

    @property
    def name(self) -> str:
        return f"{self.model.cell}-h{self.model.hidden_size}-len{self.train.length}-seed{self.train.seed}"

    @property
    def group(self) -> tuple[str, int, int]:
        return self.model.cell, self.model.hidden_size, self.train.length


def grid(model: ModelConfig, train: TrainConfig, cells: list[str], hidden_sizes: list[int],
         lengths: list[int], seeds: list[int]) -> list[Run]:
    """Every combination, the other settings taken from `model` and `train`."""
    return [Run(replace(model, cell=cell, hidden_size=hidden), replace(train, length=length, seed=seed))
            for cell, hidden, length, seed in product(cells, hidden_sizes, lengths, seeds)]


def recorded(run: Run, out: Path) -> dict | None:
    """The run's metrics.json if its folder holds this run (the same settings), else None: an unreadable file, or
    a run an earlier sweep with other settings left there (`sweep --force` replaces those), is not this run."""
    try:
        report = json.loads((out / run.name / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    settings = json.loads(json.dumps({**run.model.to_dict(), **run.train.to_dict()}))  # as JSON holds them
    if not isinstance(report, dict) or report.get("config") != settings or not isinstance(report.get("epochs"), list):
        return None
    return report


def finished(run: Run, out: Path) -> dict | None:
    """The run's metrics.json if all its epochs are done, else None."""
    report = recorded(run, out)
    return report if report is not None and len(report["epochs"]) >= run.train.epochs else None


def shape_groups(runs: list[Run]) -> list[list[Run]]:
    """The runs grouped by everything but the seed, in the grid's order: each group trains as one stack."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        key = json.dumps([run.model.to_dict(), replace(run.train, seed=0).to_dict()], sort_keys=True)
        groups.setdefault(key, []).append(run)
    return list(groups.values())


def summarize(runs: list[Run], out: Path) -> list[dict]:
    """One row per (cell, hidden size, length): final accuracy, first epoch at 100% and time over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        report = finished(run, out)
        if report is not None:
            groups.setdefault(run.group, []).append(report)
    rows = []
    for (cell, hidden, length), reports in groups.items():
        accuracy = [r["epochs"][-1]["test_accuracy"] for r in reports]
        firsts = [first_perfect_epoch(r["epochs"]) for r in reports]
        reached = [f for f in firsts if f is not None]
        seconds = [sum(e["seconds"] for e in r["epochs"]) for r in reports]
        rows.append({
            "cell": cell, "hidden_size": hidden, "length": length, "runs": len(reports),
            "accuracy_mean": statistics.fmean(accuracy), "accuracy_min": min(accuracy),
            "accuracy_max": max(accuracy), "reached_100": len(reached),
            "first_100_mean": statistics.fmean(reached) if reached else None,
            "first_100_min": min(reached, default=None), "first_100_max": max(reached, default=None),
            "seconds_mean": statistics.fmean(seconds),
        })
    return rows

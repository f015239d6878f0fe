"""Sweeps: a grid of independent runs (cells x hidden sizes x lengths x seeds) in worker processes.

Each run lives in its own folder, DIR/CELL-hH-lenL-seedS/, with the model file and metrics.json
that `rnncount train` writes after every epoch. A rerun skips the finished runs and resumes the
unfinished ones from their last checkpoint; the summary is read back from the folders, so each
run counts once however often the sweep was started.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from itertools import product
from multiprocessing import get_context
from pathlib import Path

import torch

from . import stacked
from .checkpoint import load_trainer, train_with_checkpoints
from .model import ModelConfig
from .train import NonFiniteError, TrainConfig, Trainer, first_perfect_epoch


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


def finished(run: Run, out: Path) -> dict | None:
    """The run's metrics.json if all its epochs are done, else None."""
    path = out / run.name / "metrics.json"
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    return report if len(report["epochs"]) >= run.train.epochs else None


def train_one(run: Run, out: Path) -> dict:
    """Train (or resume) one run in this process, one thread; returns its outcome."""
    torch.set_num_threads(1)
    folder = out / run.name
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "model.pt").exists():  # killed part-way earlier: continue from its last epoch
        trainer = load_trainer(folder / "model.pt")
    else:
        trainer = Trainer(run.model, run.train)
    try:
        train_with_checkpoints(trainer, folder)
    except NonFiniteError as error:
        return {"name": run.name, "error": str(error)}
    return {"name": run.name, "error": None}


def train_stacked(runs: list[Run], out: Path) -> list[dict]:
    """Train (or resume) runs that differ only in the seed as one stack (rnncount.stacked); their outcomes.

    Runs that cannot share a stack (a curriculum) train one after another instead."""
    torch.set_num_threads(1)
    try:
        stacked.check_stackable(runs[0].train)
    except ValueError:
        return [train_one(run, out) for run in runs]
    members = []
    for run in runs:
        folder = out / run.name
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / "model.pt").exists():  # killed part-way earlier: continue from its last epoch
            members.append(stacked.Member.resume(folder))
        else:
            members.append(stacked.Member.new(run.model, run.train, folder))
    for _ in stacked.fit_stacked(members):
        pass
    return [{"name": run.name, "error": member.error} for run, member in zip(runs, members)]


def shape_groups(runs: list[Run]) -> list[list[Run]]:
    """The runs grouped by everything but the seed, in the grid's order: each group trains as one stack."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        key = json.dumps([run.model.to_dict(), replace(run.train, seed=0).to_dict()], sort_keys=True)
        groups.setdefault(key, []).append(run)
    return list(groups.values())


def execute(runs: list[Run], out: Path, jobs: int) -> Iterator[tuple[Run, dict]]:
    """Train the runs that are not finished, those of one shape stacked, the stacks in `jobs` worker processes;
    yield each run as its stack ends."""
    todo = [run for run in runs if finished(run, out) is None]
    if not todo:
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=one_thread) as pool:
        futures = {pool.submit(train_stacked, group, out): group for group in shape_groups(todo)}
        for future in as_completed(futures):
            for run, outcome in zip(futures[future], future.result()):
                yield run, outcome


def one_thread() -> None:
    """A worker process's initializer: one thread (small matmuls; the processes share the cores)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


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


def as_table(rows: list[dict]) -> str:
    """Markdown, one line per group."""
    lines = ["| cell | hidden | length | runs | final accuracy mean (min-max) | reached 100% "
             "| first epoch at 100% mean (min-max) | time per run (s) |", "|---" * 8 + "|"]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['hidden_size']} | {r['length']} | {r['runs']} | {r['accuracy_mean']:.3f} "
            f"({r['accuracy_min']:.3f}-{r['accuracy_max']:.3f}) | {r['reached_100']}/{r['runs']} | "
            + ("-" if r["first_100_mean"] is None else
               f"{r['first_100_mean']:.1f} ({r['first_100_min']}-{r['first_100_max']})")
            + f" | {r['seconds_mean']:.1f} |")
    return "\n".join(lines)


def as_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["cell"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def describe(run: Run, outcome: dict, out: Path) -> str:
    """One line about a run that just ended."""
    if outcome["error"]:
        return f"{run.name}: {outcome['error']}"
    epochs = finished(run, out)["epochs"]
    first = first_perfect_epoch(epochs)
    return (f"{run.name}: test accuracy {epochs[-1]['test_accuracy']:.3f}, first epoch at 100%: "
            f"{first or 'never'}, {sum(e['seconds'] for e in epochs):.1f} s")

"""Sweeps: a grid in worker processes, resumable, each run counted once."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

from conftest import SCRIPT, assert_one_line_error, rnncount

GRID = ["--cells", "lstm,gru", "--seeds", "0-3", "--train-samples", "300", "--test-samples", "30",
        "--length", "6", "--hidden-size", "5", "--epochs", "3", "--jobs", "1"]  # one stack (cell) at a time


def finished_runs(out):
    return {p.parent.name for p in out.glob("*/metrics.json")
            if '"epoch": 3' in p.read_text()}


def test_sweep_stopped_part_way_then_rerun_finishes_only_the_missing_runs(tmp_path):
    out = tmp_path / "sweep"
    command = [SCRIPT] if SCRIPT else [sys.executable, "-m", "rnncount"]
    first = subprocess.Popen(command + ["sweep", *GRID, "--out", str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not finished_runs(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the sweep and its workers, mid-grid
    first.wait()
    done_before = finished_runs(out)
    assert 1 <= len(done_before) < 8  # a cell's 4 seeds train stacked and finish together
    stamps = {name: (out / name / "metrics.json").stat().st_mtime_ns for name in done_before}

    rerun = rnncount("sweep", *GRID, "--out", out, process=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"8 runs: {len(done_before)} finished earlier, training {8 - len(done_before)}" in rerun.stdout
    trained = {line.split("] ")[1].split(":")[0] for line in rerun.stdout.splitlines() if line.startswith("[")}
    assert trained.isdisjoint(done_before) and len(trained) == 8 - len(done_before)
    assert all((out / name / "metrics.json").stat().st_mtime_ns == stamps[name] for name in done_before)
    assert finished_runs(out) == {f"{c}-h5-len6-seed{s}" for c in ("lstm", "gru") for s in range(4)}

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["cell"], r["runs"]) for r in rows] == [("lstm", "4"), ("gru", "4")]  # each run once
    again = rnncount("sweep", *GRID, "--out", out)
    assert "8 finished earlier, training 0" in again.stdout
    assert [r["runs"] for r in csv.DictReader((out / "summary.csv").open())] == ["4", "4"]


def test_rerun_after_a_kill_between_a_runs_two_writes(tmp_path):
    """A kill after a run's last model.pt but before its metrics.json leaves the metrics one epoch behind: the
    rerun (sweep, stacked or one run at a time, and train --resume) brings them up to the model file."""
    for grid in (GRID, [*GRID, "--curriculum", "2", "--min-length", "3"]):  # stacked; one at a time (a curriculum)
        out = tmp_path / str(len(grid))
        assert rnncount("sweep", *grid, "--out", out).returncode == 0
        metrics = out / "gru-h5-len6-seed1" / "metrics.json"
        whole = metrics.read_text()
        report = json.loads(whole)
        metrics.write_text(json.dumps({**report, "epochs": report["epochs"][:-1]}))
        rerun = rnncount("sweep", *grid, "--out", out)
        assert rerun.returncode == 0, rerun.stderr
        assert "7 finished earlier, training 1" in rerun.stdout
        assert json.loads(metrics.read_text()) == report
    metrics.write_text(json.dumps({**report, "epochs": report["epochs"][:-1]}))
    resumed = rnncount("train", "--resume", metrics.parent)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(metrics.read_text()) == report


def test_sweep_grid_axes_and_bad_input(tmp_path):
    out = tmp_path / "grid"
    result = rnncount("sweep", "--cells", "rnn", "--seeds", "0,2", "--hidden-sizes", "3,4", "--lengths", "4,5",
                      "--train-samples", "40", "--test-samples", "10", "--epochs", "1", "--jobs", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "8 runs: 0 finished earlier" in result.stdout
    assert len([p for p in out.iterdir() if p.is_dir()]) == 8
    assert_one_line_error(rnncount("sweep", "--seeds", "5-2"), "--seeds", "empty range")
    assert_one_line_error(rnncount("sweep", "--hidden-sizes", "10,0"), "--hidden-sizes", "must be >= 1")
    changed = rnncount("sweep", "--cells", "rnn", "--seeds", "0,2", "--epochs", "2", "--out", out)
    assert_one_line_error(changed, "holds a sweep with other settings (epochs")


SMALL = ["--cells", "lstm", "--seeds", "0-1", "--hidden-sizes", "4", "--train-samples", "200", "--test-samples", "30",
         "--length", "8", "--jobs", "1"]


def epochs_of(out, run="lstm-h4-len8-seed0"):
    return len(json.loads((out / run / "metrics.json").read_text())["epochs"])


def test_force_with_other_settings_trains_the_new_runs_over_the_old(tmp_path):
    """--force on a folder of a sweep with other settings (here more epochs) trains every run anew with the new
    settings, rather than resuming the old runs with their own (which left a folder no rerun could use)."""
    out = tmp_path / "sweep"
    assert rnncount("sweep", *SMALL, "--epochs", "1", "--out", out).returncode == 0
    refused = rnncount("sweep", *SMALL, "--epochs", "2", "--out", out)
    assert_one_line_error(refused, "holds a sweep with other settings (epochs)")
    forced = rnncount("sweep", *SMALL, "--epochs", "2", "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "0 finished earlier, training 2" in forced.stdout and epochs_of(out) == 2
    again = rnncount("sweep", *SMALL, "--epochs", "2", "--out", out)
    assert again.returncode == 0 and "2 finished earlier, training 0" in again.stdout


def test_unreadable_records_are_refused_or_retrained(tmp_path):
    """A sweep.json that is not a sweep's record: one line, exit 2 (--force writes a new one); a run's unreadable
    metrics.json: that run is trained again, the others are kept."""
    out = tmp_path / "sweep"
    assert rnncount("sweep", *SMALL, "--epochs", "1", "--out", out).returncode == 0
    (out / "sweep.json").write_text("garbage")
    assert_one_line_error(rnncount("sweep", *SMALL, "--epochs", "1", "--out", out), "is not a sweep's record")
    (out / "lstm-h4-len8-seed0" / "metrics.json").write_text("[1, 2]")
    forced = rnncount("sweep", *SMALL, "--epochs", "1", "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "1 finished earlier, training 1" in forced.stdout and epochs_of(out) == 1


def test_sweep_compile_reaches_its_runs(tmp_path, monkeypatch):
    """--compile is handed to every run of the grid: the stacks' fit_stacked, and a run trained alone (a curriculum
    cannot stack) compiles its layer's steps. (It used to be accepted and ignored.)"""
    import torch

    from rnncount import runs, stacked
    from rnncount.model import ModelConfig
    from rnncount.sweep import grid
    from rnncount.train import TrainConfig
    seen = {}

    def fit(members, compile=False, progress=False):
        seen["stacked"] = compile
        return iter(())

    def train_alone(trainer, folder):
        seen["alone"] = trainer.model.rnn.compiled

    monkeypatch.setattr(stacked, "fit_stacked", fit)
    monkeypatch.setattr(runs, "train_with_checkpoints", train_alone)
    small = TrainConfig(train_samples=20, test_samples=10, length=4, epochs=1)
    runs.train_stacked(grid(ModelConfig(hidden_size=3), small, ["lstm"], [3], [4], [0, 1]), tmp_path, "cpu", True)
    curriculum = grid(ModelConfig(hidden_size=3), TrainConfig(train_samples=20, test_samples=10, length=4, epochs=1,
                                                              curriculum=1, min_length=1), ["lstm"], [3], [4], [0])
    runs.train_stacked(curriculum, tmp_path / "alone", torch.device("cpu"), True)
    assert seen == {"stacked": True, "alone": True}

"""The scripts in examples/ that make the docs' tables, run on tiny runs: they keep working as the library moves.

Not count_precision.py: it runs 100,000-step sequences in two precisions (40 s even for a tiny model)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, rnncount

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str, *args) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """OUT/RECIPE/CELL-seedS as examples/generalization_runs.sh lays them out, trained tiny and scored."""
    out = tmp_path_factory.mktemp("runs")
    for cell, flags in [("lstm", []), ("mingru", []), ("unnormalized-minlstm", ["--forget-bias", "20"])]:
        for seed in (0, 1):
            run = out / "reference" / f"{cell}-seed{seed}"
            assert rnncount("train", "--cell", cell, *TINY, *flags, "--epochs", "1", "--seed", seed,
                            "--out", run).returncode == 0
            assert rnncount("generalize", "--model", run / "model.pt", "--lengths", "8,40",
                            "--samples", "20").returncode == 0
    return out


def test_modern_bounds_reads_each_kind_of_model(runs):
    lines = example("modern_bounds.py", *sorted(runs.glob("reference/*-seed0/model.pt"))).splitlines()
    lstm, mingru, unnormalized = lines
    assert lstm.endswith("not a one-layer minGRU or minLSTM")
    assert "(mingru): a^0 in [" in mingru and "at every length" in mingru
    assert "(unnormalized-minlstm): a^0 in [1.000000, 1.000000]" in unnormalized  # sigmoid(20 + ...) is 1.0


def test_generalization_table_has_a_row_per_cell(runs, tmp_path):
    table = example("generalization_table.py", runs, "--plot", tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0
    for cell in ("lstm", "mingru", "unnormalized-minlstm"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {cell} | reference |"))
        accuracy = json.loads((runs / "reference" / f"{cell}-seed0" / "generalization.json").read_text())
        assert f"{accuracy['lengths'][0]['accuracy']:.3f} / " in row


def test_seed_summary_over_compare_runs(tmp_path):
    for seed in (0, 1):
        folder = tmp_path / f"seed{seed}"
        assert rnncount("compare", *TINY, "--epochs", "2", "--seed", seed, "--out", folder).returncode == 0
    summary = example("seed_summary.py", *sorted(tmp_path.glob("seed*")))
    assert "lstm" in summary and "gru" in summary


def test_count_far_table_spreads_the_lstm_seeds(runs):
    table = example("count_far_table.py", runs)
    row = next(line for line in table.splitlines() if line.startswith("| reference | 0,1 |"))
    accuracies = [json.loads((runs / "reference" / f"lstm-seed{s}" / "generalization.json").read_text())
                  ["lengths"][0]["accuracy"] for s in (0, 1)]
    assert row.split(" | ")[2] == " / ".join(f"{a:.3f}" for a in (min(accuracies), sum(accuracies) / 2,
                                                                      max(accuracies)))

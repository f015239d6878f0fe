"""Counting beyond the training length: the hand-set oracle, generalize, inspect, the training options the
recipes set (tests/test_recipes.py: the recipes themselves), and their CLI."""

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch

from rnncount.checkpoint import load_model
from rnncount.generalize import generalization
from rnncount.recipes import recipe_settings
from rnncount.handmade import handmade_lstm
from rnncount.inspection import best_unit, correlations, run_trace
from rnncount.model import Counter, ModelConfig
from rnncount.plots import GENERALIZATION_SIZE, INSPECT_SIZE
from rnncount.train import TrainConfig, Trainer
from conftest import TINY, assert_one_line_error, rnncount

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny LSTM trained with the generalize recipe for one epoch (readout from c)."""
    out = tmp_path_factory.mktemp("gen") / "lstm"
    result = rnncount("train", "--cell", "lstm", "--recipe", "generalize", *TINY, "--epochs", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


# ---- the hand-set LSTM: an exact counter at any length ---------------------------------------------

def test_handmade_counts_exactly_at_length_10000():
    model = handmade_lstm()
    generator = torch.Generator().manual_seed(0)
    inputs = torch.cat([torch.ones(1, 10_000, 1), torch.zeros(1, 10_000, 1),
                        (torch.rand(4, 10_000, 1, generator=generator) < torch.rand(4, 1, 1, generator=generator)
                         ).float()])  # (6, 10000, 1)
    counts = inputs.sum(dim=(1, 2))
    with torch.no_grad():
        raw = model(inputs)
        padded = model(inputs, torch.tensor([10_000, 10_000, 9_999, 5_000, 1, 10_000]))
    assert torch.equal(raw, counts) and torch.equal(raw.round(), counts)  # raw output is the integer itself
    assert counts[0] == 10_000 and counts[1] == 0
    lengths = [10_000, 10_000, 9_999, 5_000, 1, 10_000]
    assert padded.tolist() == [inputs[i, :n].sum().item() for i, n in enumerate(lengths)]


def test_handmade_every_step_is_the_running_count():
    inputs = (torch.rand(3, 300, 1, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    with torch.no_grad():
        steps = handmade_lstm()(inputs, every_step=True)  # (3, 300)
    assert torch.equal(steps, inputs.squeeze(-1).cumsum(1))


def test_inspect_correlation_is_one_on_the_handmade_lstm():
    trace = run_trace(handmade_lstm(), "0110111010001110100111111000101")
    best = best_unit(trace)
    assert (best.state, best.unit) == ("c", 0)
    assert best.correlation == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(trace.cell[:, 0], trace.count)


def test_correlation_of_a_constant_is_undefined():
    r = correlations(torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]), torch.tensor([0.0, 1.0, 2.0]))
    assert r[0].isnan() and r[1].item() == pytest.approx(1.0)
    assert best_unit(run_trace(handmade_lstm(), "0000")) is None  # the count never changes


def test_handmade_command_saves_a_model_the_other_commands_read(tmp_path):
    result = rnncount("handmade", "--lengths", "20,1000", "--samples", "10", "--out", tmp_path / "hand")
    assert result.returncode == 0, result.stderr
    assert "| 1000 | 1.000 | 0 |" in result.stdout
    predicted = rnncount("predict", "--model", tmp_path / "hand" / "model.pt", "1" * 2000 + "0" * 7 + "1")
    assert predicted.stdout.split()[1:] == ["2001", "(2001.0000)"]
    inspected = rnncount("inspect", "--model", tmp_path / "hand" / "model.pt", "01101110")
    assert inspected.returncode == 0, inspected.stderr
    assert "Best counting unit: c[0], correlation with the running count r = 1.000000" in inspected.stdout
    one = rnncount("inspect", "--model", tmp_path / "hand" / "model.pt", "1")
    assert one.stdout.startswith("lstm, 1 unit, readout c: predicts 1.0000 for 1 1 in 1 step\n")
    assert "for 5 1s in 8 steps" in inspected.stdout
    assert_one_line_error(rnncount("handmade", "--out", tmp_path / "hand"), "exists", "--force")
    assert_one_line_error(rnncount("train", "--resume", tmp_path / "hand"), "was not trained by rnncount train, "
                          "so it cannot be resumed (set by hand")


def test_handmade_out_follows_trains_rule(tmp_path):
    """A non-empty --out is written into only with --force, as train's; its other files are kept."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    args = ["handmade", "--lengths", "20", "--samples", "10", "--out", folder]
    assert_one_line_error(rnncount(*args), "exists and is not empty", "--force")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert rnncount(*args, "--force").returncode == 0
    assert (folder / "model.pt").exists() and (folder / "notes.txt").read_text() == "keep me"


def test_out_that_is_a_file_is_named_so(tiny, tmp_path):
    """generalize and handmade, like train, say that an --out that is a file is not a folder; the file is kept."""
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    assert_one_line_error(rnncount("generalize", "--model", tiny / "model.pt", "--lengths", "8", "--samples", "5",
                                   "--out", afile), f"--out {afile} is a file, not a folder")
    assert_one_line_error(rnncount("handmade", "--lengths", "20", "--samples", "5", "--out", afile),
                          f"--out {afile} is a file, not a folder")
    assert afile.read_text() == "keep me"


# ---- generalize, compare --test-lengths, inspect on a tiny trained model ---------------------------------

def test_generalize_writes_table_json_and_plot(tiny, tmp_path):
    result = rnncount("generalize", "--model", tiny / "model.pt", "--lengths", "8,16,50", "--samples", "30",
                      "--out", tmp_path / "g")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["8", "16", "50"]
    report = json.loads((tmp_path / "g" / "generalization.json").read_text())
    assert [r["length"] for r in report["lengths"]] == [8, 16, 50]
    assert all(0 <= r["accuracy"] <= 1 and r["mae"] >= 0 and r["samples"] == 30 for r in report["lengths"])
    assert report["model_config"]["readout"] == "c"
    assert png_size(tmp_path / "g" / "generalization.png") == GENERALIZATION_SIZE
    assert len((tmp_path / "g" / "generalization.md").read_text().splitlines()) == 2 + 3  # header, rule, 3 rows


def test_generalization_equals_evaluate_at_each_length(tiny):
    model, _ = load_model(tiny / "model.pt")
    rows = generalization(model, [8, 30], samples=40, seed=3)
    result = rnncount("evaluate", "--model", tiny / "model.pt", "--length", "30", "--samples", "40", "--seed", "3")
    assert f"Accuracy: {rows[1]['accuracy']:.4f}; MAE: {rows[1]['mae']:.4f}" in result.stdout


def test_compare_test_lengths_adds_rows(tmp_path):
    out = tmp_path / "cmp"
    result = rnncount("compare", "--cells", "lstm,gru,rnn", "--epochs", "1", *TINY, "--test-lengths", "16,40",
                      "--train-samples", "64", "--recipe", "generalize", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "| accuracy at length 16 |" in result.stdout and "| accuracy at length 40 |" in result.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert [r["length"] for r in report["cells"]["rnn"]["lengths"]] == [16, 40]
    assert "accuracy at length 40" in (out / "summary.md").read_text()
    configs = {cell: torch.load(out / cell / "model.pt", weights_only=True)["model_config"]
               for cell in ("lstm", "gru", "rnn")}  # the recipe's settings for each cell
    assert configs["lstm"]["readout"] == "c" and configs["gru"]["readout"] == "h"
    assert configs["rnn"]["nonlinearity"] == "relu"
    # metrics.json: each cell's own settings, as its model file has them; on top what every cell shares
    for cell, config in configs.items():
        assert {k: report["cells"][cell]["config"][k] for k in config} == config
    assert report["cells"]["lstm"]["config"]["recurrent_decay"] == 3.0 != report["cells"]["gru"]["config"]["recurrent_decay"]
    assert report["config"]["cells"] == ["lstm", "gru", "rnn"] and report["config"]["step_loss"] == 1.0
    assert "readout" not in report["config"] and "recurrent_decay" not in report["config"]


def test_inspect_writes_a_png_of_the_right_size(tiny, tmp_path):
    result = rnncount("inspect", "--model", tiny / "model.pt", "0110100111", "--out", tmp_path / "i.png")
    assert result.returncode == 0, result.stderr
    assert "Best counting unit: " in result.stdout and "r = " in result.stdout
    assert png_size(tmp_path / "i.png") == INSPECT_SIZE
    gru = tmp_path / "gru"
    assert rnncount("train", "--cell", "gru", *TINY, "--epochs", "1", "--out", gru).returncode == 0
    assert rnncount("inspect", "--model", gru / "model.pt", "-", stdin="0111\n").returncode == 0
    assert png_size(gru / "inspect.png") == INSPECT_SIZE  # default: beside the model


@pytest.mark.parametrize("args, fragments", [
    (["generalize", "--model", "nope.pt"], ["does not exist"]),
    (["generalize", "--model", "x.pt", "--lengths", "20,0"], ["--lengths", "must be >= 1"]),
    (["generalize", "--model", "x.pt", "--lengths", "a"], ["--lengths", "expected a whole number"]),
    (["inspect", "--model", "nope.pt", "0101"], ["does not exist"]),
    (["train", "--recipe", "magic"], ["--recipe", "invalid choice"]),
    (["train", "--cell", "gru", "--readout", "c"], ["error: --readout c applies to", "LSTM only"]),
    (["train", "--cell", "rnn", "--forget-bias", "3"], ["LSTM only"]),
    (["train", "--cell", "lstm", "--nonlinearity", "relu"], ["applies to the RNN only, not the lstm"]),
    (["train", "--cell", "lstm", "--reset-after"], ["applies to the GRU (and its variants) only, not the lstm"]),
    (["compare", "--cells", "lstm,mingru", "--reset-after"], ["applies to the GRU", "none of lstm, mingru"]),
    (["sweep", "--cells", "lstm,gru", "--nonlinearity", "relu"], ["applies to the RNN", "none of lstm, gru"]),
    (["train", "--step-loss", "-1"], ["--step-loss", "must be a number >= 0"]),
    (["train", "--lr-end", "0.1"], ["error: --lr-end must be a number in (0, --lr 0.001], got 0.1"]),
    (["train", "--curriculum", "3"], ["error: --curriculum needs variable training lengths: set --min-length"]),
    (["sweep", "--recipe", "generalize", "--cells", "lstm,gru"], ["--recipe in a sweep takes one cell"]),
])
def test_bad_arguments(args, fragments):
    assert_one_line_error(rnncount(*args), *fragments)


def test_inspect_bad_input(tiny, tmp_path):
    model = tiny / "model.pt"
    assert_one_line_error(rnncount("inspect", "--model", model, "01a"), "characters other than 0 and 1")
    assert_one_line_error(rnncount("inspect", "--model", model, "0101", "--out", tmp_path), "is a folder")
    assert_one_line_error(rnncount("inspect", "--model", model, "0101", "--out", tmp_path / "no" / "x.png"),
                          "does not exist")
    assert_one_line_error(rnncount("inspect", "--model", model, "-", stdin=""), "no sequences")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # root writes anywhere: a read-only file system would be needed
        result = rnncount("inspect", "--model", model, "0110", "--out", locked / "x.png")
        assert_one_line_error(result, f"cannot write to --out {locked / 'x.png'}: Permission denied")
        assert result.stdout == ""  # refused before the work
    if Path("/proc/self").is_dir():  # procfs: no file can be created there, even by root
        result = rnncount("inspect", "--model", model, "0110", "--out", "/proc/self/x.png")
        assert_one_line_error(result, "cannot write to --out /proc/self/x.png")
        assert result.stdout == ""
    assert_one_line_error(rnncount("inspect", "--model", model, "-", stdin="0110\n\n111\n"),
                          "one sequence only, but stdin has 2 lines")


def test_inspect_never_replaces_a_file_that_is_not_a_png(tiny, tmp_path):
    """--out naming the run's model.pt or metrics.json is refused and the file kept; inspect's own earlier
    picture is replaced."""
    run = tmp_path / "run"
    shutil.copytree(tiny, run)
    for name in ("model.pt", "metrics.json"):
        before = (run / name).read_bytes()
        result = rnncount("inspect", "--model", run / "model.pt", "--out", run / name, "0110")
        assert_one_line_error(result, f"--out {run / name} exists and is not a PNG")
        assert (run / name).read_bytes() == before
    for _ in range(2):
        assert rnncount("inspect", "--model", run / "model.pt", "--out", run / "i.png", "0110").returncode == 0
    assert png_size(run / "i.png") == INSPECT_SIZE


# ---- recipes and the training options ------------------------------------------------------------------

def test_recipe_settings_round_trip_through_the_model_file(tiny, tmp_path):
    payload = torch.load(tiny / "model.pt", weights_only=True)
    expected = recipe_settings("generalize", "lstm")
    saved = {**payload["model_config"], **payload["train_config"]}
    assert {k: saved[k] for k in expected if k != "epochs"} == {k: v for k, v in expected.items() if k != "epochs"}
    assert saved["recipe"] == "generalize" and saved["readout"] == "c" and saved["forget_bias"] == 20.0
    model, _ = load_model(tiny / "model.pt")
    assert model.config == ModelConfig(**payload["model_config"])
    typed = tmp_path / "typed"  # a typed flag overrides the recipe
    assert rnncount("train", "--recipe", "generalize", "--readout", "h", "--step-loss", "0.5", *TINY,
                    "--epochs", "1", "--out", typed).returncode == 0
    payload = torch.load(typed / "model.pt", weights_only=True)
    assert payload["model_config"]["readout"] == "h" and payload["train_config"]["step_loss"] == 0.5
    assert payload["model_config"]["forget_bias"] == 20.0
    rnn = tmp_path / "rnn"
    assert rnncount("train", "--cell", "rnn", "--recipe", "generalize", *TINY, "--epochs", "1", "--out",
                    rnn).returncode == 0
    payload = torch.load(rnn / "model.pt", weights_only=True)
    assert payload["model_config"]["nonlinearity"] == "relu" and payload["model_config"]["init"] == "identity"


def test_old_model_configs_still_load():
    """A model file written before these fields existed rebuilds as the reference model."""
    old = {"cell": "lstm", "hidden_size": 20, "num_layers": 1, "reset_after": False, "nonlinearity": "tanh",
           "init": "reference"}
    assert ModelConfig(**old) == ModelConfig()


def test_readout_c_reads_the_cell_state():
    torch.manual_seed(0)
    model = Counter(ModelConfig(hidden_size=5, readout="c"))
    inputs = torch.rand(4, 9, 1).round()
    _, (_, c_n) = model.rnn(inputs)
    assert torch.allclose(model(inputs), model.head(c_n[-1]).squeeze(-1))
    assert torch.allclose(model(inputs, every_step=True)[:, -1], model(inputs))
    lengths = torch.tensor([9, 3, 1, 5])
    steps = model(inputs, lengths, every_step=True)
    assert torch.allclose(steps[torch.arange(4), lengths - 1], model(inputs, lengths))


def test_forget_bias_saturates_the_forget_gate():
    model = Counter(ModelConfig(forget_bias=20.0))
    rnn = model.rnn
    f = torch.sigmoid(rnn.cells[0].input_projection(torch.ones(1, 1), rnn.cell_weights(0)))[0, 20:40]
    assert (f == 1.0).all()


def test_identity_init_starts_an_rnn_that_adds_up():
    model = Counter(ModelConfig(cell="rnn", nonlinearity="relu", init="identity", hidden_size=4))
    rnn = model.rnn
    assert torch.equal(rnn.weight_hh_l0, torch.eye(4)) and not rnn.bias_ih_l0.any() and not rnn.bias_hh_l0.any()


TRAIN = dict(train_samples=96, test_samples=20, length=8, batch_size=16, epochs=2)


def test_step_loss_lr_decay_curriculum_and_recurrent_decay_train():
    config = TrainConfig(**TRAIN, min_length=2, step_loss=1.0, lr=1e-2, lr_end=1e-4, curriculum=2,
                         recurrent_decay=5.0)
    trainer = Trainer(ModelConfig(hidden_size=6, readout="c", forget_bias=20.0), config)
    w_hh = trainer.model.rnn.weight_hh_l0.detach().clone()
    list(trainer.epochs())
    assert len(trainer.history) == 2 and all(m.train_loss == m.train_loss for m in trainer.history)
    assert 1e-4 <= trainer.optimizer.param_groups[0]["lr"] < 1e-3  # near lr_end at the last batch
    assert trainer.model.rnn.weight_hh_l0.norm() < w_hh.norm()
    again = Trainer(ModelConfig(hidden_size=6, readout="c", forget_bias=20.0), config)
    list(again.epochs())
    assert [m.train_loss for m in again.history] == [m.train_loss for m in trainer.history]


def test_curriculum_starts_with_the_short_sequences():
    config = TrainConfig(**{**TRAIN, "epochs": 1}, min_length=1, curriculum=4)
    trainer = Trainer(ModelConfig(hidden_size=4), config)
    shown = []
    original = trainer.train_data.batch
    trainer.train_data.batch = lambda index: shown.append(index) or original(index)
    trainer.train_epoch()
    seen = torch.cat(shown)
    assert trainer.train_data.lengths[seen].max() <= 1 + 2  # epoch 1 of 4: lengths up to 1 + ceil(7/4)
    assert len(seen) == int((trainer.train_data.lengths <= 3).sum())



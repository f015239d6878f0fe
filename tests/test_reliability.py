"""Crashes, kills and numerical faults: checkpoints survive, resume is exact, divergence is reported."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnncount.checkpoint import read_checkpoint
from rnncount.runs import fit
from rnncount.model import ModelConfig
from rnncount.train import NonFiniteError, TrainConfig, Trainer, load_trainer

from conftest import TINY, assert_one_line_error, rnncount

KILL_AFTER_SECOND_CHECKPOINT = """
import os, signal, sys
from rnncount import checkpoint, cli
save = checkpoint.save_checkpoint
def save_then_die(path, trainer, *rest):
    save(path, trainer, *rest)
    if len(trainer.history) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint.save_checkpoint = save_then_die
sys.exit(cli.main(sys.argv[1:]))
"""

KILL_DURING_SECOND_CHECKPOINT = """
import os, signal, sys
from rnncount import checkpoint, cli
real_save = checkpoint.torch.save
def half_save_then_die(payload, file):
    if payload["epoch"] == 2:
        file.write(b"PK\\x03\\x04 half a checkpoint")
        file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(payload, file)
checkpoint.torch.save = half_save_then_die
sys.exit(cli.main(sys.argv[1:]))
"""


def run_script(script, *args):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def epoch_losses(folder):
    return [{k: v for k, v in e.items() if k != "seconds"}
            for e in json.loads((folder / "metrics.json").read_text())["epochs"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    assert rnncount("train", "--epochs", "4", *TINY, "--out", out).returncode == 0
    return out


def test_sigkill_after_second_checkpoint_then_resume_is_exact(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    killed = run_script(KILL_AFTER_SECOND_CHECKPOINT, "train", "--epochs", "4", *TINY, "--out", out)
    assert killed.returncode == -signal.SIGKILL
    assert read_checkpoint(out / "model.pt")["epoch"] == 2
    resumed = rnncount("train", "--resume", out, process=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stdout and "Epoch 3/4" in resumed.stdout and "Epoch 2/4" not in resumed.stdout
    assert epoch_losses(out) == epoch_losses(uninterrupted)  # every epoch, to the last bit


def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    out = tmp_path / "torn"
    killed = run_script(KILL_DURING_SECOND_CHECKPOINT, "train", "--epochs", "4", *TINY, "--out", out)
    assert killed.returncode == -signal.SIGKILL
    payload = read_checkpoint(out / "model.pt")  # the half-written file never took model.pt's name
    assert payload["epoch"] == 1
    assert load_trainer(out / "model.pt").history[0].epoch == 1


def test_diverging_run_names_epoch_and_batch():
    result = rnncount("train", "--lr", "1e30", *TINY, "--out", "unused-out-dir-never-written", process=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "training diverged: the loss is inf at epoch 1, batch " in result.stderr
    assert "nothing was saved" in result.stderr


def test_non_finite_input_stops_training_and_keeps_the_last_checkpoint(tmp_path, uninterrupted):
    out = tmp_path / "poisoned"
    assert rnncount("train", "--epochs", "1", *TINY, "--out", out).returncode == 0
    before = (out / "model.pt").read_bytes()
    trainer = load_trainer(out / "model.pt")
    trainer.train_config.epochs = 3
    trainer.train_data.inputs[:, 3] = float("inf")  # every batch of epoch 2 sees an inf
    with pytest.raises(NonFiniteError, match=r"at epoch 2, batch 1 of \d+; .*model.pt keeps epoch 1"):
        fit(trainer, out)
    assert (out / "model.pt").read_bytes() == before
    assert read_checkpoint(out / "model.pt")["epoch"] == 1


def test_clip_grad_norm_bounds_the_gradients():
    trainer = Trainer(ModelConfig(hidden_size=6), TrainConfig(**{"train_samples": 64, "test_samples": 16,
                                                                 "length": 8, "clip_grad_norm": 0.01}))
    inputs, counts, _ = trainer.train_data.batch(torch.arange(16))
    torch.nn.functional.mse_loss(trainer.model(inputs), counts).backward()
    before = trainer._clip_gradients()
    after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.model.parameters()]))
    assert before > 0.01 and after == pytest.approx(0.01, rel=1e-3)
    assert_one_line_error(rnncount("train", "--clip-grad-norm", "0"), "--clip-grad-norm", "must be a finite number")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    assert rnncount("train", "--epochs", "1", *TINY, "--out", out).returncode == 0
    return out / "model.pt"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=30) | st.text(alphabet="01", min_size=1, max_size=30))
def test_predict_fuzz(model_file, text):
    """Any text gives a count or a one-line error with exit code 2, never a traceback."""
    for result in (rnncount("predict", "--model", model_file, "--", text),
                   rnncount("predict", "--model", model_file, "-", stdin=text)):
        assert "Traceback" not in result.stdout + result.stderr
        if result.returncode == 0:
            for line in result.stdout.splitlines():
                sequence, rounded, raw = line.rsplit(maxsplit=2)
                assert set(sequence) <= {"0", "1"} and int(rounded) == round(float(raw.strip("()")))
        else:
            assert_one_line_error(result)

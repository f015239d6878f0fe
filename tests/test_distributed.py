"""Devices and torchrun: DDP on 2 CPU processes equals one process; CUDA checks skip without a GPU."""

import json
import subprocess
import sys

import pytest
import torch

import rnncount
from rnncount.checkpoint import load_model
from rnncount.distributed import World, resolve_device

from conftest import assert_one_line_error, rnncount as run_cli

# A batch size that 2 ranks split unevenly (8 + 7) and a partial last batch (200 = 13 * 15 + 5).
SETTINGS = ["--train-samples", "200", "--test-samples", "51", "--length", "8", "--min-length", "4",
            "--hidden-size", "6", "--batch-size", "15", "--epochs", "2", "--seed", "3"]


def epochs(folder):
    return json.loads((folder / "metrics.json").read_text())["epochs"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torchrun_two_processes_equal_one(tmp_path, cell):
    out = tmp_path / "ddp"
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "rnncount", "train", "--cell", cell, *SETTINGS, "--out", str(out), "--device", "cpu"],
        capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert launched.stdout.count("Epoch 2/2") == 1  # rank 0 alone prints
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]  # and writes, once
    single = tmp_path / "single"
    assert run_cli("train", "--cell", cell, *SETTINGS, "--out", single).returncode == 0
    for ddp, one in zip(epochs(out), epochs(single), strict=True):
        for key in ("train_loss", "test_loss", "test_mae"):
            assert ddp[key] == pytest.approx(one[key], rel=1e-4), key
        assert ddp["train_accuracy"] == one["train_accuracy"] and ddp["test_accuracy"] == one["test_accuracy"]


def test_world_shares_every_sample_once():
    index = torch.arange(15)
    shares = [World(rank, 4).share(index) for rank in range(4)]
    assert torch.equal(torch.cat(shares), index) and [len(s) for s in shares] == [4, 4, 4, 3]


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")
        assert_one_line_error(run_cli("train", "--device", "cuda"), "--device", "CUDA is not available")


def test_train_and_predict_on_cpu_device(tmp_path):
    out = tmp_path / "cpu"
    assert run_cli("train", *SETTINGS, "--out", out, "--device", "cpu").returncode == 0
    result = run_cli("predict", "--model", out / "model.pt", "--device", "cpu", "0110")
    assert result.returncode == 0 and result.stdout.startswith("0110  ")


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("layer", [rnncount.LSTM, rnncount.GRU, rnncount.RNN])
def test_cuda_layers_equal_torch(layer):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, layer.__name__)(5, 16, num_layers=2, bidirectional=True).cuda().double()
    ours = layer(5, 16, num_layers=2, bidirectional=True).cuda().double()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(30, 4, 5, device="cuda", dtype=torch.double, requires_grad=True)
    (a, _), (b, _) = theirs(x), ours(x)
    assert (a - b).abs().max() < 1e-10
    ga, = torch.autograd.grad(a.sum(), x)
    gb, = torch.autograd.grad(b.sum(), x)
    assert (ga - gb).abs().max() < 1e-10


@needs_cuda
def test_cuda_checkpoint_loads_on_cpu(tmp_path):
    out = tmp_path / "gpu"
    assert run_cli("train", *SETTINGS, "--out", out, "--device", "cuda").returncode == 0
    model, payload = load_model(out / "model.pt")
    assert next(model.parameters()).device.type == "cpu"
    assert run_cli("predict", "--model", out / "model.pt", "--device", "cpu", "0110").returncode == 0

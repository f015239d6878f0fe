"""Devices and torchrun: DDP on 2 CPU processes equals one process; CUDA checks skip without a GPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rnncount
from rnncount.checkpoint import load_model
from rnncount.distributed import World, resolve_device

from conftest import assert_one_line_error, rnncount as run_cli

# A batch size that 2 ranks split unevenly (8 + 7) and a partial last batch (200 = 13 * 15 + 5).
SETTINGS = ["--train-samples", "200", "--test-samples", "51", "--length", "8", "--min-length", "4",
            "--hidden-size", "6", "--batch-size", "15", "--epochs", "2", "--seed", "3"]


VICTIM = Path(__file__).with_name("elastic_victim.py")  # rnncount, but rank 1 dies once after epoch N


def epochs(folder):
    return json.loads((folder / "metrics.json").read_text())["epochs"]


def torchrun(*args, timeout=240) -> subprocess.CompletedProcess:
    """torchrun --nproc_per_node 2 ARGS. Past the timeout the test fails after a SIGTERM, on which torchrun stops
    its workers (each in a session of its own), and a SIGKILL if need be: a hung group never hangs the suite."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        pytest.fail(f"torchrun {' '.join(map(str, args))} ran past {timeout} s")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """train --cell CELL SETTINGS FLAGS under torchrun, uninterrupted, once for the module: (folder, process)."""
    runs = {}

    def run(cell, *flags):
        if (cell, *flags) not in runs:
            out = tmp_path_factory.mktemp("ddp") / cell
            runs[cell, *flags] = out, torchrun("-m", "rnncount", "train", "--cell", cell, *SETTINGS, *flags,
                                               "--out", out, "--device", "cpu")
        return runs[cell, *flags]
    return run


@pytest.mark.parametrize("cell, flags", [("lstm", ()), ("gru", ()), ("lstm", ("--recurrent-dropout", "0.2")),
                                         ("gru", ("--zoneout", "0.1"))], ids=["lstm", "gru", "dropout", "zoneout"])
def test_torchrun_two_processes_equal_one(tmp_path, cell, flags, two_processes):
    """With random masks too: each rank draws the whole global batch's masks and keeps its rows (it had drawn its
    share's from the same seeded generator as the other rank: other masks than one process's, repeated across ranks)."""
    out, launched = two_processes(cell, *flags)
    assert launched.returncode == 0, launched.stderr[-4000:]  # the ranks' last words before torchrun's report
    assert launched.stdout.count("Epoch 2/2") == 1  # rank 0 alone prints
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]  # and writes, once
    single = tmp_path / "single"
    assert run_cli("train", "--cell", cell, *SETTINGS, *flags, "--out", single).returncode == 0
    for ddp, one in zip(epochs(out), epochs(single), strict=True):
        for key in ("train_loss", "test_loss", "test_mae"):
            assert ddp[key] == pytest.approx(one[key], rel=1e-4), key
        assert ddp["train_accuracy"] == one["train_accuracy"] and ddp["test_accuracy"] == one["test_accuracy"]


def without_seconds(folder):
    return [{key: value for key, value in epoch.items() if key != "seconds"} for epoch in epochs(folder)]


def test_elastic_restart_resumes_from_the_last_complete_epoch(tmp_path, two_processes):
    """Rank 1 SIGKILLed after epoch 1; torchrun starts the group again, which goes on from epoch 1 by itself
    and ends where the uninterrupted run ends, to the last bit (with recurrent dropout, whose masks go on from
    each rank's saved random state)."""
    out, dropout = tmp_path / "elastic", ("--recurrent-dropout", "0.2")
    # torchrun looks at its workers every 0.1 s by default and stops the group as soon as it sees rank 1 gone; on
    # a loaded machine that could come before rank 0 had read the lost peer from gloo and said so (1 run in ~10)
    launched = torchrun("--max-restarts", "1", "--monitor-interval", "2", VICTIM, "1", "train", "--cell", "lstm",
                        *SETTINGS, *dropout, "--out", out, "--device", "cpu")
    assert launched.returncode == 0, launched.stderr[-3000:]
    resumed = [line for line in launched.stderr.splitlines() if "resumed" in line]
    assert resumed == [f"rnncount train: restarted by torchrun (restart 1), resumed {out} from epoch 1 of 2"]
    assert "internal error" not in launched.stderr  # rank 0, which lost rank 1, says so in one line
    assert "rnncount train: error: another process of this run stopped (" in launched.stderr
    assert launched.stdout.count("Epoch 1/2") == 1 and launched.stdout.count("Epoch 2/2") == 1  # none trained twice
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]
    uninterrupted, _ = two_processes("lstm", *dropout)
    assert without_seconds(out) == without_seconds(uninterrupted)
    ours, theirs = load_model(out / "model.pt")[0].state_dict(), load_model(uninterrupted / "model.pt")[0].state_dict()
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)


def test_restarted_process_resumes_only_its_own_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run_cli("train", *SETTINGS, "--out", out).returncode == 0
    before = (out / "metrics.json").read_text()
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # as torchrun sets it in a restarted group
    again = run_cli("train", *SETTINGS, "--out", out)
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == f"rnncount train: restarted by torchrun (restart 1), resumed {out} from epoch 2 of 2"
    assert "Epoch" not in again.stdout and (out / "metrics.json").read_text() == before
    other = run_cli("train", *SETTINGS, "--hidden-size", "5", "--out", out)  # another run's folder: refused
    assert_one_line_error(other, f"--out {out} exists and is not empty")


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


@pytest.mark.parametrize("command", ["train", "compare", "sweep", "predict"])
@pytest.mark.parametrize("device, fragment", [("cuda:99", "device 'cuda:99' asked for, but"),
                                              ("tpu", "unknown device 'tpu'")])
def test_a_device_not_here_is_refused_by_every_command(tmp_path, command, device, fragment):
    """sweep trains on the CPU, yet a --device that is not here is a mistake it reports as train does."""
    args = ["--model", tmp_path / "m.pt", "0110"] if command == "predict" else ["--out", tmp_path / "out"]
    result = run_cli(command, *args, "--device", device)
    assert_one_line_error(result, f"rnncount {command}: error: --device: {fragment}")
    assert not (tmp_path / "out").exists()


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


@needs_cuda
def test_sweep_on_cuda_trains_there_one_stack_at_a_time(tmp_path):
    """--device cuda: the sweep's stacks train on the GPU in this process (not in CPU workers); --jobs 2 is refused."""
    grid = ["sweep", "--cells", "lstm,gru", "--seeds", "0-1", "--hidden-sizes", "4", "--train-samples", "64",
            "--test-samples", "16", "--length", "6", "--epochs", "1", "--device", "cuda"]
    result = run_cli(*grid, "--out", tmp_path / "sweep")
    assert result.returncode == 0, result.stderr
    assert "one after another on cuda" in result.stdout
    model, _ = load_model(tmp_path / "sweep" / "lstm-h4-len6-seed0" / "model.pt")  # loads on the CPU
    assert next(model.parameters()).device.type == "cpu"
    refused = run_cli(*grid, "--jobs", "2", "--out", tmp_path / "other")
    assert refused.returncode == 2 and "leave it at 1, or pass --device cpu" in refused.stderr


@needs_cuda
def test_cuda_resume_with_random_masks_is_exact(tmp_path):
    """On a GPU the masks (zoneout, recurrent dropout) come from CUDA's generator: model.pt keeps its state too, so a
    resume in a process whose CUDA generator has moved on still equals the run made in one go."""
    noisy = ["--zoneout", "0.1", "--recurrent-dropout", "0.2", "--device", "cuda", *SETTINGS]
    assert run_cli("train", *noisy, "--epochs", "1", "--out", tmp_path / "resumed").returncode == 0
    torch.cuda.manual_seed(12345)  # what the process does in between must not matter
    assert run_cli("train", "--resume", tmp_path / "resumed", "--epochs", "2", "--device", "cuda").returncode == 0
    assert run_cli("train", *noisy, "--epochs", "2", "--out", tmp_path / "straight").returncode == 0

    def epochs(folder):
        return [{k: v for k, v in e.items() if k != "seconds"}
                for e in json.loads((folder / "metrics.json").read_text())["epochs"]]
    assert epochs(tmp_path / "resumed") == epochs(tmp_path / "straight")

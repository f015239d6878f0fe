"""rnncount.runs: the run options and their checks, the threads a run takes, the one output-folder check, the one
process pool."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import TINY, assert_one_line_error, rnncount
from rnncount import runs
from rnncount.distributed import World
from rnncount.model import ModelConfig
from rnncount.runs import RunOptions, UsageError, cpu_jobs, in_processes, make_folder, prepare_out
from rnncount.stacked import Member, StackedTrainer
from rnncount.train import TrainConfig, Trainer


def test_run_options_check_with_the_shared_rules():
    assert RunOptions().jobs is None and RunOptions(seeds=[3, 1]).seeds == [3, 1]
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        RunOptions(jobs=0)
    with pytest.raises(ValueError, match=r"seed 2 is named twice in \[2, 2\]"):
        RunOptions(seeds=[2, 2])
    with pytest.raises(ValueError, match="more than 256 seeds"):
        RunOptions(seeds=list(range(257)))
    with pytest.raises(ValueError, match=r"seeds must be in \[0, 2\*\*63\)"):
        RunOptions(seeds=[-1])
    with pytest.raises(TypeError, match="threads must be an int"):
        RunOptions(threads=1.5)


def test_by_default_as_many_runs_at_once_as_the_cpus_hold(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runs, "usable_cpus", lambda: 4)
    assert cpu_jobs(RunOptions(), 20, 3, cpu, World()) == 3  # one thread per small run: all three at once
    assert cpu_jobs(RunOptions(), 20, 9, cpu, World()) == 4
    assert cpu_jobs(RunOptions(threads=2), 20, 3, cpu, World()) == 2
    assert cpu_jobs(RunOptions(threads=8), 20, 3, cpu, World()) == 1
    assert cpu_jobs(RunOptions(), 128, 3, cpu, World()) == 1  # a large run takes every CPU's thread
    assert cpu_jobs(RunOptions(jobs=2), 128, 3, cpu, World()) == 2  # asked for: as asked
    assert cpu_jobs(RunOptions(), 20, 3, torch.device("cuda"), World()) == 1
    with pytest.raises(UsageError, match="under torchrun or on a GPU leave it at 1"):
        cpu_jobs(RunOptions(jobs=2), 20, 3, torch.device("cuda"), World())


def test_threads_by_cell(monkeypatch):
    """--threads as given; minGRU and minLSTM, and stacks of seeds, alone every usable CPU, beside other runs one;
    the others one thread up to hidden size 64, torch's default above."""
    monkeypatch.setattr(runs, "usable_cpus", lambda: 3)
    chosen = []
    for arguments, alone, models in [
            ((None, "mingru", 20), True, 1), ((None, "unnormalized-minlstm", 20), True, 1),
            ((None, "minlstm", 20), False, 1), ((None, "lstm", 20), True, 1), ((None, "slstm", 20), True, 1),
            ((None, "lstm", 20), True, 5), ((None, "gru", 20), False, 5), ((2, "lstm", 20), True, 1),
            ((2, "minlstm", 20), False, 1)]:
        torch.set_num_threads(5)
        runs.set_threads(*arguments, alone=alone, models=models)
        chosen.append(torch.get_num_threads())
    assert chosen == [3, 3, 1, 1, 1, 3, 1, 2, 2]
    torch.set_num_threads(5)
    runs.set_threads(None, "gru", 128)
    assert torch.get_num_threads() == 5  # above hidden size 64: left as torch set it


def assert_same_at_any_thread_count(train) -> None:
    """train() -> (metrics, models) of one epoch, run on 1, 2 and 3 threads: the same losses and weights to the bit."""
    results = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        metrics, models = train()
        results.append(([(m.train_loss, m.test_loss) for m in metrics], [model.state_dict() for model in models]))
    for losses, weights in results[1:]:
        assert losses == results[0][0]
        assert all(torch.equal(mine[name], first[name]) for mine, first in zip(weights, results[0][1]) for name in mine)


def stacked_epoch(model_config: ModelConfig, config: TrainConfig, seeds) -> tuple[list, list]:
    members = [Member.new(model_config, replace(config, seed=seed), Path(os.devnull)) for seed in seeds]
    return StackedTrainer(members).train_epoch(), [member.trainer.model for member in members]


@pytest.mark.parametrize("stacked", [False, True], ids=["solo", "stacked"])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_parallel_cells_train_the_same_at_any_thread_count(cell, stacked):
    """Why default_threads may give the parallel cells every CPU: an epoch on 1, 2 or 3 threads gives the same weights
    and metrics to the last bit, alone and as a stack of seeds (`--seeds`). T=200 (16 x 200 x 20 values per op,
    more than torch splits across threads), with variable lengths and the loss at every step (masks, the head on
    every step), as the generalize recipe trains."""
    config = TrainConfig(length=200, min_length=150, step_loss=1.0, train_samples=48, test_samples=16, epochs=1)

    def solo_epoch():
        trainer = Trainer(ModelConfig(cell=cell), config)
        return [trainer.train_epoch()], [trainer.model]
    assert_same_at_any_thread_count(
        (lambda: stacked_epoch(ModelConfig(cell=cell), config, (0, 1))) if stacked else solo_epoch)


@pytest.mark.parametrize("cell, settings", [("lstm", {}), ("gru", {"recurrent_dropout": 0.25}),
                                            ("rnn", {"clip_grad_norm": 0.5})], ids=["lstm", "gru-masks", "rnn-clip"])
def test_stacks_train_the_same_at_any_thread_count(cell, settings):
    """Why default_threads may give a stack of seeds every CPU: an epoch of a stack (the step-by-step cells under vmap,
    with each member's random masks, with gradient clipping per member) on 1, 2 or 3 threads gives the same
    weights and metrics to the last bit. Batches of 256 (3 x 256 x 80 gate values per op, more than torch splits
    across threads)."""
    model_config = ModelConfig(cell=cell, **{k: v for k, v in settings.items() if k != "clip_grad_norm"})
    config = TrainConfig(train_samples=512, test_samples=300, batch_size=256, epochs=1,
                         clip_grad_norm=settings.get("clip_grad_norm"))
    assert_same_at_any_thread_count(lambda: stacked_epoch(model_config, config, (0, 1, 2)))


def prepared(options: RunOptions) -> Path:
    """prepare_out as one command runs it: its folder held, then released when the command ends."""
    try:
        return prepare_out(options, "train")
    finally:
        runs.release()


def test_prepare_out_is_new_or_empty_or_forced(tmp_path):
    out = tmp_path / "a" / "b"
    assert prepared(RunOptions(out=out)) == out and out.is_dir()
    (out / ".model.pt.x1y2z3.tmp").write_bytes(b"half")  # what a kill during the first save leaves
    assert prepared(RunOptions(out=out)) == out
    (out / "model.pt").write_bytes(b"")
    with pytest.raises(UsageError, match="exists and is not empty"):
        prepared(RunOptions(out=out))
    assert prepared(RunOptions(out=out, force=True)) == out
    with pytest.raises(UsageError, match="is a file, not a folder"):
        prepared(RunOptions(out=out / "model.pt", force=True))
    with pytest.raises(UsageError, match="cannot write to --out"):
        make_folder(out / "model.pt" / "below")


def square(x):
    return x * x


def test_in_processes_runs_every_task_once():
    assert dict(in_processes(square, {name: (n,) for name, n in [("a", 2), ("b", 3), ("c", 4)]}, 2)) == {
        "a": 4, "b": 9, "c": 16}


def run(folder: str, name: str, seconds: float) -> str:
    """A task for in_processes: says it started (with its pid), takes `seconds` (< 0: fails after -seconds),
    and says it ended."""
    written = Path(folder, f"{name}.pid")  # renamed once whole: a worker stopped mid-write leaves no empty .started
    written.write_text(str(os.getpid()))
    written.rename(Path(folder, f"{name}.started"))
    time.sleep(abs(seconds))
    if seconds < 0:
        raise ValueError(f"{name} failed")
    Path(folder, f"{name}.ended").write_text("")
    return name


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_failing_task_stops_the_pool_at_once(tmp_path):
    """A worker's exception reaches the caller at once; the running task and the queued one are stopped."""
    tasks = {"slow": (str(tmp_path), "slow", 60), "bad": (str(tmp_path), "bad", -1),
             "queued": (str(tmp_path), "queued", 60)}
    start = time.monotonic()
    with pytest.raises(ValueError, match="bad failed"):
        dict(in_processes(run, tasks, 2))
    assert time.monotonic() - start < 30 and not list(tmp_path.glob("*.ended"))
    assert not any(alive(int(p.read_text())) for p in tmp_path.glob("*.started"))


CTRL_C = """
import sys
sys.path.insert(0, sys.argv[2])
from rnncount.runs import in_processes
from test_runs import run
folder = sys.argv[1]
dict(in_processes(run, {name: (folder, name, 60) for name in ("a", "b", "c")}, 2))
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_stops_every_worker_at_once(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) ends the parent and its workers within seconds, where the
    pool used to let the queued runs train to their end first; the workers print nothing of it."""
    process = subprocess.Popen([sys.executable, "-c", CTRL_C, str(tmp_path), str(Path(__file__).parent)],
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*.started"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)
    start = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - start < 10 and process.returncode != 0
    assert stderr.count("KeyboardInterrupt") == 1, stderr  # the parent's alone
    assert not list(tmp_path.glob("*.ended"))
    assert not any(alive(int(p.read_text())) for p in tmp_path.glob("*.started"))


FAULTS = """
import resource, sys, torch
from rnncount.runs import keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()
x = torch.randn(1000, 16, 20)  # 1.3 MB, as a (T, B, H) tensor of the counting model at T = 1000
def step():  # tensors of that size allocated and freed, as a training step over long sequences does
    a = torch.sigmoid(x)
    return (torch.cat([a, a * x]) * 2).sum()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_reuses_pages_instead_of_faulting_them_in_again():
    """20 steps of 5 MB each: glibc's default hands the pages back and faults them in again (hundreds to tens of
    thousands of page faults, depending on its moving threshold); kept, they are reused."""
    kept = subprocess.run([sys.executable, "-c", FAULTS, "keep"], capture_output=True, text=True, check=True)
    assert int(kept.stdout) <= 10


def frozen_and_collected() -> tuple[int, int]:
    """A task: how many objects the worker holds frozen, and how many a collection finds after a cycle is dropped."""
    import gc

    class Node:
        pass
    node = Node()
    node.self = node  # a reference cycle, garbage once dropped
    del node
    return gc.get_freeze_count(), gc.collect()


def test_workers_freeze_their_imports_but_collect_what_tasks_make():
    """A worker leaves torch's and dynamo's import-time objects out of the collector's passes (runs.freeze_objects:
    the collection at its exit walked them all, ~2 s of a compare's end), and still collects a task's garbage."""
    ((_, (frozen, collected)),) = in_processes(frozen_and_collected, {"task": ()}, 2)
    assert frozen > 100_000 and collected >= 1


def test_the_command_freezes_before_exit_and_keeps_main_s_exit_code():
    """`python -m rnncount` (the rnncount program): main's exit code, then gc.freeze (main alone, called in-process,
    does not freeze: it is a library function)."""
    script = "import gc, sys; from rnncount.__main__ import command; " \
             "sys.argv = ['rnncount', 'predict', '--model', 'no/model.pt', '01']; " \
             "code = command(); print(code, gc.get_freeze_count() > 0)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["2", "True"]


INTERRUPTED_IMPORT = """
import sys
class Interrupt:  # Ctrl-C while the command line (and torch) is being imported
    def find_spec(self, name, path, target=None):
        if name == "rnncount.cli":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
from rnncount.__main__ import command
sys.exit(command())
"""


def test_ctrl_c_while_torch_loads_ends_in_one_line():
    """The program imports torch inside its own Ctrl-C handling (rnncount.__main__): `import rnncount` alone does
    not import torch, and an interrupt during the import gives one line and exit code 130, not a traceback."""
    light = subprocess.run([sys.executable, "-c", "import sys, rnncount; print('torch' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert light.stdout.strip() == "False"
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (130, "rnncount: interrupted\n")


HOLDER = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(descriptor, fcntl.LOCK_EX)  # what runs.hold takes: another rnncount writing to this folder
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fcntl.flock")
def test_a_folder_another_run_writes_to_is_refused(tmp_path):
    """Two commands writing to one folder at once would overwrite each other's files (both exit 0, one run lost):
    the second is refused in one line, exit 2, whether it starts a run there (even with --force) or resumes one;
    once the first has ended, the folder is free again."""
    out = tmp_path / "run"
    assert rnncount("train", "--epochs", "1", *TINY, "--out", out).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for command in (["train", "--epochs", "1", *TINY, "--out", out, "--force"], ["train", "--resume", out]):
            assert_one_line_error(rnncount(*command), f"--out {out} is being written by another rnncount run")
    finally:
        holder.kill()
        holder.wait()
    assert rnncount("train", "--resume", out, "--epochs", "2").returncode == 0


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda *args: "20261201-120000")
    first = runs.default_out("train")
    first.mkdir(parents=True)
    second = runs.default_out("train")
    second.mkdir()
    assert (first.name, second.name, runs.default_out("train").name) == (
        "train-20261201-120000", "train-20261201-120000-2", "train-20261201-120000-3")

"""rnncount.runs: the run options and their checks, the one output-folder check, the one process pool."""

import subprocess
import sys

import pytest
import torch

from rnncount import runs
from rnncount.distributed import World
from rnncount.runs import RunOptions, UsageError, cpu_jobs, in_processes, make_folder, prepare_out


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


def test_prepare_out_is_new_or_empty_or_forced(tmp_path):
    out = tmp_path / "a" / "b"
    assert prepare_out(RunOptions(out=out), "train") == out and out.is_dir()
    (out / ".model.pt.x1y2z3.tmp").write_bytes(b"half")  # what a kill during the first save leaves
    assert prepare_out(RunOptions(out=out), "train") == out
    (out / "model.pt").write_bytes(b"")
    with pytest.raises(UsageError, match="exists and is not empty"):
        prepare_out(RunOptions(out=out), "train")
    assert prepare_out(RunOptions(out=out, force=True), "train") == out
    with pytest.raises(UsageError, match="is a file, not a folder"):
        prepare_out(RunOptions(out=out / "model.pt", force=True), "train")
    with pytest.raises(UsageError, match="cannot write to --out"):
        make_folder(out / "model.pt" / "below")


def square(x):
    return x * x


def test_in_processes_runs_every_task_once():
    assert dict(in_processes(square, {name: (n,) for name, n in [("a", 2), ("b", 3), ("c", 4)]}, 2)) == {
        "a": 4, "b": 9, "c": 16}


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

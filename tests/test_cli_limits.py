"""Sizes past what the machine holds: refused in one line before anything is allocated, not a process the system
kills for memory (which takes other processes with it), a hang, or a C++ dump labelled an internal error."""

import pytest

from conftest import TINY, assert_one_line_error, rnncount
from rnncount import use

ONE_EPOCH = ["--epochs", "1", *TINY]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("limits") / "lstm"
    assert rnncount("train", *ONE_EPOCH, "--out", out).returncode == 0
    return out / "model.pt"


@pytest.mark.parametrize("option", ["--hidden-size", "--train-samples", "--num-layers", "--epochs"])
def test_numbers_past_int32_are_refused_by_the_parser(option, tmp_path):
    result = rnncount("train", *ONE_EPOCH, option, "99999999999999999999999", "--out", tmp_path / "run")
    assert_one_line_error(result, option, "must be at most 2147483647")


@pytest.mark.parametrize("option", ["--threads", "--jobs"])
def test_more_workers_than_any_machine_runs_are_refused(option, tmp_path):
    command = "train" if option == "--threads" else "compare"
    result = rnncount(command, *ONE_EPOCH, option, "5000", "--out", tmp_path / "run")
    assert_one_line_error(result, option, "must be at most 1024")


@pytest.mark.parametrize("sizes", [["--hidden-size", "200000"], ["--num-layers", "2000000000"],
                                   ["--length", "1000000000"]])
def test_a_run_that_cannot_fit_is_refused_before_it_starts(sizes, tmp_path):
    result = rnncount("train", *ONE_EPOCH, *sizes, "--out", tmp_path / "run")
    assert_one_line_error(result, "a run of this size needs about", "GiB free; choose smaller sizes")
    assert not (tmp_path / "run").exists()  # refused before the folder was made


def test_batch_larger_than_the_data_is_not_counted_as_memory(tmp_path):
    assert rnncount("train", *ONE_EPOCH, "--batch-size", "2000000000", "--out", tmp_path / "run").returncode == 0


def test_scoring_that_cannot_fit_is_refused(model, tmp_path):
    assert_one_line_error(rnncount("evaluate", "--model", model, "--samples", "2000000000"),
                          "scoring 2000000000 sequences of length", "choose shorter lengths or fewer samples")
    assert_one_line_error(rnncount("generalize", "--model", model, "--lengths", "2000000000", "--samples", "10"),
                          "of length 2000000000 needs about")
    result = rnncount("compare", "--cells", "lstm", *ONE_EPOCH, "--test-lengths", "20,2000000000",
                      "--out", tmp_path / "run")
    assert_one_line_error(result, "of length 2000000000 needs about")
    assert not (tmp_path / "run").exists()  # before training, not after it


def test_running_out_of_memory_anyway_is_one_line(model, monkeypatch):
    """The allocator's own failure (what an estimate can miss) is a user's size, exit 2; any other error inside
    is reported with its first line only, never a multi-line C++ dump."""
    def no_memory(*args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 400000000000 bytes.\nframe #0: c10::ThrowEnforceNotMet(...)\n"
                           "frame #1: ...")
    monkeypatch.setattr(use, "evaluate_at", no_memory)
    assert_one_line_error(rnncount("evaluate", "--model", model), "not enough memory for this",
                          "can't allocate memory", "choose smaller sizes")

    def broken(*args):
        raise RuntimeError("first line\nframe #0: c10::something\nframe #1: more")
    monkeypatch.setattr(use, "evaluate_at", broken)
    result = rnncount("evaluate", "--model", model)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "rnncount evaluate: internal error: RuntimeError: first line (set RNNCOUNT_DEBUG=1 for the traceback, and "
        "please report it)"]

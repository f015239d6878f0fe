"""rnncount.runs: the run options and their checks, the one output-folder check, the one process pool."""

import pytest

from rnncount.runs import RunOptions, UsageError, in_processes, make_folder, prepare_out


def test_run_options_check_with_the_shared_rules():
    assert RunOptions().jobs == 1 and RunOptions(seeds=[3, 1]).seeds == [3, 1]
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

"""The command line, run as a user types it (a subprocess), on tiny settings, good input and bad."""

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from conftest import TINY, assert_one_line_error, rnncount


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny trained LSTM, shared by the predict/evaluate tests."""
    out = tmp_path_factory.mktemp("run") / "lstm"
    result = rnncount("train", "--cell", "lstm", "--epochs", "2", *TINY, "--out", out, process=True)
    assert result.returncode == 0, result.stderr
    return out, result


def test_train_prints_reference_lines_and_saves(trained):
    out, result = trained
    lines = result.stdout.splitlines()
    assert result.stderr == ""  # the progress bar stays out of pipes and logs
    assert lines[0] == "Epoch 1/2" and lines[1].startswith("Train Loss: ") and lines[2].startswith("Test Loss: ")
    assert "Epoch 2/2" in lines and str(out / "model.pt") in result.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert report["config"]["cell"] == "lstm" and report["config"]["hidden_size"] == 6
    keys = {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "test_mae", "seconds"}
    assert [e["epoch"] for e in report["epochs"]] == [1, 2] and set(report["epochs"][0]) == keys
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["model_config"]["cell"] == "lstm" and len(payload["metrics"]) == 2
    assert "rnn.weight_ih_l0" in payload["model"]


def test_same_seed_same_metrics(tmp_path, trained):
    out, _ = trained
    again = rnncount("train", "--cell", "lstm", "--epochs", "2", *TINY, "--out", tmp_path / "again", module=True)
    assert again.returncode == 0, again.stderr

    def losses(folder):
        return [{k: v for k, v in e.items() if k != "seconds"}
                for e in json.loads((folder / "metrics.json").read_text())["epochs"]]
    assert losses(out) == losses(tmp_path / "again")


def test_predict_arguments_and_stdin(trained):
    out, _ = trained
    result = rnncount("predict", "--model", out / "model.pt", "0110100", "1", process=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("0110100  ") and lines[1].startswith("1  ")
    sequence, rounded, raw = lines[0].split()
    assert int(rounded) == round(float(raw.strip("()")))
    piped = rnncount("predict", "--model", out / "model.pt", "-", stdin="0110100\n\n1\n", process=True)
    assert piped.returncode == 0 and piped.stdout == result.stdout


def test_predict_equals_the_model_in_python(trained):
    from rnncount.checkpoint import load_model
    from rnncount.data import encode
    out, _ = trained
    model, _ = load_model(out / "model.pt")
    expected = model(encode("111010011").unsqueeze(0)).item()
    result = rnncount("predict", "--model", out / "model.pt", "111010011")
    assert float(result.stdout.split()[2].strip("()")) == pytest.approx(expected, abs=1e-4)


def test_predict_batches_by_length_and_keeps_the_order(trained):
    """use.count sorts the sequences into batches of at most `budget` bytes, each run a chunk of steps at a time:
    every count is the model's for that sequence alone, in the order given, however the batches fall."""
    from rnncount import use
    from rnncount.checkpoint import load_model
    from rnncount.data import encode
    out, _ = trained
    model, _ = load_model(out / "model.pt")
    generator = torch.Generator().manual_seed(0)
    sequences = ["".join(map(str, torch.randint(0, 2, (int(n),), generator=generator).tolist()))
                 for n in torch.randint(1, 400, (40,), generator=generator)]  # lengths 1-399, beyond a chunk (256)
    with torch.no_grad():
        alone = [model(encode(s).unsqueeze(0)).item() for s in sequences]
    for budget in (1, 10 * use.batch_bytes(model, 399), 1 << 40):  # one sequence per batch, about 10, all in one
        counts = use.count(model, use.encode_all(sequences), torch.device("cpu"), budget=budget)
        assert counts == pytest.approx(alone, abs=1e-5)


def test_predict_and_evaluate_say_when_a_length_is_outside_training(trained, tmp_path):
    """The tiny model trained at length 8 only: lengths 7 and 12 get one line on stderr naming them and the
    recipe that counts beyond; length 8 gets none; a handmade model (no training lengths) none either."""
    out, _ = trained
    model = out / "model.pt"
    inside = rnncount("predict", "--model", model, "01101001")
    assert inside.returncode == 0 and inside.stderr == ""
    outside = rnncount("predict", "--model", model, "0110100", "01101001", "011010011011")
    assert outside.returncode == 0 and len(outside.stdout.splitlines()) == 3
    assert outside.stderr.count("\n") == 1 and "lengths 7, 12 are outside" in outside.stderr
    assert "(8)" in outside.stderr and "--recipe generalize" in outside.stderr
    evaluated = rnncount("evaluate", "--model", model, "--length", "12", "--samples", "20")
    assert evaluated.returncode == 0 and "length 12 is outside" in evaluated.stderr
    assert rnncount("evaluate", "--model", model, "--samples", "20").stderr == ""
    assert rnncount("handmade", "--out", tmp_path / "hand").returncode == 0
    assert rnncount("predict", "--model", tmp_path / "hand" / "model.pt", "1" * 50).stderr == ""


def test_predict_with_weights_that_are_nan(trained, tmp_path):
    """A model whose weights went nan prints nan as its count (no internal error), and a note says why."""
    out, _ = trained
    payload = torch.load(out / "model.pt", weights_only=True)
    payload["model"] = {name: torch.full_like(value, float("nan")) for name, value in payload["model"].items()}
    torch.save(payload, tmp_path / "nan.pt")
    result = rnncount("predict", "--model", tmp_path / "nan.pt", "01101001", "11111111")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["01101001  nan  (nan)", "11111111  nan  (nan)"]
    assert result.stderr.count("\n") == 1 and "not a finite number for 2 of 2 sequences" in result.stderr


def test_evaluate(trained):
    out, _ = trained
    result = rnncount("evaluate", "--model", out / "model.pt", "--length", "12", "--samples", "100", process=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Length 12, 100 samples (seed 12345): Loss: ")
    assert "Accuracy: " in result.stdout and "MAE: " in result.stdout


def test_compare(tmp_path):
    out = tmp_path / "cmp"
    result = rnncount("compare", "--cells", "lstm,gru,rnn", "--epochs", "2", *TINY, "--out", out, process=True)
    assert result.returncode == 0, result.stderr
    assert "| epoch | lstm | gru | rnn |" in result.stdout and "| first epoch at 100% |" in result.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["cells"]) == {"lstm", "gru", "rnn"}
    assert all(len(report["cells"][c]["epochs"]) == 2 for c in report["cells"])
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "summary.md").exists() and all((out / c / "model.pt").exists() for c in ("lstm", "gru", "rnn"))


def test_compare_jobs_trains_cells_in_parallel_to_the_same_numbers(tmp_path):
    """--jobs 2: the cells train in two processes at once; every number equals the one-after-another run's."""
    def metrics(folder):
        report = json.loads((folder / "metrics.json").read_text())["cells"]
        return {cell: ([{k: v for k, v in e.items() if k != "seconds"} for e in r["epochs"]], r["lengths"])
                for cell, r in report.items()}
    args = ["compare", "--cells", "lstm,gru,rnn", "--epochs", "2", *TINY, "--test-lengths", "12"]
    one = rnncount(*args, "--out", tmp_path / "one", process=True)
    two = rnncount(*args, "--jobs", "2", "--out", tmp_path / "two", process=True)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert metrics(tmp_path / "one") == metrics(tmp_path / "two")
    assert "[gru] Epoch 2/2" in two.stdout and "| epoch | lstm | gru | rnn |" in two.stdout
    assert all((tmp_path / "two" / c / "model.pt").exists() for c in ("lstm", "gru", "rnn"))
    assert_one_line_error(rnncount("compare", "--jobs", "0", *TINY), "--jobs")


def test_resume_continues_to_the_same_metrics(tmp_path, trained):
    out, _ = trained
    partial = tmp_path / "partial"
    assert rnncount("train", "--cell", "lstm", "--epochs", "1", *TINY, "--out", partial).returncode == 0
    result = rnncount("train", "--resume", partial, "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "Resuming" in result.stdout and "Epoch 2/2" in result.stdout

    def losses(folder):
        return [{k: v for k, v in e.items() if k != "seconds"}
                for e in json.loads((folder / "metrics.json").read_text())["epochs"]]
    assert losses(partial) == losses(out)


# ---- bad input: one line on stderr, exit code 2, nothing on disk damaged ----------------------------

@pytest.mark.parametrize("args, fragments", [
    (["train", "--cell", "lstn"], ["--cell", "invalid choice: 'lstn'"]),
    (["compare", "--cells", "lstm,foo"], ["--cells", "unknown cell foo"]),
    (["train", "--epochs", "0"], ["--epochs", "must be >= 1, got 0"]),
    (["train", "--hidden-size", "-3"], ["--hidden-size", "must be >= 1"]),
    (["train", "--train-samples", "0"], ["--train-samples", "must be >= 1"]),
    (["train", "--batch-size", "abc"], ["--batch-size", "expected a whole number"]),
    (["train", "--lr", "-1"], ["--lr", "must be a finite number > 0"]),
    (["train", "--lr", "1e39"], ["--lr", "must be a finite number > 0, at most 3.4e+38 (float32), got 1e39"]),
    (["train", "--forget-bias", "1e300"], ["--forget-bias", "at most 3.4e+38 in size (float32), got 1e300"]),
    (["train", "--min-length", "30"], ["error: --min-length must be <= --length 20, got 30"]),
    (["train", "--curriculum", "-1"], ["error: --curriculum must be an int >= 0, got -1"]),
    (["evaluate", "--model", "x.pt", "--samples", "0"], ["--samples", "must be >= 1"]),
    ([], ["required"]),
])
def test_bad_arguments(args, fragments):
    assert_one_line_error(rnncount(*args), *fragments)


def test_bad_input_in_a_real_process(trained):
    out, _ = trained
    assert_one_line_error(rnncount("train", "--cell", "lstn", process=True), "invalid choice: 'lstn'")
    assert_one_line_error(rnncount("predict", "--model", out / "model.pt", "012", process=True), "other than 0 and 1")
    assert_one_line_error(rnncount("evaluate", "--model", out / "metrics.json", process=True), "not a readable")


@pytest.mark.parametrize("sequence, fragment", [
    ("01a1", "characters other than 0 and 1: 'a'"),
    ("", "empty sequence"),
    ("0 1", "characters other than 0 and 1: ' '"),
])
def test_predict_bad_sequences(trained, sequence, fragment):
    out, _ = trained
    assert_one_line_error(rnncount("predict", "--model", out / "model.pt", "0101", sequence), fragment)


def test_predict_empty_stdin(trained):
    out, _ = trained
    assert_one_line_error(rnncount("predict", "--model", out / "model.pt", "-", stdin="\n"), "no sequences")


def corrupt_files(folder: Path, model: Path) -> dict[str, tuple[Path, str]]:
    """Model files that must be refused, with the words their error must name."""
    folder.mkdir()
    truncated = folder / "truncated.pt"
    truncated.write_bytes(model.read_bytes()[:500])
    random_bytes = folder / "random.pt"
    random_bytes.write_bytes(os.urandom(4096))
    text = folder / "text.pt"
    text.write_text("hello world\n")
    foreign = folder / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    other_config = folder / "other_config.pt"
    payload = torch.load(model, weights_only=True)
    payload["model_config"]["hidden_size"] = 7  # the weights are for 6
    torch.save(payload, other_config)
    edited = {}  # the format marker kept, a section of the wrong kind or value (an audit's hand-edited files)
    for name, section, value in (("config as a list", "model_config", [1, 2]), ("train config as a list",
                                 "train_config", [1]), ("train length 0", "train_config", {"length": 0})):
        payload = torch.load(model, weights_only=True)
        payload[section] = value
        edited[name] = (folder / f"{name.replace(' ', '-')}.pt", "does not fit its own configuration")
        torch.save(payload, edited[name][0])
    return {"missing": (folder / "nope.pt", "does not exist"),
            "folder": (folder, "is a folder"),
            "truncated": (truncated, "not a readable model file"),
            "random": (random_bytes, "not a readable model file"),
            "text": (text, "not a file torch.save wrote"),
            "foreign": (foreign, "not an rnncount model file"),
            "other config": (other_config, "does not fit its own configuration"), **edited}


@pytest.mark.parametrize("command", ["predict", "evaluate", "generalize", "resume"])
def test_bad_model_files(tmp_path, trained, command):
    out, _ = trained
    for name, (path, fragment) in corrupt_files(tmp_path / "bad", out / "model.pt").items():
        if command == "predict":
            result = rnncount("predict", "--model", path, "0101")
        elif command == "evaluate":
            result = rnncount("evaluate", "--model", path)
        elif command == "generalize":
            result = rnncount("generalize", "--model", path, "--lengths", "5", "--samples", "4",
                              "--out", tmp_path / "generalized")
        else:
            folder = tmp_path / f"resume-{name.replace(' ', '-')}"
            folder.mkdir()
            if path.is_file():
                shutil.copy(path, folder / "model.pt")
            result = rnncount("train", "--resume", folder)
        assert_one_line_error(result, fragment if command != "resume" or name not in ("missing", "folder")
                              else "does not exist")


def test_pickle_carrying_code_is_not_run(tmp_path):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    evil = tmp_path / "evil.pt"
    torch.save({"format": "rnncount-counter", "payload": Evil()}, evil)
    result = rnncount("predict", "--model", evil, "0101", process=True)
    assert_one_line_error(result, "not a readable model file", "nothing in it was run")
    assert not marker.exists()


def test_a_foreign_pickle_is_one_line_without_torch_warnings(tmp_path):
    """A plain pickle (protocol 4) is refused in one line: torch's warning about the protocol is not printed."""
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(pickle.dumps({"format": "rnncount-counter"}, protocol=4))
    assert_one_line_error(rnncount("predict", "--model", foreign, "0101", process=True), "not a readable model file")


@pytest.mark.parametrize("args", [["predict", "--model", "", "0101"], ["evaluate", "--model", ""],
                                  ["generalize", "--model", ""], ["inspect", "--model", "", "0110"],
                                  ["train", "--resume", ""]])
def test_empty_model_or_resume_is_refused(tmp_path, monkeypatch, args):
    """--model "" and --resume "" are not the current folder (nor its model.pt): refused as an empty path."""
    monkeypatch.chdir(tmp_path)
    flag = args[args.index("") - 1]
    assert_one_line_error(rnncount(*args), f"argument {flag}: expected a path, got ''")


def test_existing_out_is_never_overwritten(tmp_path, trained):
    out, _ = trained
    folder = tmp_path / "kept"
    shutil.copytree(out, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert_one_line_error(rnncount("train", *TINY, "--epochs", "1", "--out", folder), "exists and is not empty",
                          "--force")
    assert_one_line_error(rnncount("compare", *TINY, "--epochs", "1", "--out", folder), "exists and is not empty")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    assert_one_line_error(rnncount("train", *TINY, "--out", blocker / "sub"), "cannot write to --out")
    assert_one_line_error(rnncount("train", *TINY, "--out", blocker), "is a file")
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("args", [
    ["train", *TINY], ["compare", *TINY], ["sweep", *TINY], ["generalize", "--model", "m.pt"],
    ["handmade", "--lengths", "20", "--samples", "10"], ["inspect", "--model", "m.pt", "0110"],
])
def test_empty_out_is_refused(tmp_path, monkeypatch, args):
    """--out "" is not the current folder: every command refuses it before writing anything."""
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(rnncount(*args, "--out", ""), "argument --out: expected a path, got ''")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_files_get_the_mode_open_would_give(tmp_path, umask):
    """Written atomically (through a private temporary file), yet each file ends 0o666 less the umask, as open()
    makes it; a file rewritten keeps the mode it had."""
    from rnncount.files import write_text_atomically
    before = os.umask(umask)
    try:
        assert rnncount("handmade", "--lengths", "20", "--samples", "10", "--out", tmp_path / "hand").returncode == 0
        assert rnncount("generalize", "--model", tmp_path / "hand" / "model.pt", "--lengths", "20",
                        "--samples", "10").returncode == 0
        assert rnncount("inspect", "--model", tmp_path / "hand" / "model.pt", "0110").returncode == 0
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        write_text_atomically(kept, "new")
    finally:
        os.umask(before)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "hand").iterdir()}
    assert set(modes) == {"model.pt", "generalization.json", "generalization.md", "generalization.png", "inspect.png"}
    assert set(modes.values()) == {0o666 & ~umask}
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "new"


def test_resume_of_a_model_file_asks_for_its_folder(trained):
    out, _ = trained
    assert_one_line_error(rnncount("train", "--resume", out / "model.pt"),
                          "--resume takes the run's folder, not a file", f"--resume {out} continues")
    other = out / "metrics.json"  # not a model file: no folder to suggest (its parent holds no run of that name)
    result = rnncount("train", "--resume", other)
    assert_one_line_error(result, "--resume takes a run's folder", f"not a file: {other}")
    assert "continues" not in result.stderr
    early = out.parent / "stopped-in-epoch-1"  # what Ctrl-C in a --seeds run's first epoch leaves: empty seedS/
    (early / "seed0").mkdir(parents=True, exist_ok=True)
    assert_one_line_error(rnncount("train", "--resume", early), "does not exist: no epoch of a run in",
                          "nothing to resume; start the run again, with --force")


def test_resume_refuses_new_settings(trained):
    out, _ = trained
    assert_one_line_error(rnncount("train", "--resume", out, "--hidden-size", "9"), "drop --hidden-size")


@pytest.mark.parametrize("flag, field, text, value", [
    ("--epochs", "epochs", "0", 0), ("--lr", "lr", "inf", float("inf")), ("--seed", "seed", "-2", -2),
    ("--step-loss", "step_loss", "-1", -1.0), ("--recurrent-decay", "recurrent_decay", "nan", float("nan")),
    ("--clip-grad-norm", "clip_grad_norm", "0", 0.0), ("--zoneout", "zoneout", "1", 1.0),
    ("--forget-bias", "forget_bias", "inf", float("inf")),
])
def test_flags_and_configs_say_the_same_from_one_rule(flag, field, text, value):
    """A flag's error is its config field's, without the name: one rule (rnncount._checks) checks both."""
    from rnncount.model import ModelConfig
    from rnncount.train import TrainConfig
    config = ModelConfig if field in ("zoneout", "forget_bias") else TrainConfig
    with pytest.raises(ValueError) as raised:
        config(**{field: value})
    said = str(raised.value).removeprefix(f"{field} ").replace(str(value), text)
    assert_one_line_error(rnncount("train", flag, text), f"argument {flag}: {said}")


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_every_cell_named_is_checked(tmp_path, command):
    """--recurrent-decay with a cell that has no W_hh is refused whichever place the cell has in --cells."""
    result = rnncount(command, "--cells", "lstm,mingru", "--recurrent-decay", "1", "--out", tmp_path / "out")
    assert_one_line_error(result, f"rnncount {command}: error: --recurrent-decay: the mingru has no recurrent weights")
    assert not (tmp_path / "out").exists()


def test_every_command_has_a_description():
    """Each command's --help starts with a line saying what it does (argparse shows none without one)."""
    import argparse
    from rnncount.cli import build_parser
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {name for name, parser in commands.items() if not parser.description} == set()
    assert "Count the 1s in each sequence" in rnncount("predict", "--help").stdout


def test_the_command_line_starts_without_the_compiler():
    """torch._dynamo takes about a second to import: importing rnncount and its CLI (all that --help, predict
    and evaluate need) does not import it. (Training does: torch.optim's constructor imports it.)"""
    import subprocess
    import sys
    code = "import sys, rnncount, rnncount.cli; print('torch._dynamo' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_compare_applies_a_cell_form_to_the_cells_of_that_form(tmp_path):
    """In a comparison of several cells, --reset-after shapes the GRUs and --nonlinearity the RNNs among them (the
    README's `compare --reset-after`: torch.nn.GRU's form beside the others); each run records what it trained.
    One cell alone refuses a form it lacks."""
    out = tmp_path / "compared"
    result = rnncount("compare", "--cells", "lstm,gru,rnn", "--reset-after", "--nonlinearity", "relu", "--epochs", "1",
                      *TINY, "--out", out)
    assert result.returncode == 0, result.stderr
    recorded = {cell: json.loads((out / cell / "metrics.json").read_text())["config"] for cell in ("lstm", "gru", "rnn")}
    assert {cell: (c["reset_after"], c["nonlinearity"]) for cell, c in recorded.items()} == {
        "lstm": (False, "tanh"), "gru": (True, "tanh"), "rnn": (False, "relu")}
    assert_one_line_error(rnncount("compare", "--cells", "lstm", "--reset-after", "--out", tmp_path / "one"),
                          "--reset-after applies to the GRU")

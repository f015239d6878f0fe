"""Stacked seeds: each member equals its seed trained alone, survives a diverging neighbour, resumes exactly,
and leaves a model.pt that every command reads."""

import json
from dataclasses import replace

import pytest
import torch
from conftest import TINY as CLI_TINY
from conftest import assert_one_line_error, rnncount

from rnncount import stacked
from rnncount.checkpoint import read_checkpoint
from rnncount.model import ModelConfig
from rnncount.stacked import Member, StackedTrainer, fit_stacked
from rnncount.train import TrainConfig, Trainer, load_trainer

TINY = dict(train_samples=200, test_samples=50, length=8, batch_size=16, epochs=3)
SEEDS = (0, 1, 2)

# A member equals its solo run up to float rounding (vmap's batched matmuls round differently in the last bit;
# see docs/stacked.md). On these runs the differences measured are <= 3e-6 in a loss of ~30 and 6e-7 in a weight;
# the bounds leave room for them to grow over the epochs, and still catch any real difference (a wrong seed,
# shuffle, mask or gradient moves these numbers by 1e-2 or more).
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-5


def solo(model_config, train_config):
    trainer = Trainer(model_config, train_config)
    list(trainer.epochs())
    return trainer


def members_for(model_config, train_config, tmp_path, seeds=SEEDS):
    return stacked.new_members(model_config, train_config, list(seeds), tmp_path)


def assert_same_run(member: Trainer, alone: Trainer, weight_atol: float = WEIGHT_ATOL):
    """Per-epoch losses within LOSS_RTOL, accuracies equal, weights and predictions within weight_atol."""
    assert len(member.history) == len(alone.history)
    for ours, theirs in zip(member.history, alone.history):
        for name in ("train_loss", "test_loss", "test_mae"):
            assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=LOSS_RTOL), (ours, theirs)
        assert (ours.train_accuracy, ours.test_accuracy) == (theirs.train_accuracy, theirs.test_accuracy)
    for (name, ours), theirs in zip(member.model.named_parameters(), alone.model.parameters()):
        assert (ours - theirs).abs().max() <= weight_atol, name
    inputs = member.test_data.inputs
    with torch.no_grad():
        assert (member.model.eval()(inputs) - alone.model.eval()(inputs)).abs().max() <= weight_atol


@pytest.mark.parametrize("cell, model_extra, train_extra", [
    ("lstm", {}, {}),
    ("gru", {}, {}),
    ("rnn", {}, {}),
    ("layernorm-gru", {"zoneout": 0.1, "recurrent_dropout": 0.25}, {}),  # random masks: each member its own
    ("peephole-lstm", {}, {"clip_grad_norm": 0.5}),
    # the generalize recipe's settings: variable lengths, per-step loss, cosine lr, decay, readout c
    ("lstm", {"readout": "c", "forget_bias": 20.0}, {"min_length": 1, "step_loss": 1.0, "lr": 3e-3,
                                                     "lr_end": 1e-6, "recurrent_decay": 3.0}),
    ("mingru", {}, {"min_length": 1}),  # the parallel scan under vmap (its own vmap rule), variable lengths
    # sLSTM: h = o c / n is unchanged when i scales c and n alike, so the input gate's bias gets a gradient of
    # rounding noise, which Adam turns into lr-sized steps: its weights agree to 1e-3, losses still to LOSS_RTOL
    ("slstm", {"num_heads": 2}, {}),
])
def test_members_equal_their_seeds_trained_alone(tmp_path, cell, model_extra, train_extra):
    model_config = ModelConfig(cell=cell, hidden_size=8, **model_extra)
    train_config = TrainConfig(**TINY, **train_extra)
    members = members_for(model_config, train_config, tmp_path)
    list(fit_stacked(members))
    for seed, member in zip(SEEDS, members):
        assert member.error is None
        assert_same_run(member.trainer, solo(model_config, replace(train_config, seed=seed)),
                        1e-3 if cell == "slstm" else WEIGHT_ATOL)
        saved = json.loads((tmp_path / f"seed{seed}" / "metrics.json").read_text())
        assert [e["test_loss"] for e in saved["epochs"]] == [m.test_loss for m in member.trainer.history]


def test_a_diverging_member_is_reported_and_frozen_the_others_go_on(tmp_path):
    model_config, train_config = ModelConfig(hidden_size=8), TrainConfig(**{**TINY, "epochs": 1})
    members = members_for(model_config, train_config, tmp_path / "poisoned")
    list(fit_stacked(members))  # epoch 1 for all
    before = (tmp_path / "poisoned" / "seed1" / "model.pt").read_bytes()
    for member in members:
        member.trainer.train_config.epochs = 3
    members[1].trainer.train_data.inputs[:, 3] = float("inf")  # every batch of seed 1's epoch 2 sees an inf
    outcomes = [result for _, epoch in fit_stacked(members) for result in epoch]
    errors = [(m.label, r) for m, r in outcomes if isinstance(r, str)]
    assert len(errors) == 1 and errors[0][0] == "seed 1"
    assert "at epoch 2, batch 1 of 13" in errors[0][1] and members[1].error == errors[0][1]
    assert (tmp_path / "poisoned" / "seed1" / "model.pt").read_bytes() == before  # keeps epoch 1
    assert read_checkpoint(tmp_path / "poisoned" / "seed1" / "model.pt")["epoch"] == 1
    assert len(members[1].trainer.history) == 1
    clean = members_for(model_config, replace(train_config, epochs=3), tmp_path / "clean")
    list(fit_stacked(clean))
    for k in (0, 2):  # nothing of the others is lost: their runs equal the runs next to a healthy seed 1
        assert [m.to_dict() | {"seconds": 0} for m in members[k].trainer.history] == [
            m.to_dict() | {"seconds": 0} for m in clean[k].trainer.history]
        assert read_checkpoint(tmp_path / "poisoned" / f"seed{k}" / "model.pt")["epoch"] == 3


def test_stacked_resume_is_exact(tmp_path):
    model_config, train_config = ModelConfig(cell="gru", hidden_size=8, zoneout=0.1), TrainConfig(**TINY)
    whole = members_for(model_config, train_config, tmp_path / "whole")
    list(fit_stacked(whole))
    part = members_for(model_config, replace(train_config, epochs=1), tmp_path / "part")
    list(fit_stacked(part))
    torch.manual_seed(999)  # whatever happens to the global RNG in between must not matter
    resumed = stacked.resumed_members(tmp_path / "part", epochs=3)
    assert [len(m.trainer.history) for m in resumed] == [1, 1, 1]
    list(fit_stacked(resumed))
    for ours, theirs in zip(resumed, whole):  # the same stack, so the same ops: bit for bit
        assert [m.to_dict() | {"seconds": 0} for m in ours.trainer.history] == [
            m.to_dict() | {"seconds": 0} for m in theirs.trainer.history]


def test_resume_checks_its_members_before_anything_trains(tmp_path):
    """A folder seedS must hold seed S's run, and every member the others' settings: refused (ValueError, a usage
    error at the CLI) before the catch-up loop trains anyone; folders that only look alike (seed1.bak) are not
    members. (An audit: a member of other settings trained alone to the end, then the stack failed.)"""
    model_config, train_config = ModelConfig(hidden_size=8), replace(TrainConfig(**TINY), epochs=1)
    list(fit_stacked(members_for(model_config, train_config, tmp_path / "run")))
    (tmp_path / "run" / "seed1.bak").mkdir()  # a user's backup of a member
    (tmp_path / "run" / "seed1.bak" / "model.pt").write_bytes((tmp_path / "run" / "seed1" / "model.pt").read_bytes())
    assert [m.label for m in stacked.resumed_members(tmp_path / "run", epochs=2)] == ["seed 0", "seed 1", "seed 2"]
    other = members_for(ModelConfig(hidden_size=9), train_config, tmp_path / "other")  # seed 2, other settings
    list(fit_stacked(other))
    swapped = tmp_path / "run" / "seed2" / "model.pt"
    before = (tmp_path / "other" / "seed2" / "model.pt").read_bytes()
    swapped.write_bytes(before)
    with pytest.raises(ValueError, match="other settings"):
        stacked.resumed_members(tmp_path / "run", epochs=2)
    assert swapped.read_bytes() == before  # nothing trained or saved
    swapped.write_bytes((tmp_path / "run" / "seed0" / "model.pt").read_bytes())
    with pytest.raises(ValueError, match="holds the run of seed 0, not of seed 2"):
        stacked.resumed_members(tmp_path / "run", epochs=2)
    with pytest.raises(ValueError, match="each seed at most once"):
        stacked.new_members(model_config, train_config, [3, 3], tmp_path / "twice")


def test_a_stack_with_random_masks_runs_eagerly_under_compile(tmp_path, capsys):
    """Recurrent dropout and zoneout hand the stack its masks by swapping each cell's draw_noise, which dynamo
    cannot trace: such a stack stays eager under compile (as a solo run's masks do), without a compile-failure
    line that would blame torch."""
    model_config, train_config = ModelConfig(hidden_size=4, zoneout=0.1), replace(TrainConfig(**TINY), epochs=1)
    runs = {compile: StackedTrainer(members_for(model_config, train_config, tmp_path / str(compile)),
                                    compile=compile).train_epoch() for compile in (True, False)}
    assert [m.to_dict() | {"seconds": 0} for m in runs[True]] == [m.to_dict() | {"seconds": 0} for m in runs[False]]
    assert capsys.readouterr().err == ""


def test_each_runner_keeps_its_own_adam(tmp_path):
    """A stack updates with fused Adam and a solo run with foreach, whichever of them saved the state they resume:
    torch's load_state_dict would take the flags from the file (a member resumed alone would go on fused, and a
    stack made from solo runs' states would run foreach)."""
    def implementation(optimizer):
        return [(bool(group["fused"]), bool(group["foreach"])) for group in optimizer.param_groups]

    members = members_for(ModelConfig(hidden_size=8), replace(TrainConfig(**TINY), epochs=1), tmp_path)
    list(fit_stacked(members))
    stack = StackedTrainer(stacked.resumed_members(tmp_path, epochs=2))
    assert implementation(stack.optimizer) == [(True, False)]
    assert stack.optimizer.state  # the members' Adam state came along
    alone = load_trainer(tmp_path / "seed0" / "model.pt")
    assert alone.optimizer.state
    assert implementation(alone.optimizer) == [(False, True)] * len(alone.optimizer.param_groups)


def test_members_that_fell_behind_catch_up_first(tmp_path):
    """A stacked run killed between two members' saves: the member behind trains alone until the others' epoch."""
    model_config, train_config = ModelConfig(hidden_size=8), TrainConfig(**TINY)
    members = members_for(model_config, replace(train_config, epochs=2), tmp_path)
    list(fit_stacked(members[:2]))
    list(fit_stacked([replace_epochs(members[2], 1)]))
    resumed = stacked.resumed_members(tmp_path, epochs=3)
    assert [len(m.trainer.history) for m in resumed] == [2, 2, 1]
    epochs = [(epoch, [m.label for m, _ in outcomes]) for epoch, outcomes in fit_stacked(resumed)]
    assert epochs == [(2, ["seed 2"]), (3, ["seed 0", "seed 1", "seed 2"])]
    for seed, member in zip(SEEDS, resumed):
        assert_same_run(member.trainer, solo(model_config, replace(train_config, seed=seed)))


def replace_epochs(member: Member, epochs: int) -> Member:
    member.trainer.train_config.epochs = epochs
    return member


def test_stack_checks_its_members(tmp_path):
    a = Member.new(ModelConfig(hidden_size=8), TrainConfig(**TINY), tmp_path)
    b = Member.new(ModelConfig(hidden_size=9), TrainConfig(**TINY, seed=1), tmp_path)
    with pytest.raises(ValueError, match="share every setting but the seed"):
        StackedTrainer([a, b])
    with pytest.raises(ValueError, match="curriculum"):
        stacked.check_stackable(TrainConfig(**TINY, min_length=2, curriculum=2))
    with pytest.raises(ValueError, match="need about"):
        stacked.check_memory(ModelConfig(hidden_size=1024), TrainConfig(train_samples=10**9), 100)


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "run"
    result = rnncount("train", "--seeds", "0,2", "--epochs", "2", *CLI_TINY, "--out", out, process=True)
    assert result.returncode == 0, result.stderr
    return out, result


def test_train_seeds_prints_the_table_and_saves_each_seed(seeds_run):
    out, result = seeds_run
    assert "| epoch | lstm (2 seeds: min / median / max) |" in result.stdout
    assert "seed 2: Train Loss: " in result.stdout and "| runs reaching 100% | " in result.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["cells"]["lstm"]["seeds"]) == {"0", "2"}
    for seed in (0, 2):
        assert read_checkpoint(out / f"seed{seed}" / "model.pt")["train_config"]["seed"] == seed


def test_a_members_model_file_works_with_every_command(seeds_run, tmp_path):
    out, _ = seeds_run
    model = out / "seed2" / "model.pt"
    for args in (["predict", "--model", model, "0110100"], ["evaluate", "--model", model, "--samples", "50"],
                 ["generalize", "--model", model, "--lengths", "8,12", "--samples", "20", "--out", tmp_path / "g"],
                 ["inspect", "--model", model, "--out", tmp_path / "inspect.png", "0110"]):
        result = rnncount(*args)
        assert result.returncode == 0, (args, result.stderr)
    # a member resumes alone, as the solo run with its seed, and continues like it
    alone = tmp_path / "alone"
    assert rnncount("train", "--seed", "2", "--epochs", "3", *CLI_TINY, "--out", alone).returncode == 0
    import shutil
    shutil.copytree(out / "seed2", tmp_path / "member")
    resumed = rnncount("train", "--resume", tmp_path / "member", "--epochs", "3")
    assert resumed.returncode == 0, resumed.stderr
    ours = load_trainer(tmp_path / "member" / "model.pt")
    assert_same_run(ours, load_trainer(alone / "model.pt"))


def test_compare_seeds(tmp_path):
    """Each cell's stack in its own worker process (--jobs 2); every member equals its seed's solo run."""
    out = tmp_path / "cmp"
    result = rnncount("compare", "--cells", "lstm,rnn", "--seeds", "0-1", "--epochs", "2", *CLI_TINY, "--jobs", "2",
                      "--out", out, process=True)
    assert result.returncode == 0, result.stderr
    assert "[rnn] seed 1: Train Loss: " in result.stdout and "[lstm] Epoch 2/2" in result.stdout
    assert "| epoch | lstm (2 seeds: min / median / max) | rnn (2 seeds: min / median / max) |" in result.stdout
    assert "| first epoch at 100% |" in result.stdout and "| final test loss |" in result.stdout
    assert all((out / cell / f"seed{s}" / "model.pt").exists() for cell in ("lstm", "rnn") for s in (0, 1))
    # each cell of a seed trained on that seed's data, as `compare --seed S` does
    one = rnncount("compare", "--cells", "lstm,rnn", "--seed", "1", "--epochs", "2", *CLI_TINY, "--out",
                   tmp_path / "one")
    assert one.returncode == 0
    for cell in ("lstm", "rnn"):
        assert_same_run(load_trainer(out / cell / "seed1" / "model.pt"), load_trainer(tmp_path / "one" / cell /
                                                                                      "model.pt"))


@pytest.mark.parametrize("seeds, fragment", [
    ("", "expected seeds like 0-4"), ("-1", "seeds must be >= 0"), ("0,0", "seed 0 is named twice"),
    ("0-3,2", "seed 2 is named twice"), ("5-2", "empty range"), ("a", "expected a whole number"),
    ("0,,2", "expected seeds like"), ("0-100000", "one stack holds at most 256"),
])
def test_bad_seeds(seeds, fragment):
    assert_one_line_error(rnncount("train", "--seeds", seeds), "--seeds", fragment)
    assert_one_line_error(rnncount("compare", "--seeds", seeds), "--seeds", fragment)


def test_seeds_that_do_not_fit_in_memory_and_other_conflicts():
    assert_one_line_error(rnncount("train", "--seeds", "0-255", "--train-samples", "100000000", "--length", "1000"),
                          "need about", "GiB")
    assert_one_line_error(rnncount("train", "--seeds", "0-1", "--seed", "3"), "--seed and --seeds")
    assert_one_line_error(rnncount("train", "--seeds", "0-1", "--resume", "somewhere"), "drop --seeds")
    assert_one_line_error(rnncount("train", "--seeds", "0-1", "--min-length", "2", "--curriculum", "2"),
                          "curriculum")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_members_equal_solo_runs_on_cuda(tmp_path):
    model_config = ModelConfig(hidden_size=8, zoneout=0.1)
    train_config = TrainConfig(**TINY)
    members = stacked.new_members(model_config, train_config, list(SEEDS), tmp_path, device="cuda")
    list(fit_stacked(members))
    for seed, member in zip(SEEDS, members):
        alone = Trainer(model_config, replace(train_config, seed=seed), device="cuda")
        list(alone.epochs())
        assert_same_run(member.trainer, alone)


def compiled_and_eager_epochs(tmp_path, cell: str):
    """One epoch of a two-member stack of `cell`, compiled and eager: (compiled results, eager results)."""
    model_config = ModelConfig(cell=cell, hidden_size=4)
    train_config = TrainConfig(train_samples=32, test_samples=16, length=4, batch_size=16, epochs=1)
    runs = {}
    for compile in (True, False):
        members = stacked.new_members(model_config, train_config, [0, 1], tmp_path / str(compile))
        runs[compile] = StackedTrainer(members, compile=compile).train_epoch()
    return runs[True], runs[False]


@pytest.mark.parametrize("cell", ["lstm", "mingru", "minlstm", "slstm"])
def test_compiled_stack_equals_the_eager_one(tmp_path, cell):
    """--compile: the whole vmapped forward compiled (fast.scan's chunks cannot run under vmap); same numbers.
    A stack of minGRUs or minLSTMs runs eagerly (their scan does not trace under vmap; it was an internal error)."""
    for compiled, eager in zip(*compiled_and_eager_epochs(tmp_path, cell)):
        assert compiled.test_loss == pytest.approx(eager.test_loss, rel=LOSS_RTOL)
        assert compiled.train_loss == pytest.approx(eager.train_loss, rel=LOSS_RTOL)


def test_a_stack_that_cannot_compile_runs_eagerly(tmp_path, monkeypatch, capsys):
    """A compiler failure (here: every compiled call raises, as on a machine without a C++ compiler) costs one
    line on stderr; the stack trains eagerly, to the same numbers, and says it once."""
    def broken_compile(function, **options):
        def call(*args, **kwargs):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return call

    monkeypatch.setattr(stacked.torch, "compile", broken_compile)
    compiled, eager = compiled_and_eager_epochs(tmp_path, "lstm")
    assert [m.to_dict() | {"seconds": 0} for m in compiled] == [m.to_dict() | {"seconds": 0} for m in eager]
    assert capsys.readouterr().err.splitlines() == [
        "rnncount: torch.compile is unavailable here (RuntimeError: no C++ compiler found); the stack runs eagerly"]

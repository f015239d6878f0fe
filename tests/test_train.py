"""Training and evaluation: reproducible with a seed, exact resume, the metrics' definitions."""

import pytest
import torch

from rnncount.data import CountingData
from rnncount.model import Counter, ModelConfig
from rnncount.train import TrainConfig, Trainer, evaluate, format_epoch

TINY = dict(train_samples=200, test_samples=50, length=8, batch_size=16, epochs=3)


def losses(trainer):
    return [(m.train_loss, m.train_accuracy, m.test_loss, m.test_accuracy, m.test_mae) for m in trainer.history]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_same_seed_same_losses(cell):
    runs = []
    for _ in range(2):
        trainer = Trainer(ModelConfig(cell=cell, hidden_size=8), TrainConfig(**TINY, seed=5))
        list(trainer.epochs())
        runs.append(losses(trainer))
    assert runs[0] == runs[1]
    other = Trainer(ModelConfig(cell=cell, hidden_size=8), TrainConfig(**TINY, seed=6))
    list(other.epochs())
    assert losses(other) != runs[0]


def test_training_lowers_the_loss():
    trainer = Trainer(ModelConfig(hidden_size=8), TrainConfig(**{**TINY, "epochs": 4, "lr": 0.02}))
    list(trainer.epochs())
    assert trainer.history[-1].test_loss < 0.5 * trainer.history[0].test_loss


def test_variable_length_training_runs():
    trainer = Trainer(ModelConfig(cell="gru", hidden_size=8), TrainConfig(**{**TINY, "min_length": 3}))
    list(trainer.epochs())
    assert len(trainer.history) == 3


def test_resume_from_state_equals_uninterrupted_run():
    config = TrainConfig(**TINY)
    whole = Trainer(ModelConfig(hidden_size=8), config)
    list(whole.epochs())
    first = Trainer(ModelConfig(hidden_size=8), config)
    first.train_epoch()
    state = first.state_dict()
    torch.manual_seed(999)  # whatever happens to the global RNG in between must not matter
    resumed = Trainer(ModelConfig(hidden_size=8), config)
    resumed.load_state_dict(state)
    list(resumed.epochs())
    assert losses(resumed) == losses(whole)


class Fixed(torch.nn.Module):
    """A stand-in model that predicts given numbers, to check the metrics by hand."""

    def __init__(self, predictions):
        super().__init__()
        self.predictions = predictions

    def forward(self, inputs, lengths=None):
        return self.predictions[: inputs.size(0)]


def test_evaluate_metrics_by_hand():
    counts = torch.tensor([2.0, 3.0, 0.0, 5.0])
    data = CountingData(torch.zeros(4, 5, 1), counts, torch.full((4,), 5))
    predictions = torch.tensor([2.4, 3.6, -0.2, 5.0])  # rounded: 2, 4, 0, 5 -> 3 of 4 right
    result = evaluate(Fixed(predictions), data)
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["mae"] == pytest.approx((0.4 + 0.6 + 0.2 + 0.0) / 4)
    assert result["loss"] == pytest.approx((0.16 + 0.36 + 0.04) / 4)


def test_counter_reads_each_sequence_at_its_own_end():
    torch.manual_seed(0)
    model = Counter(ModelConfig(cell="lstm", hidden_size=6)).eval()
    short = torch.tensor([[1.0], [0.0], [1.0]])
    padded = torch.cat([short, torch.ones(4, 1)]).unsqueeze(0)  # junk after step 3
    alone = model(short.unsqueeze(0))
    assert torch.allclose(model(padded, torch.tensor([3])), alone, atol=1e-6)


def test_counter_defaults_are_the_reference():
    config = ModelConfig()
    assert (config.cell, config.hidden_size, config.reset_after, config.init) == ("lstm", 20, False, "reference")
    defaults = TrainConfig()
    assert (defaults.epochs, defaults.batch_size, defaults.train_samples, defaults.test_samples, defaults.length,
            defaults.lr) == (10, 16, 10_000, 1_000, 20, 1e-3)
    bound = (3 / 20) ** 0.5  # reference LSTM init: U(-sqrt(3/H), sqrt(3/H))
    weights = Counter(config).rnn.weight_hh_l0
    assert weights.abs().max() <= bound and weights.abs().max() > 0.9 * bound
    assert not Counter(ModelConfig(cell="gru")).rnn.cells[0].reset_after


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be >= 1"), ("batch_size", -1, "batch_size must be >= 1"),
    ("lr", 0.0, "lr must be a finite number > 0"), ("lr", float("inf"), "lr must be a finite number > 0"),
    ("lr", 1e39, r"lr must be a finite number > 0, at most 3.4e\+38 \(float32\), got 1e\+39"),
    ("seed", -1, r"seed must be in \[0, 2\*\*63\)"), ("seed", 2**63, r"seed must be in \[0, 2\*\*63\)"),
    ("min_length", 30, "min_length must be <= length"), ("step_loss", -1.0, "step_loss must be a number >= 0"),
    ("recurrent_decay", float("nan"), "recurrent_decay must be a finite number"),
    ("clip_grad_norm", 0.0, "clip_grad_norm must be a finite number > 0"),
    ("curriculum", -1, "curriculum must be an int >= 0"),
])
def test_bad_train_config(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_bad_model_config():
    with pytest.raises(ValueError, match="unknown cell 'lstn'"):
        ModelConfig(cell="lstn")
    with pytest.raises(ValueError, match="hidden_size must be >= 1"):
        ModelConfig(hidden_size=0)
    with pytest.raises(ValueError, match="forget_bias must be a finite number.*got inf"):
        ModelConfig(forget_bias=float("inf"))
    with pytest.raises(ValueError, match="forget_bias must be a finite number, at most 3.4e"):  # float32 overflowed
        ModelConfig(forget_bias=-1e39)


def test_epoch_lines_match_the_reference_format():
    trainer = Trainer(ModelConfig(hidden_size=4), TrainConfig(**{**TINY, "epochs": 1}))
    lines = format_epoch(trainer.train_epoch(), 10).splitlines()
    assert lines[0] == "Epoch 1/10"
    assert lines[1].startswith("Train Loss: ") and "; Accuracy: " in lines[1]
    assert lines[2].startswith("Test Loss: ") and "; Accuracy: " in lines[2]

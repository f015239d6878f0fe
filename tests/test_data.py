"""The counting data: the reference distribution, seeds, variable lengths, encoding."""

import pytest
import torch

from rnncount.data import counting_data, encode


def draw(samples=4000, length=20, seed=0, min_length=None):
    return counting_data(samples, length, torch.Generator().manual_seed(seed), min_length)


def test_shapes_labels_and_values():
    data = draw(samples=500, length=12)
    assert data.inputs.shape == (500, 12, 1) and data.counts.shape == (500,)
    assert set(data.inputs.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(data.counts, data.inputs.sum(dim=(1, 2)))
    assert data.fixed_length and torch.equal(data.lengths, torch.full((500,), 12))


def test_reference_distribution():
    """Each element is 1 with probability 1 - k/L, k uniform in {0..L-1}."""
    length, data = 10, draw(samples=20000, length=10)
    all_ones = (data.counts == length).float().mean().item()
    expected = sum((1 - k / length) ** length for k in range(length)) / length  # P(all 1s | k) = (1 - k/L)^L
    assert abs(all_ones - expected) < 0.01
    # E[count] = L * E[1 - k/L] = L - (L-1)/2 = (L+1)/2
    assert abs(data.counts.mean().item() - (length + 1) / 2) < 0.1
    all_zeros = (data.counts == 0).float().mean().item()
    expected = sum((k / length) ** length for k in range(length)) / length  # P(all 0s | k) = (k/L)^L
    assert abs(all_zeros - expected) < 0.005


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = draw(seed=3), draw(seed=3), draw(seed=4)
    assert torch.equal(a.inputs, b.inputs)
    assert not torch.equal(a.inputs, c.inputs)


def test_variable_lengths_pad_with_zeros():
    data = draw(samples=3000, length=15, min_length=5)
    assert data.lengths.min() == 5 and data.lengths.max() == 15 and not data.fixed_length
    steps = torch.arange(15)[None, :]
    assert (data.inputs.squeeze(-1)[steps >= data.lengths[:, None]] == 0).all()
    assert torch.equal(data.counts, data.inputs.sum(dim=(1, 2)))
    inputs, counts, lengths = data.batch(torch.tensor([0, 2]))
    assert torch.equal(lengths, data.lengths[[0, 2]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=0, length=5), "samples must be >= 1"),
    (dict(samples=5, length=0), "length must be >= 1"),
    (dict(samples=5, length=5, min_length=6), "min_length must be <= length"),
])
def test_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        counting_data(generator=torch.Generator(), **kwargs)


def test_encode():
    assert torch.equal(encode("0110"), torch.tensor([[0.0], [1.0], [1.0], [0.0]]))
    with pytest.raises(ValueError, match="empty sequence"):
        encode("")
    with pytest.raises(ValueError, match="other than 0 and 1: '2a'"):
        encode("01a2")

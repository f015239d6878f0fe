"""Counting at lengths of 10,000 and more: scoring in bounded memory, equal to the plain evaluation."""

from functools import partial

import pytest
import torch

from rnncount.data import counting_blocks, counting_data
from rnncount.generalize import chunk_states, count_in_chunks, generalization
from rnncount.handmade import handmade_lstm
from rnncount.model import CELLS, MASKED, Counter, ModelConfig, family
from rnncount.train import evaluate
from conftest import rnncount

CELL_READOUTS = [(cell, readout) for cell in CELLS for readout in ("h", "c")
                 if readout == "h" or family(cell) == "lstm"]


@pytest.mark.parametrize("samples, length, block", [(1000, 20, 1000), (37, 500, 10), (5, 3001, 2), (3, 1, 1)])
def test_counting_blocks_are_counting_datas_sequences(samples, length, block):
    data = counting_data(samples, length, torch.Generator().manual_seed(7))
    blocks = list(counting_blocks(samples, length, torch.Generator().manual_seed(7), block))
    assert [len(bits) for bits, _ in blocks] == [min(block, samples - s) for s in range(0, samples, block)]
    assert all(bits.dtype == torch.bool for bits, _ in blocks)
    assert torch.equal(torch.cat([bits for bits, _ in blocks]).float().unsqueeze(-1), data.inputs)
    assert torch.equal(torch.cat([counts for _, counts in blocks]), data.counts)


@pytest.mark.parametrize("cell, readout", CELL_READOUTS)
def test_count_in_chunks_is_the_model_exactly(cell, readout):
    """Chunk by chunk, carrying only the state, gives the very same floats as one pass, with and without lengths
    (a parallel scan: the same to float rounding)."""
    torch.manual_seed(0)
    zoneout = 0.1 if family(cell) in MASKED else 0.0  # the cells that take random masks get them
    model = Counter(ModelConfig(cell=cell, readout=readout, hidden_size=5, num_layers=2, zoneout=zoneout)).eval()
    inputs = (torch.rand(6, 300, 1) < 0.5).float()
    lengths = torch.tensor([300, 1, 64, 65, 129, 200])  # ends inside, at and just past a chunk's edge
    # the parallel scan (minGRU, minLSTM) splits a sequence by its length, so chunks round differently: to 1e-6
    same = partial(torch.testing.assert_close, rtol=1e-6, atol=1e-6) if model.rnn.parallel else assert_equal
    with torch.no_grad():
        same(count_in_chunks(model, inputs, chunk=64), model(inputs))
        same(count_in_chunks(model, inputs, lengths, chunk=64), model(inputs, lengths))
        same(count_in_chunks(model, inputs[..., 0].bool(), chunk=7), model(inputs))  # bits in


def assert_equal(a, b):
    assert torch.equal(a, b), (a, b)


def test_chunk_states_continue_from_a_given_state():
    torch.manual_seed(2)
    layer = Counter(ModelConfig(hidden_size=3)).rnn.eval()
    inputs = (torch.rand(2, 50, 1) < 0.5).float()
    *_, (_, first) = chunk_states(layer, inputs[:, :30], chunk=8)
    *_, (steps, rest) = chunk_states(layer, inputs[:, 30:], chunk=8, state=first)
    *_, (_, whole) = chunk_states(layer, inputs, chunk=10)
    assert steps == 20 and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(rest, whole))


def test_count_in_chunks_runs_the_layer_a_chunk_at_a_time():
    """No call of the layer sees more than `chunk` steps: the states it keeps do not grow with the length."""
    model = Counter(ModelConfig(hidden_size=4, readout="c")).eval()
    seen = []
    model.rnn.register_forward_pre_hook(lambda module, args: seen.append(args[0].size(1)))
    count_in_chunks(model, torch.ones(3, 1000, 1), chunk=128)
    assert max(seen) == 128 and sum(seen) == 1000


@pytest.mark.parametrize("cell, readout", [("lstm", "c"), ("gru", "h"), ("layernorm-lstm", "h")])
def test_generalization_equals_evaluate_on_the_same_sequences(cell, readout):
    torch.manual_seed(1)
    model = Counter(ModelConfig(cell=cell, readout=readout, hidden_size=6))
    rows = generalization(model, [20, 300], samples=250, seed=3, chunk=64)  # 300 > chunk: five chunks
    for row in rows:
        data = counting_data(250, row["length"], torch.Generator().manual_seed(3))
        expected = evaluate(model, data, batch_size=max(1, min(1000, 200_000 // row["length"])))
        assert {k: row[k] for k in expected} == expected  # exactly: the same floats, summed in the same order
    assert model.training  # left as it was found


def test_the_handmade_counter_is_exact_at_length_30000():
    rows = generalization(handmade_lstm(), [30_000], samples=8, seed=0)
    assert rows[0]["accuracy"] == 1.0 and rows[0]["mae"] == 0.0


def test_generalize_command_scores_long_lengths_without_a_bar_off_a_terminal(tmp_path):
    hand = tmp_path / "hand"
    assert rnncount("handmade", "--lengths", "20", "--samples", "5", "--out", hand).returncode == 0
    result = rnncount("generalize", "--model", hand / "model.pt", "--lengths", "20,5000", "--samples", "12")
    assert result.returncode == 0, result.stderr
    assert "| 5000 | 1.000 | 0.000 |" in result.stdout
    assert result.stderr == ""  # stderr is a pipe here: tqdm's bar hides itself



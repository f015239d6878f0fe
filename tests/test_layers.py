"""rnncount's LSTM, GRU and RNN layers equal torch.nn's in outputs, final states and gradients (inputs, initial
states, every parameter) over layers, directions, layouts, packing, lengths, dtypes; the reset-before GRU and the
LSTM's per-step cell states equal loops written out by hand; dropout, initialisation, state_dict and argument
checks behave as torch.nn's (or as documented)."""

from __future__ import annotations

import ast
import math
import pathlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from conftest import (LENGTHS, B, Case, H, I, T, as_hx, assert_matches_torch, assert_same_function,
                      assert_uniform_bound, cell_view, flatten, gru_reset_before_step, hand_call, layer_call,
                      layer_inputs, zeros)
import rnncount
from rnncount import GRU, LSTM, RNN, fast

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

# kind -> (ours, torch's, constructor options they share)
LAYERS = {
    "lstm": (LSTM, nn.LSTM, {}),
    "gru": (GRU, nn.GRU, {}),
    "rnn_tanh": (RNN, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, nn.RNN, {"nonlinearity": "relu"}),
}


def make_layer(kind: str, input_size: int = I, hidden_size: int = H, *, torch_twin: bool = False, **options):
    """One of our layers by kind, or with torch_twin=True torch.nn's, with the same options."""
    ours_cls, torch_cls, shared = LAYERS[kind]
    return (torch_cls if torch_twin else ours_cls)(input_size, hidden_size, **shared, **options)


def compare_layer(kind: str, case: Case, input_size: int = I, hidden_size: int = H, steps: int = T,
                  batch: int = B, lengths=None, compiled: bool = False) -> None:
    ours = make_layer(kind, input_size, hidden_size, **case.options).to(case.dtype).compile_steps(compiled)
    theirs = make_layer(kind, input_size, hidden_size, torch_twin=True, **case.options).to(case.dtype)
    lengths = LENGTHS[case.input] if lengths is None else lengths
    assert_matches_torch(ours, theirs, layer_call(case, lengths), layer_inputs(ours, case, steps, batch))


f64 = torch.float64
SCENARIOS = [
    Case(),
    Case(batch_first=True, hx=True, dtype=f64),
    Case(num_layers=2, bidirectional=True, hx=True),
    Case(num_layers=2, bidirectional=True, batch_first=True),
    Case(num_layers=3, bias=False, dtype=f64),
    Case(num_layers=2, bidirectional=True, batch_first=True, bias=False, input="packed_unsorted", hx=True, dtype=f64),
    Case(num_layers=3, bidirectional=True, input="packed_unsorted"),
    Case(num_layers=2, input="packed_sorted", hx=True),
    Case(bidirectional=True, batch_first=True, input="packed_sorted", dtype=f64),
    Case(num_layers=2, bidirectional=True, input="unbatched", hx=True),
    Case(batch_first=True, bias=False, input="unbatched", dtype=f64),
]
PROJECTED = [
    Case(num_layers=2, bidirectional=True, hx=True, proj_size=2),
    Case(num_layers=2, bidirectional=True, batch_first=True, bias=False, input="packed_unsorted", hx=True,
         dtype=f64, proj_size=3),
    Case(num_layers=3, input="packed_sorted", proj_size=1),
    Case(bidirectional=True, input="unbatched", hx=True, dtype=f64, proj_size=2),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=str)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_equals_torch(kind, case):
    torch.manual_seed(0)
    compare_layer(kind, case)


@pytest.mark.parametrize("case", PROJECTED, ids=str)
def test_projected_lstm_equals_torch(case):
    torch.manual_seed(0)
    compare_layer("lstm", case)


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(data=st.data(), input_size=st.integers(1, 4), hidden_size=st.integers(1, 5), steps=st.integers(1, 5),
       batch=st.integers(1, 4), num_layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(), bias=st.booleans(), hx=st.booleans(),
       input=st.sampled_from(["padded", "packed_sorted", "packed_unsorted", "unbatched"]))
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_layer_equals_torch_any_size(kind, data, input_size, hidden_size, steps, batch, num_layers, bidirectional,
                                     batch_first, bias, hx, input):
    torch.manual_seed(0)
    proj_size = data.draw(st.integers(0, hidden_size - 1), label="proj_size") if kind == "lstm" else 0
    if kind == "rnn":
        kind = data.draw(st.sampled_from(["rnn_tanh", "rnn_relu"]), label="nonlinearity")
    lengths = data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch), label="lengths")
    if input == "packed_sorted":
        lengths = sorted(lengths, reverse=True)
    case = Case(num_layers, bidirectional, batch_first, bias, input, hx, torch.float64, proj_size)
    compare_layer(kind, case, input_size, hidden_size, steps, batch, lengths)


# ------------------------------------------------------------------------------- oracles written out by hand

def torch_lstm_cell_step(layer):
    """Steps of torch.nn.LSTMCell, run on our layer's parameters (so gradients reach them)."""
    dtype = layer.weight_ih_l0.dtype
    cells = [nn.LSTMCell(cell.input_size, cell.hidden_size, cell.bias, dtype=dtype) for cell in layer.cells]
    weights = [{name: w for name, w in vars(layer.cell_weights(k)).items() if w is not None} for k in range(len(cells))]
    return lambda k, x, state: functional_call(cells[k], weights[k], (x, state))


def reset_before_gru_step(layer):
    return lambda k, x, state: (gru_reset_before_step(cell_view(layer, k), x, state[0]),)


HAND_CASES = [
    Case(),
    Case(num_layers=2, bidirectional=True, input="packed_unsorted", hx=True, dtype=f64),
    Case(num_layers=3, batch_first=True, bias=False, hx=True),
    Case(num_layers=2, bidirectional=True, input="packed_sorted", dtype=f64),
    Case(bidirectional=True, input="unbatched", hx=True, dtype=f64),
]


# The fast path (rnncount.fast, compiled chunks of steps) on a case that reaches all of it: several layers,
# both directions, per-sequence lengths (the mask), initial states. A cold compile costs half a minute of CPU
# per cell form, so two forms are run: the LSTM against torch.nn, the counting default (reset-before GRU)
# against its equations. (The reset-after GRU passes too: `compare_layer("gru", FAST_CASE, compiled=True)`.)
FAST_CASE = Case(num_layers=2, bidirectional=True, input="packed_unsorted", hx=True)


def test_fast_path_equals_torch():
    torch.manual_seed(0)
    compare_layer("lstm", FAST_CASE, compiled=True)
    assert fast.available(), "the fast path fell back to eager"


def test_compiling_leaves_room_for_many_compiled_forms(monkeypatch):
    """Each cell form, size and batch size is a compiled entry of fast._chunk: an LSTM and a GRU of a few sizes in
    one process pass dynamo's default of 8, after which it would refuse to compile (and rnncount run eagerly).
    A compile through fast.CompiledOrEager (every compiled path of rnncount) raises the limit first."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    monkeypatch.setattr(torch, "compile", lambda function, **options: function)  # the limit, not a compile
    with config.patch(**{name: 8}):  # dynamo's default
        assert torch.equal(fast.CompiledOrEager(torch.neg, "eagerly")(torch.ones(2)), -torch.ones(2))
        assert getattr(config, name) >= fast.RECOMPILE_LIMIT


def test_fast_path_falls_back_to_eager_with_a_notice(monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("no C compiler found\n(more detail)")
    monkeypatch.setattr(fast._run_chunk, "compiled", broken)
    monkeypatch.setattr(fast._run_chunk, "failed", False)
    layer, x = LSTM(I, H), torch.randn(T, B, I)
    expected = layer(x)[0]
    first, second = layer.compile_steps()(x)[0], layer(x)[0]
    assert torch.equal(first, expected) and torch.equal(second, expected)
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and "no C compiler found" in notice and "running eagerly" in notice


@pytest.mark.parametrize("case", HAND_CASES, ids=str)
@pytest.mark.parametrize("kind", ["lstm_cell_states", "gru_reset_before"])
def test_layer_equals_hand_loop(kind, case, compiled=False):
    """The LSTM's every-step cell states against torch.nn.LSTMCell in a loop; the reset-before GRU, which torch
    lacks, against its equations in a loop."""
    torch.manual_seed(0)
    if kind == "lstm_cell_states":
        layer, step, kwargs = LSTM(I, H, **case.options), torch_lstm_cell_step, {"return_cell_states": True}
    else:
        layer, step, kwargs = GRU(I, H, reset_after=False, **case.options), reset_before_gru_step, {}
    layer = layer.to(case.dtype).compile_steps(compiled)
    lengths = LENGTHS[case.input]
    names, params = zip(*layer.named_parameters())
    assert_same_function(lambda *a: layer_call(case, lengths, **kwargs)(layer, *a),
                         hand_call(layer, step(layer), case, lengths), layer_inputs(layer, case), params, params, names)


def test_fast_path_equals_hand_loop_reset_before_gru():
    test_layer_equals_hand_loop("gru_reset_before", FAST_CASE, compiled=True)
    assert fast.available(), "the fast path fell back to eager"


@pytest.mark.parametrize("input", ["padded", "packed_unsorted"])
def test_last_cell_state_is_c_n(input):
    """Forward direction: the cell state at each sequence's last step is c_n's."""
    torch.manual_seed(0)
    lstm = LSTM(I, H, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    lengths = LENGTHS[input] or [T] * B
    if input == "packed_unsorted":
        x = pack_padded_sequence(x, lengths, enforce_sorted=False)
    _, (_, c_n), cell_states = lstm(x, return_cell_states=True)
    if input == "packed_unsorted":
        assert isinstance(cell_states, PackedSequence)
        cell_states, _ = pad_packed_sequence(cell_states)
    last = cell_states[torch.tensor(lengths) - 1, torch.arange(B)]  # (B, 2H)
    assert torch.equal(last[:, :H], c_n[-2])
    assert torch.equal(cell_states[0, :, H:], c_n[-1])  # the reverse direction ends at step 0


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "gru_reset_before"])
def test_lengths_keyword_equals_packed(kind, batch_first):
    torch.manual_seed(0)
    options = dict(num_layers=2, bidirectional=True, batch_first=batch_first)
    layer = GRU(I, H, reset_after=False, **options) if kind == "gru_reset_before" else make_layer(kind, **options)
    lengths = LENGTHS["packed_unsorted"]
    kwargs = {"return_cell_states": True} if kind == "lstm" else {}

    def packed(x, *states):
        outputs = layer(pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False),
                        as_hx(states), **kwargs)
        return tuple(pad_packed_sequence(y, batch_first=batch_first, total_length=T)[0]
                     if isinstance(y, PackedSequence) else y for y in outputs)

    names, params = zip(*layer.named_parameters())
    inputs = layer_inputs(layer, Case(batch_first=batch_first, hx=True))
    assert_same_function(lambda x, *s: layer(x, as_hx(s), lengths=lengths, **kwargs), packed, inputs,
                         params, params, names)


GRADCHECK_LAYERS = {  # kept tiny: full gradcheck perturbs every input and parameter element in turn
    "lstm_proj_bi_packed": (lambda: LSTM(1, 2, num_layers=2, bidirectional=True, proj_size=1), "packed_unsorted"),
    "lstm_lengths_cell_states": (lambda: LSTM(2, 3, batch_first=True), "lengths"),
    "gru_bi_packed": (lambda: GRU(1, 2, num_layers=2, bidirectional=True), "packed_sorted"),
    "gru_reset_before_bi_lengths": (lambda: GRU(1, 2, num_layers=2, bidirectional=True, reset_after=False),
                                    "lengths"),
    "rnn_relu_bi": (lambda: RNN(2, 3, num_layers=2, nonlinearity="relu", bidirectional=True), "padded"),
    "rnn_tanh_unbatched": (lambda: RNN(2, 3, num_layers=2, bias=False), "unbatched"),
}


@pytest.mark.parametrize("name", list(GRADCHECK_LAYERS))
def test_layer_gradcheck(name):
    torch.manual_seed(0)
    make, input = GRADCHECK_LAYERS[name]
    layer = make().double()
    case = Case(batch_first=layer.batch_first, input=input if input != "lengths" else "padded", hx=True,
                dtype=torch.float64)
    lengths = {"lengths": [1, 2], "packed_sorted": [2, 1], "packed_unsorted": [1, 2]}.get(input)
    kwargs = {"lengths": lengths} if input == "lengths" else {}
    kwargs |= {"return_cell_states": True} if input == "lengths" and isinstance(layer, LSTM) else {}
    call = layer_call(case, None if input == "lengths" else lengths, **kwargs)
    inputs = layer_inputs(layer, case, steps=2, batch=2)
    names = [n for n, _ in layer.named_parameters()]

    def function(*leaves):
        params = dict(zip(names, leaves[len(inputs):]))
        outputs = call(lambda *a, **kw: functional_call(layer, params, a, kw), *leaves[:len(inputs)])
        return tuple(tensor for _, tensor in flatten(outputs))  # a PackedSequence gives its data

    leaves = [t.requires_grad_() for t in inputs] + [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(function, tuple(leaves))


# ------------------------------------------------------------------------------------------------------ dropout

def h_n_of(result):
    return result[1][0] if isinstance(result[1], tuple) else result[1]


def assert_all_equal(ours, theirs):
    for (name, a), (_, b) in zip(flatten(ours), flatten(theirs), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_with_one_layer_changes_nothing(kind):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="no effect with num_layers=1"):
        layer = make_layer(kind, dropout=0.5, bidirectional=True)
    x = torch.randn(T, B, I)
    assert_all_equal(layer.train()(x), layer.eval()(x))


@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_acts_between_layers_in_training_mode_only(kind):
    torch.manual_seed(0)
    layer = make_layer(kind, num_layers=2, bidirectional=True, dropout=0.5)
    plain = make_layer(kind, num_layers=2, bidirectional=True)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I)
    torch.manual_seed(1)
    train = layer.train()(x)
    torch.manual_seed(1)
    assert_all_equal(layer(x), train)  # the same seed, the same masks
    evaluated = layer.eval()(x)
    assert_all_equal(evaluated, plain(x))  # eval mode: no dropout at all
    assert (train[0] - evaluated[0]).abs().max() > 1e-3
    # the first layer's final states are untouched (nothing dropped from the input), the second's are not
    assert torch.equal(h_n_of(train)[:2], h_n_of(evaluated)[:2])
    assert not torch.equal(h_n_of(train)[2:], h_n_of(evaluated)[2:])


DROPOUT_CASES = [Case(num_layers=3, hx=True, dropout=0.5),
                 Case(num_layers=2, bidirectional=True, batch_first=True, dtype=f64, dropout=0.3)]


@pytest.mark.parametrize("case", DROPOUT_CASES, ids=str)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_training_mode_dropout_equals_torch_from_the_same_seed(kind, case):
    """Padded input only: torch draws its mask over the layer output, (T, B, D*H), as we do. For packed input
    torch draws it over the packed data instead, so the masks (not their distribution) differ from ours."""
    torch.manual_seed(0)
    compare_layer(kind, case)


def test_training_mode_dropout_equals_torch_with_projection():
    torch.manual_seed(0)
    compare_layer("lstm", Case(num_layers=3, bidirectional=True, hx=True, proj_size=2, dropout=0.4))


# ----------------------------------------------------------------------------------------------- initialisation

def layer_parameters(layer):
    """(name, layer index, parameter) for every parameter, by torch's name: weight_ih_l1_reverse -> weight_ih, 1."""
    for torch_name in layer.state_dict():
        name, rest = torch_name.split("_l")
        yield name, int(rest.split("_")[0]), getattr(layer, torch_name)


@pytest.mark.parametrize("init", ["torch", "reference", "orthogonal"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_init_schemes_reach_every_cell(kind, init):
    torch.manual_seed(0)
    layer = make_layer(kind, 30, 64, num_layers=2, bidirectional=True, init=init)
    for name, index, p in layer_parameters(layer):
        if init == "reference" and kind == "lstm":
            bound = math.sqrt(3 / 64)
        elif init == "reference":  # nn.Linear's bound for each map: 1/sqrt(its input width)
            fan_in = {"ih": 30 if index == 0 else 128, "hh": 64}[name[-2:]]  # layer 1 reads both directions
            bound = 1 / math.sqrt(fan_in)
        else:
            bound = 1 / math.sqrt(64)
        if init == "orthogonal" and name == "weight_hh":
            for block in p.detach().double().split(64):
                assert torch.allclose(block @ block.T, torch.eye(64, dtype=torch.float64), atol=1e-5)
        else:
            assert_uniform_bound(f"{name} l{index}", p, bound)


def test_forget_bias_in_every_cell():
    torch.manual_seed(0)
    lstm = LSTM(3, 8, num_layers=2, bidirectional=True, forget_bias=1.0)
    for suffix in ("l0", "l0_reverse", "l1", "l1_reverse"):
        total = getattr(lstm, f"bias_ih_{suffix}") + getattr(lstm, f"bias_hh_{suffix}")
        assert torch.equal(total[8:16], torch.ones(8)), suffix


@pytest.mark.parametrize("kind", list(LAYERS))
def test_same_seed_same_layer_parameters(kind):
    torch.manual_seed(3)
    first = make_layer(kind, num_layers=2, bidirectional=True, init="orthogonal").state_dict()
    torch.manual_seed(3)
    second = make_layer(kind, num_layers=2, bidirectional=True, init="orthogonal").state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)


# --------------------------------------------------------------------------------------------------- state_dict

STATE_DICT_CASES = [("lstm", dict(num_layers=2, bidirectional=True, proj_size=2)),
                    ("lstm", dict(bias=False, proj_size=1)),
                    ("gru", dict(num_layers=2, bidirectional=True)), ("rnn_relu", dict(num_layers=3, bias=False))]


@pytest.mark.parametrize("kind, options", STATE_DICT_CASES, ids=lambda value: str(value))
def test_state_dict_loads_both_ways(kind, options):
    torch.manual_seed(0)
    ours = make_layer(kind, **options)
    theirs = make_layer(kind, torch_twin=True, **options)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    # the layer's own Parameters, under torch's names, in torch's order; its cells hold none
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]
    assert ours._flat_weights_names == theirs._flat_weights_names
    assert all(isinstance(ours._parameters[name], nn.Parameter) for name, _ in theirs.named_parameters())
    assert not any(list(cell.parameters()) for cell in ours.cells)

    ours.load_state_dict(theirs.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters(), strict=True))
    assert all(torch.equal(getattr(ours, n), p) for n, p in theirs.named_parameters())
    torch_again = make_layer(kind, torch_twin=True, **options)
    torch_again.load_state_dict(ours.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(torch_again.parameters(), theirs.parameters(), strict=True))
    nested = nn.Sequential(make_layer(kind, **options))  # prefixed keys ("0.weight_ih_l0") load too
    nested.load_state_dict(nn.Sequential(theirs).state_dict())
    assert all(torch.equal(getattr(nested[0], n), p) for n, p in theirs.named_parameters())


# ------------------------------------------------------------------------------------------------ bad arguments

# Each call takes the module namespace, rnncount or torch.nn: the same mistake must raise the same exception class
# in both (our message names the argument). TORCH: the cases that torch.nn has too.
BAD_LAYER_CALLS = {
    "input_width": (lambda m: m.LSTM(3, 4)(zeros(5, 2, 4)), RuntimeError, r"input has 4 features.*expected input_size=3"),
    "input_width_packed": (lambda m: m.GRU(3, 4)(pack_padded_sequence(zeros(5, 2, 2), [5, 3])), RuntimeError,
                           r"input has 2 features.*expected input_size=3"),
    "input_dims": (lambda m: m.RNN(3, 4)(zeros(1, 5, 2, 3)), ValueError,
                   r"input must have 2 \(unbatched\) or 3 \(batched\) dimensions, got shape \(1, 5, 2, 3\)"),
    "input_not_float": (lambda m: m.LSTM(3, 4)(torch.zeros(5, 2, 3, dtype=torch.long)), ValueError,
                        r"input is torch.int64 .* parameters are torch.float32"),
    "input_dtype": (lambda m: m.GRU(3, 4)(zeros(5, 2, 3, dtype=torch.float64)), ValueError,
                    r"input is torch.float64 .* parameters are torch.float32"),
    "no_steps": (lambda m: m.RNN(3, 4)(zeros(0, 2, 3)), RuntimeError, r"input has no time steps \(shape \(0, 2, 3\)\)"),
    "h_0_layers": (lambda m: m.LSTM(3, 4, num_layers=2)(zeros(5, 2, 3), (zeros(1, 2, 4), zeros(2, 2, 4))),
                   RuntimeError, r"h_0 has shape \(1, 2, 4\), expected \(2, 2, 4\)"),
    "c_0_shape": (lambda m: m.LSTM(3, 4)(zeros(5, 2, 3), (zeros(1, 2, 4), zeros(1, 2, 5))), RuntimeError,
                  r"c_0 has shape \(1, 2, 5\), expected \(1, 2, 4\)"),
    "h_0_projected": (lambda m: m.LSTM(3, 4, proj_size=2)(zeros(5, 2, 3), (zeros(1, 2, 4), zeros(1, 2, 4))),
                      RuntimeError, r"h_0 has shape \(1, 2, 4\), expected \(1, 2, 2\)"),
    "h_0_bidirectional": (lambda m: m.GRU(3, 4, bidirectional=True)(zeros(5, 2, 3), zeros(1, 2, 4)), RuntimeError,
                          r"h_0 has shape \(1, 2, 4\), expected \(2, 2, 4\)"),
    "h_0_batch_first": (lambda m: m.GRU(3, 4, batch_first=True)(zeros(2, 5, 3), zeros(1, 5, 4)), RuntimeError,
                        r"h_0 has shape \(1, 5, 4\), expected \(1, 2, 4\)"),
    "h_0_unbatched": (lambda m: m.RNN(3, 4)(zeros(5, 3), zeros(1, 1, 4)), RuntimeError,
                      r"h_0 has shape \(1, 1, 4\), expected \(1, 4\)"),
    "h_0_dtype": (lambda m: m.LSTM(3, 4)(zeros(5, 2, 3), (zeros(1, 2, 4, dtype=torch.float64), zeros(1, 2, 4))),
                  RuntimeError, r"h_0 is torch.float64 .* expected torch.float32"),
    "proj_size_equal": (lambda m: m.LSTM(3, 4, proj_size=4), ValueError,
                        r"proj_size must be an int in \[0, hidden_size=4\), got 4"),
    "proj_size_negative": (lambda m: m.LSTM(3, 4, proj_size=-1), ValueError,
                           r"proj_size must be an int in \[0, hidden_size=4\), got -1"),
    "proj_size_float": (lambda m: m.LSTM(3, 4, proj_size=1.5), TypeError, r"proj_size must be an int, got float"),
    "proj_size_gru": (lambda m: m.GRU(3, 4, proj_size=2), ValueError, r"proj_size is only supported by the LSTM"),
    "proj_size_rnn": (lambda m: m.RNN(3, 4, proj_size=2), ValueError, r"proj_size is only supported by the LSTM"),
    "num_layers": (lambda m: m.GRU(3, 4, num_layers=0), ValueError, r"num_layers must be >= 1, got 0"),
    "input_size": (lambda m: m.LSTM(-2, 4), ValueError, r"input_size must be >= 1, got -2"),
    "hidden_size_float": (lambda m: m.RNN(3, 2.0), TypeError, r"hidden_size must be an int, got float"),
    "nonlinearity": (lambda m: m.RNN(3, 4, nonlinearity="sigmoid"), ValueError, r"nonlinearity must be 'tanh' or"),
}
for _kind in LAYERS:
    for _size in (0, -1):
        BAD_LAYER_CALLS[f"hidden_size_{_size}_{_kind}"] = (
            lambda m, kind=_kind, size=_size: make_layer(kind, I, size, torch_twin=m is nn), ValueError,
            rf"hidden_size must be >= 1, got {_size}")
    for _p in (-0.1, 1.5, True):
        BAD_LAYER_CALLS[f"dropout_{_p}_{_kind}"] = (
            lambda m, kind=_kind, p=_p: make_layer(kind, num_layers=2, dropout=p, torch_twin=m is nn), ValueError,
            rf"dropout must be a number in \[0, 1\], got {_p}")
TORCH = set(BAD_LAYER_CALLS)
BAD_LAYER_CALLS |= {  # rnncount's own arguments
    "hx_count": (lambda m: m.LSTM(3, 4)(zeros(5, 2, 3), zeros(1, 2, 4)), ValueError,
                 r"hx must be h_0 and c_0, got 1 tensor"),
    "lengths_count": (lambda m: m.GRU(3, 4)(zeros(5, 2, 3), lengths=[5, 4, 3]), ValueError,
                      r"lengths must hold 2 integers .* got shape \(3,\)"),
    "lengths_range": (lambda m: m.GRU(3, 4)(zeros(5, 2, 3), lengths=[6, 0]), ValueError,
                      r"lengths must lie in \[1, 5\] .* got \[6, 0\]"),
    "lengths_float": (lambda m: m.LSTM(3, 4)(zeros(5, 2, 3), lengths=torch.tensor([5.0, 4.0])), ValueError,
                      r"lengths must hold 2 integers .* torch.float32"),
    "lengths_with_packed": (lambda m: m.RNN(3, 4)(pack_padded_sequence(zeros(5, 2, 3), [5, 3]), lengths=[5, 3]),
                            ValueError, r"lengths= is for padded input"),
    "init": (lambda m: m.RNN(3, 4, init="zeros"), ValueError, r"init must be one of torch, reference, orthogonal"),
}


@pytest.mark.parametrize("case", list(BAD_LAYER_CALLS))
def test_bad_arguments_fail_at_the_call_naming_them(case):
    call, error, message = BAD_LAYER_CALLS[case]
    with pytest.raises(error, match=message):
        call(rnncount)


@pytest.mark.parametrize("case", sorted(TORCH))
def test_torch_raises_the_same_class_for_the_same_mistake(case):
    call, error, _ = BAD_LAYER_CALLS[case]
    with pytest.raises(error):
        call(nn)


def test_dropout_takes_every_value_in_0_1_as_torch():
    assert all(make_layer(kind, num_layers=2, dropout=p).dropout == p for p in (0, 0.5, 1) for kind in LAYERS)
    torch.manual_seed(0)
    ours = LSTM(I, H, num_layers=2, dropout=1.0).train()  # p = 1: layer 2 sees zeros, deterministically
    theirs = nn.LSTM(I, H, num_layers=2, dropout=1.0).train()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, I)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])


# ----------------------------------------------------------------------------------- no torch RNN on our path

TORCH_RNN_CLASSES = {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "RNNBase", "RNNCellBase"}
TORCH_RNN_KERNELS = {"lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell",
                     "rnn_relu_cell", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell"}
KERNEL_OWNERS = ("torch", "_VF", "aten", "_VariableFunctions")


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def torch_rnn_uses(source: str) -> list[str]:
    """Code (not comments or docstrings) that reaches torch's own RNN: nn.LSTM, torch.nn.GRUCell, _VF,
    torch.lstm_cell, imports of them."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            owner = _dotted(node.value)
            if node.attr in TORCH_RNN_CLASSES and owner.split(".")[-1] == "nn" or node.attr == "_VF" or (
                    node.attr in TORCH_RNN_KERNELS and owner.split(".")[-1] in KERNEL_OWNERS):
                found.append(f"line {node.lineno}: {owner}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id == "_VF":
            found.append(f"line {node.lineno}: _VF")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            names = {alias.name for alias in node.names}
            if ("_VF" in names or module.startswith(("torch._VF", "torch.nn.modules.rnn"))
                    or any(n.startswith(("torch._VF", "torch.nn.modules.rnn")) for n in names)
                    or module.startswith("torch.nn") and names & TORCH_RNN_CLASSES
                    or module == "torch" and names & TORCH_RNN_KERNELS):
                found.append(f"line {node.lineno}: import {module} {sorted(names)}")
    return found


@pytest.mark.parametrize("source", [
    "nn.LSTM(3, 4)", "torch.nn.GRU(3, 4)", "x = nn.RNNCell", "from torch.nn import LSTMCell",
    "from torch import _VF", "torch._VF.lstm(x)", "torch.lstm_cell(x, hx, w, v)", "import torch.nn.modules.rnn",
    "from torch.nn.modules.rnn import LSTM", "torch.ops.aten.gru_cell(x)",
])
def test_the_source_check_catches_torch_rnn(source):
    assert torch_rnn_uses(source)


def test_the_source_check_ignores_comments_docstrings_and_our_names():
    assert not torch_rnn_uses('"""Equal to torch.nn.LSTM(...)."""\n# nn.GRU(3, 4) would be cheating\n'
                              'from .layers import LSTM\nlstm = LSTM(3, 4)\nself.lstm_cell = LSTMCell(3, 4)\n'
                              'from torch.nn.utils.rnn import PackedSequence\n')


def test_no_torch_rnn_on_our_path():
    import rnncount
    sources = sorted(pathlib.Path(rnncount.__file__).parent.glob("*.py"))
    assert {"cells.py", "layers.py"} <= {path.name for path in sources}
    uses = {path.name: torch_rnn_uses(path.read_text()) for path in sources}
    assert not any(uses.values()), uses
    for layer in (LSTM(2, 3, num_layers=2, proj_size=1), GRU(2, 3, bidirectional=True), RNN(2, 3)):
        assert not any(isinstance(m, (nn.RNNBase, nn.RNNCellBase)) for m in layer.modules())

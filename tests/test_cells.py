"""rnncount's cells equal torch.nn.LSTMCell, GRUCell and RNNCell in outputs and gradients; the reset-before GRU
equals its equations written out by hand; initialisation schemes and argument checks do what they promise."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from conftest import assert_matches_torch, assert_same_function, assert_uniform_bound, gru_reset_before_step, zeros
import rnncount
from rnncount import GRUCell, LSTMCell, RNNCell

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

I, H, B = 3, 4, 2

# kind -> (ours, torch's), each built from (input_size, hidden_size, bias)
CELLS = {
    "lstm": (LSTMCell, nn.LSTMCell),
    "gru": (GRUCell, nn.GRUCell),
    "rnn_tanh": (lambda i, h, b: RNNCell(i, h, b, "tanh"), lambda i, h, b: nn.RNNCell(i, h, b, "tanh")),
    "rnn_relu": (lambda i, h, b: RNNCell(i, h, b, "relu"), lambda i, h, b: nn.RNNCell(i, h, b, "relu")),
}


def cell_call(module, x, *state):
    """A cell called as torch.nn's: no state, h, or (h, c)."""
    if not state:
        return module(x)
    return module(x, state[0] if len(state) == 1 else tuple(state))


def cell_inputs(cell, batch: tuple[int, ...], dtype, with_state: bool) -> list[torch.Tensor]:
    x = torch.randn(*batch, cell.input_size, dtype=dtype)
    states = [torch.randn(*batch, size, dtype=dtype) for size in cell.state_sizes] if with_state else []
    return [x, *states]


def compare_cell(kind: str, input_size: int, hidden_size: int, bias: bool, batch: tuple[int, ...], dtype,
                 with_state: bool) -> None:
    ours_cls, torch_cls = CELLS[kind]
    ours = ours_cls(input_size, hidden_size, bias).to(dtype)
    theirs = torch_cls(input_size, hidden_size, bias).to(dtype)
    assert_matches_torch(ours, theirs, cell_call, cell_inputs(ours, batch, dtype, with_state))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "zero_state"])
@pytest.mark.parametrize("batch", [(B,), ()], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_equals_torch(kind, bias, batch, with_state, dtype):
    torch.manual_seed(0)
    compare_cell(kind, I, H, bias, batch, dtype, with_state)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(kind=st.sampled_from(list(CELLS)), input_size=st.integers(1, 6), hidden_size=st.integers(1, 6),
       batch=st.sampled_from([(), (1,), (2,), (5,)]), bias=st.booleans(), with_state=st.booleans())
def test_cell_equals_torch_any_size(kind, input_size, hidden_size, batch, bias, with_state):
    torch.manual_seed(0)
    compare_cell(kind, input_size, hidden_size, bias, batch, torch.float64, with_state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch", [(B,), ()], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_lstm_cell_with_projection_equals_one_step_of_torch_lstm(bias, batch, dtype):
    """torch.nn.LSTMCell has no proj_size; one step of torch.nn.LSTM has."""
    torch.manual_seed(0)
    ours = LSTMCell(I, H, bias, proj_size=2).to(dtype)
    theirs = nn.LSTM(I, H, bias=bias, proj_size=2).to(dtype)
    ours.load_state_dict({name.removesuffix("_l0"): value for name, value in theirs.state_dict().items()})

    def one_step(x, h, c):
        output, (h_n, c_n) = theirs(x.unsqueeze(0), (h.unsqueeze(0), c.unsqueeze(0)))
        assert torch.equal(output[0], h_n[0])
        return h_n[0], c_n[0]

    names = [name for name, _ in theirs.named_parameters()]
    assert_same_function(lambda x, h, c: ours(x, (h, c)), one_step, cell_inputs(ours, batch, dtype, True),
                         [getattr(ours, name.removesuffix("_l0")) for name in names], list(theirs.parameters()), names)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("with_state", [True, False], ids=["state", "zero_state"])
@pytest.mark.parametrize("batch", [(B,), ()], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_reset_before_gru_cell_equals_hand_step(bias, batch, with_state, dtype):
    torch.manual_seed(0)
    cell = GRUCell(I, H, bias, reset_after=False).to(dtype)
    params = list(cell.parameters())

    def by_hand(x, h=None):
        return gru_reset_before_step(cell, x, torch.zeros(*batch, H, dtype=dtype) if h is None else h)

    assert_same_function(lambda *a: cell_call(cell, *a), by_hand, cell_inputs(cell, batch, dtype, with_state),
                         params, params, [name for name, _ in cell.named_parameters()])


def test_reset_before_and_reset_after_gru_are_different_models():
    torch.manual_seed(0)
    after = GRUCell(I, H)
    before = GRUCell(I, H, reset_after=False)
    before.load_state_dict(after.state_dict())
    x, h = torch.randn(B, I), torch.randn(B, H)
    assert (after(x, h) - before(x, h)).abs().max() > 1e-3


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_gru_input_projection_holds_the_recurrent_biases_outside_every_product(reset_after):
    """What a layer hoists out of its time loop: W_ih x + b_ih, plus b_hr and b_hz, plus b_hn only in the reset-before
    form (reset-after, b_hn sits inside r * (W_hn h + b_hn), so a step adds it); with bias=False, W_ih x alone."""
    torch.manual_seed(0)
    cell, x = GRUCell(I, H, reset_after=reset_after), torch.randn(B, I)
    b_hr, b_hz, b_hn = cell.bias_hh.detach().split(H)
    hoisted = torch.cat([b_hr, b_hz, b_hn if not reset_after else torch.zeros(H)])
    expected = x @ cell.weight_ih.detach().T + cell.bias_ih.detach() + hoisted
    assert torch.allclose(cell.input_projection(x), expected, atol=1e-6)
    unbiased = GRUCell(I, H, bias=False, reset_after=reset_after)
    assert torch.allclose(unbiased.input_projection(x), x @ unbiased.weight_ih.detach().T, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: LSTMCell(2, 3), lambda: LSTMCell(2, 3, proj_size=2), lambda: LSTMCell(2, 3, bias=False),
    lambda: GRUCell(2, 3), lambda: GRUCell(2, 3, reset_after=False), lambda: GRUCell(2, 3, False, reset_after=False),
    lambda: RNNCell(2, 3), lambda: RNNCell(2, 3, nonlinearity="relu"),
], ids=["lstm", "lstm_proj", "lstm_no_bias", "gru", "gru_reset_before", "gru_reset_before_no_bias",
        "rnn_tanh", "rnn_relu"])
def test_cell_gradcheck(make):
    """Analytic gradients equal finite differences, for the input, the state and every parameter."""
    torch.manual_seed(0)
    cell = make().double()
    names = [name for name, _ in cell.named_parameters()]
    x, *states = cell_inputs(cell, (2,), torch.float64, with_state=True)
    count = len(states)

    def step(x, *rest):
        params = dict(zip(names, rest[count:]))
        return functional_call(cell, params, (x, tuple(rest[:count])))

    inputs = tuple(t.requires_grad_() for t in (x, *states, *(p.detach().clone() for p in cell.parameters())))
    assert torch.autograd.gradcheck(step, inputs)


@pytest.mark.parametrize("make", [
    lambda: LSTMCell(2, 5), lambda: LSTMCell(2, 5, proj_size=3, layer_norm=True), lambda: GRUCell(2, 5),
    lambda: GRUCell(2, 5, reset_after=False), lambda: GRUCell(2, 5, layer_norm=True), lambda: RNNCell(2, 5),
], ids=["lstm", "lstm_proj_layer_norm", "gru", "gru_reset_before", "gru_layer_norm", "rnn"])
def test_weights_read_once_per_sequence_give_the_same_gradients_as_read_every_step(make):
    """A layer hands every step one Weights, with its views (W_hh^T, the GRU's split) made once; reading them
    afresh at every step (step's weights=None) gives the same outputs and gradients, to the last bit."""
    torch.manual_seed(0)
    cell = make()
    x = torch.randn(6, 4, 2)

    def run(once: bool):
        weights = cell.own_weights() if once else None
        state = cell.zero_state((4,), x)
        for x_t in x:
            state = cell.step(cell.input_projection(x_t), state, weights=weights)
        state[0].square().sum().backward()
        grads = [p.grad.clone() for p in cell.parameters()]
        cell.zero_grad()
        return state, grads

    (state_once, grads_once), (state_each, grads_each) = run(once=True), run(once=False)
    assert all(torch.equal(a, b) for a, b in zip(state_once, state_each))
    assert all(torch.equal(a, b) for a, b in zip(grads_once, grads_each, strict=True))


# ---------------------------------------------------------------------------------------------- initialisation

@pytest.mark.parametrize("kind", list(CELLS))
def test_torch_init_bounds(kind):
    torch.manual_seed(0)
    cell = CELLS[kind][0](30, 64, True)
    for name, p in cell.named_parameters():
        assert_uniform_bound(name, p, 1 / math.sqrt(64))


def test_reference_init_lstm_bounds():
    torch.manual_seed(0)
    for cell in (LSTMCell(30, 64, init="reference"), LSTMCell(30, 64, proj_size=8, init="reference")):
        for name, p in cell.named_parameters():
            assert_uniform_bound(name, p, math.sqrt(3 / 64))


@pytest.mark.parametrize("make", [lambda **kw: GRUCell(100, 40, **kw), lambda **kw: RNNCell(100, 40, **kw)],
                         ids=["gru", "rnn"])
def test_reference_init_gru_rnn_bounds_by_fan_in(make):
    torch.manual_seed(0)
    cell = make(init="reference")
    fan_in = {"weight_ih": 100, "bias_ih": 100, "weight_hh": 40, "bias_hh": 40}
    for name, p in cell.named_parameters():
        assert_uniform_bound(name, p, 1 / math.sqrt(fan_in[name]))


@pytest.mark.parametrize("make", [lambda: LSTMCell(5, 16, init="orthogonal"), lambda: GRUCell(5, 16, init="orthogonal"),
                                  lambda: RNNCell(5, 16, init="orthogonal")], ids=["lstm", "gru", "rnn"])
def test_orthogonal_init_makes_each_gate_block_orthogonal(make):
    torch.manual_seed(0)
    cell = make()
    blocks = cell.weight_hh.detach().double().split(16, dim=0)
    assert len(blocks) == cell.num_gates
    for block in blocks:
        assert torch.allclose(block @ block.T, torch.eye(16, dtype=torch.float64), atol=1e-5)
    assert_uniform_bound("weight_ih", cell.weight_ih, 1 / math.sqrt(16))


@pytest.mark.parametrize("init", ["torch", "reference", "orthogonal"])
def test_forget_bias_sets_the_forget_gates_total_bias(init):
    torch.manual_seed(0)
    cell = LSTMCell(3, 8, init=init, forget_bias=1.0)
    total = cell.bias_ih[8:16] + cell.bias_hh[8:16]
    assert torch.equal(total, torch.ones(8))
    assert not torch.equal(cell.bias_ih[:8] + cell.bias_hh[:8], torch.ones(8))  # the other gates are untouched


@pytest.mark.parametrize("make", [lambda: LSTMCell(3, 8, init="reference", forget_bias=1.0),
                                  lambda: GRUCell(3, 8, init="orthogonal"), lambda: RNNCell(3, 8)],
                         ids=["lstm", "gru", "rnn"])
def test_same_seed_same_parameters(make):
    torch.manual_seed(7)
    first = make().state_dict()
    torch.manual_seed(7)
    second = make().state_dict()
    torch.manual_seed(8)
    other = make().state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["weight_hh"], other["weight_hh"])


# ---------------------------------------------------------------------------------------------- bad arguments

# Each call takes the module namespace, rnncount or torch.nn: the same mistake raises the same exception class in
# both (our message names the argument). TORCH: the cases that torch.nn has too.
BAD_CELL_CALLS = {
    "input_width": (lambda m: m.LSTMCell(3, 4)(zeros(2, 5)), RuntimeError,
                    r"input has 5 features.*expected input_size=3"),
    "input_dims": (lambda m: m.GRUCell(3, 4)(zeros(1, 2, 3)), ValueError,
                   r"input must have 1 \(unbatched\) or 2 \(batched\) dimensions, got shape \(1, 2, 3\)"),
    "input_dtype": (lambda m: m.LSTMCell(3, 4)(zeros(2, 3, dtype=torch.float64)), RuntimeError,
                    r"input is torch.float64 .* parameters are torch.float32"),
    "h_shape": (lambda m: m.LSTMCell(3, 4)(zeros(2, 3), (zeros(2, 5), zeros(2, 4))), RuntimeError,
                r"h has shape \(2, 5\), expected \(2, 4\)"),
    "c_shape": (lambda m: m.LSTMCell(3, 4)(zeros(2, 3), (zeros(2, 4), zeros(3, 4))), RuntimeError,
                r"c has shape \(3, 4\), expected \(2, 4\)"),
    "h_shape_gru": (lambda m: m.GRUCell(3, 4)(zeros(2, 3), zeros(3, 4)), RuntimeError,
                    r"h has shape \(3, 4\), expected \(2, 4\)"),
    "h_shape_unbatched": (lambda m: m.RNNCell(3, 4)(zeros(3), zeros(1, 5)), RuntimeError,
                          r"h has shape \(1, 5\), expected \(4,\)"),
    "hidden_size_negative": (lambda m: m.GRUCell(3, -1), RuntimeError, r"hidden_size must be >= 0, got -1"),
    "hidden_size_float": (lambda m: m.LSTMCell(3, 2.0), TypeError, r"hidden_size must be an int, got float"),
}
TORCH = set(BAD_CELL_CALLS)
BAD_CELL_CALLS |= {  # rnncount's own arguments and checks torch.nn leaves to a later failure or none
    "input_not_float": (lambda m: m.RNNCell(3, 4)(torch.zeros(2, 3, dtype=torch.long)), RuntimeError,
                        r"input is torch.int64 .* parameters are torch.float32"),
    "h_shape_projected": (lambda m: m.LSTMCell(3, 4, proj_size=2)(zeros(2, 3), (zeros(2, 4), zeros(2, 4))),
                          RuntimeError, r"h has shape \(2, 4\), expected \(2, 2\)"),
    "h_dtype": (lambda m: m.GRUCell(3, 4)(zeros(2, 3), zeros(2, 4, dtype=torch.float64)), RuntimeError,
                r"h is torch.float64 .* expected torch.float32"),
    "state_count": (lambda m: m.LSTMCell(3, 4)(zeros(2, 3), zeros(2, 4)), ValueError,
                    r"state must hold 2 tensor\(s\), got 1"),
    "proj_size_equal": (lambda m: m.LSTMCell(3, 4, proj_size=4), ValueError,
                        r"proj_size must be an int in \[0, hidden_size=4\), got 4"),
    "proj_size_above": (lambda m: m.LSTMCell(3, 4, proj_size=9), ValueError,
                        r"proj_size must be an int in \[0, hidden_size=4\), got 9"),
    "init": (lambda m: m.GRUCell(3, 4, init="xavier"), ValueError, r"init must be one of torch, reference, orthogonal"),
    "nonlinearity": (lambda m: m.RNNCell(3, 4, nonlinearity="sigmoid"), ValueError, r"nonlinearity must be 'tanh' or"),
    "forget_bias_without_bias": (lambda m: m.LSTMCell(3, 4, bias=False, forget_bias=1.0), ValueError,
                                 r"forget_bias needs bias"),
}


@pytest.mark.parametrize("case", sorted(TORCH))
def test_torch_raises_the_same_class_for_the_same_mistake(case):
    call, error, _ = BAD_CELL_CALLS[case]
    with pytest.raises(error):
        call(nn)


@pytest.mark.parametrize("kind", list(CELLS))
def test_size_zero_cells_work_as_torch(kind):
    """torch.nn's cells take input_size=0 and hidden_size=0 (empty weights): so do ours, with the same outputs."""
    ours, theirs = CELLS[kind]
    for i, h in ((0, 4), (3, 0)):
        x = torch.randn(B, i)
        for a, b in zip(flatten_state(ours(i, h, True)(x)), flatten_state(theirs(i, h, True)(x)), strict=True):
            assert a.shape == b.shape == (B, h)
            if i == 0:  # the output is the biases' alone: the same only with the same biases, so just finite
                assert torch.isfinite(a).all()


def flatten_state(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("case", list(BAD_CELL_CALLS))
def test_bad_arguments_fail_at_the_call_naming_them(case):
    call, error, message = BAD_CELL_CALLS[case]
    with pytest.raises(error, match=message):
        call(rnncount)

"""The cell variants (peephole, coupled, layer-normalised LSTM; layer-normalised GRU; recurrent dropout and zoneout
on every cell) equal their equations written out by hand, pass gradcheck, change nothing when switched off, and
draw their masks as documented: recurrent dropout one mask per sequence, zoneout one per step, nothing random in
eval mode, the same masks from the same seed. The counter and the command line take them by name."""

from __future__ import annotations

import copy
import io
import json
from collections import Counter as Tally

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import assert_same_function, cell_view, flatten
from rnncount import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from rnncount.cells import Noise
from rnncount.model import CELLS, Counter, ModelConfig
from conftest import TINY, assert_one_line_error, rnncount
from conftest import LENGTHS, Case, hand_call, layer_call, layer_inputs

I, H, B, T = 2, 3, 2, 5


# ---------------------------------------------------------------------------------------- the equations by hand


def layer_norm(z, gain, shift=None, eps=1e-5):
    """LN over the last dimension, from its definition: (z - mean) / sqrt(var + eps) * gain + shift."""
    mean = z.mean(-1, keepdim=True)
    variance = ((z - mean) ** 2).mean(-1, keepdim=True)
    normal = (z - mean) / torch.sqrt(variance + eps) * gain
    return normal if shift is None else normal + shift


def gate_parts(cell, x, h_rec, k):
    """Gate k's input part, recurrent part and bias, from the parameter slices (each part layer-normalised
    on its own when the cell is)."""
    rows = slice(k * cell.hidden_size, (k + 1) * cell.hidden_size)
    wx, wh = x @ cell.weight_ih[rows].T, h_rec @ cell.weight_hh[rows].T
    if cell.layer_norm:
        wx, wh = layer_norm(wx, cell.ln_gain_ih[k]), layer_norm(wh, cell.ln_gain_hh[k])
    bias = (0.0, 0.0) if cell.bias_ih is None else (cell.bias_ih[rows], cell.bias_hh[rows])
    return wx, wh, bias


def lstm_by_hand(cell, x, h, c, m=None):
    """One LSTM step with the cell's switches; m (recurrent dropout) multiplies h_{t-1} in the matmuls only."""
    h_rec = h if m is None else h * m
    names = ["f", "g", "o"] if cell.coupled else ["i", "f", "g", "o"]  # CIFG has no input-gate rows
    pre = {}
    for k, name in enumerate(names):
        wx, wh, (b_i, b_h) = gate_parts(cell, x, h_rec, k)
        pre[name] = wx + b_i + wh + b_h
    if cell.peephole:  # Gers & Schmidhuber: i and f see c_{t-1}
        pre["f"] = pre["f"] + cell.weight_cf * c
        if not cell.coupled:
            pre["i"] = pre["i"] + cell.weight_ci * c
    f = torch.sigmoid(pre["f"])
    i = 1 - f if cell.coupled else torch.sigmoid(pre["i"])
    c_new = f * c + i * torch.tanh(pre["g"])
    o = torch.sigmoid(pre["o"] + cell.weight_co * c_new if cell.peephole else pre["o"])  # o sees c_t
    h_new = o * torch.tanh(layer_norm(c_new, cell.ln_gain_c, cell.ln_bias_c) if cell.layer_norm else c_new)
    return (h_new @ cell.weight_hr.T if cell.proj_size else h_new), c_new


def gru_by_hand(cell, x, h, m=None):
    """One GRU step (either reset form, layer-normalised or not); m multiplies h_{t-1} in the matmuls only."""
    h_rec = h if m is None else h * m
    (xr, hr, (bir, bhr)), (xz, hz, (biz, bhz)) = gate_parts(cell, x, h_rec, 0), gate_parts(cell, x, h_rec, 1)
    r = torch.sigmoid(xr + bir + hr + bhr)
    z = torch.sigmoid(xz + biz + hz + bhz)
    if cell.reset_after:
        xn, hn, (bin_, bhn) = gate_parts(cell, x, h_rec, 2)
        n = torch.tanh(xn + bin_ + r * (hn + bhn))
    else:
        xn, _, (bin_, bhn) = gate_parts(cell, x, h_rec, 2)
        _, hn, _ = gate_parts(cell, x, r * h_rec, 2)  # W_hn (r * h)
        n = torch.tanh(xn + bin_ + hn + bhn)
    return ((1 - z) * n + z * h,)


def rnn_by_hand(cell, x, h, m=None):
    h_rec = h if m is None else h * m
    wx, wh, (b_i, b_h) = gate_parts(cell, x, h_rec, 0)
    return (cell.activation(wx + b_i + wh + b_h),)


def by_hand(cell, x, state, m=None):
    kind = type(cell._cell if isinstance(cell, cell_view) else cell)
    oracle = {LSTMCell: lstm_by_hand, GRUCell: gru_by_hand, RNNCell: rnn_by_hand}[kind]
    return oracle(cell, x, *state, m=m)


def zoned_out(d, old, new):
    """Krueger et al.: a unit keeps its previous value where d is 1 (d = p in eval mode)."""
    return tuple(d_s * s_old + (1 - d_s) * s_new for d_s, s_old, s_new in zip(d, old, new))


# cell variants by name: the four of the issue, their combinations, and the regularisers on every cell
VARIANT_CELLS = {
    "peephole": lambda **kw: LSTMCell(I, H, peephole=True, **kw),
    "cifg": lambda **kw: LSTMCell(I, H, coupled=True, **kw),
    "layernorm_lstm": lambda **kw: LSTMCell(I, H, layer_norm=True, **kw),
    "layernorm_gru": lambda **kw: GRUCell(I, H, layer_norm=True, **kw),
    "layernorm_gru_reset_before": lambda **kw: GRUCell(I, H, reset_after=False, layer_norm=True, **kw),
    "peephole_cifg": lambda **kw: LSTMCell(I, H, peephole=True, coupled=True, **kw),
    "all_lstm_switches_projected": lambda **kw: LSTMCell(I, H, proj_size=1, peephole=True, coupled=True,
                                                         layer_norm=True, **kw),
    "peephole_layernorm_projected": lambda **kw: LSTMCell(I, H, proj_size=2, peephole=True, layer_norm=True, **kw),
}
NOISY_CELLS = {  # recurrent dropout and zoneout, on plain cells and on variants
    "lstm": lambda **kw: LSTMCell(I, H, **kw),
    "lstm_projected": lambda **kw: LSTMCell(I, H, proj_size=2, **kw),
    "gru": lambda **kw: GRUCell(I, H, **kw),
    "gru_reset_before": lambda **kw: GRUCell(I, H, reset_after=False, **kw),
    "rnn_relu": lambda **kw: RNNCell(I, H, nonlinearity="relu", **kw),
    "layernorm_peephole_cifg": lambda **kw: LSTMCell(I, H, peephole=True, coupled=True, layer_norm=True, **kw),
    "layernorm_gru_reset_before": lambda **kw: GRUCell(I, H, reset_after=False, layer_norm=True, **kw),
}


def randomized(cell):
    """Layer-norm gains and shifts start at 1 and 0: move them, so the test sees every parameter act (a cell's, or
    a layer's: its ln_* parameters are named ln_gain_ih_l0, ...)."""
    with torch.no_grad():
        for name, p in cell.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.5 * torch.randn_like(p))
    return cell


def random_state(cell, batch, dtype):
    return tuple(torch.randn(*batch, size, dtype=dtype) for size in cell.state_sizes)


# ------------------------------------------------------------------------------------------- one step by hand

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("batch", [(B,), ()], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("variant", list(VARIANT_CELLS))
def test_variant_cell_equals_hand_step(variant, bias, batch, dtype):
    torch.manual_seed(0)
    cell = randomized(VARIANT_CELLS[variant](bias=bias)).to(dtype)
    names, params = zip(*cell.named_parameters())
    x, *state = [torch.randn(*batch, I, dtype=dtype), *random_state(cell, batch, dtype)]

    def ours(x, *state):
        return cell(x, state if len(state) > 1 else state[0])

    def theirs(x, *state):
        new = by_hand(cell, x, state)
        return new if len(new) > 1 else new[0]

    assert_same_function(ours, theirs, [x, *state], params, params, names)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("variant", list(NOISY_CELLS))
def test_step_with_masks_equals_hand_step(variant, dtype):
    """Given masks, a step drops h_{t-1} in the recurrent matmuls and zones out every state tensor."""
    torch.manual_seed(0)
    cell = randomized(NOISY_CELLS[variant](recurrent_dropout=0.5, zoneout=0.3)).to(dtype)
    names, params = zip(*cell.named_parameters())
    x, *state = [torch.randn(B, I, dtype=dtype), *random_state(cell, (B,), dtype)]
    m = torch.bernoulli(torch.full((B, cell.state_sizes[0]), 0.5, dtype=dtype)) / 0.5
    d = tuple(torch.bernoulli(torch.full((B, size), 0.3, dtype=dtype)) for size in cell.state_sizes)

    def ours(x, *state):
        return cell.step(cell.input_projection(x), state, Noise(m, d))

    def theirs(x, *state):
        return zoned_out(d, state, by_hand(cell, x, state, m))

    assert_same_function(ours, theirs, [x, *state], params, params, names)


# ------------------------------------------------------------------------------------------------- gradcheck

NOISY_GRADCHECK = ["lstm_projected", "gru_reset_before", "layernorm_peephole_cifg"]  # rnn: in the layer gradcheck
GRADCHECK_CELLS = {**VARIANT_CELLS, **{f"noisy_{name}": (lambda make=NOISY_CELLS[name], **kw: make(
    recurrent_dropout=0.4, zoneout=0.3, **kw)) for name in NOISY_GRADCHECK}}


@pytest.mark.parametrize("name", list(GRADCHECK_CELLS))
def test_variant_cell_gradcheck(name):
    """float64 finite differences for the input, the state and every parameter; the masks (if any) fixed by
    seeding before each call. One sequence of batch 1 keeps it quick (gradcheck perturbs every element)."""
    torch.manual_seed(0)
    cell = randomized(GRADCHECK_CELLS[name]()).double().train()
    names = [n for n, _ in cell.named_parameters()]
    x, *state = [torch.randn(1, I, dtype=torch.float64), *random_state(cell, (1,), torch.float64)]
    count = len(state)

    def step(x, *rest):
        torch.manual_seed(1)
        return functional_call(cell, dict(zip(names, rest[count:])), (x, tuple(rest[:count])))

    leaves = [t.requires_grad_() for t in (x, *state, *(p.detach().clone() for p in cell.parameters()))]
    assert torch.autograd.gradcheck(step, tuple(leaves))


GRADCHECK_LAYERS = {  # tiny: gradcheck perturbs every element in turn
    "peephole_lstm_bi_packed": (lambda: LSTM(1, 2, bidirectional=True, peephole=True), "packed_unsorted"),
    "cifg_lstm_projected": (lambda: LSTM(2, 3, proj_size=1, coupled=True), "padded"),
    "layernorm_lstm_stacked": (lambda: LSTM(1, 2, num_layers=2, layer_norm=True), "padded"),
    "layernorm_gru_reset_before_packed": (lambda: GRU(1, 2, num_layers=2, reset_after=False, layer_norm=True),
                                          "packed_sorted"),
    "layernorm_gru_bi": (lambda: GRU(2, 2, bidirectional=True, layer_norm=True), "padded"),
    "noisy_lstm_bi": (lambda: LSTM(1, 2, bidirectional=True, recurrent_dropout=0.4, zoneout=0.3), "padded"),
    "noisy_layernorm_gru_packed": (lambda: GRU(1, 2, layer_norm=True, recurrent_dropout=0.4, zoneout=0.3),
                                   "packed_unsorted"),
    "noisy_rnn": (lambda: RNN(2, 3, num_layers=2, recurrent_dropout=0.4, zoneout=0.3), "padded"),
}


@pytest.mark.parametrize("name", list(GRADCHECK_LAYERS))
def test_variant_layer_gradcheck(name):
    torch.manual_seed(0)
    make, input = GRADCHECK_LAYERS[name]
    layer = randomized(make().double().train())
    case = Case(input=input, hx=True, dtype=torch.float64, dropout=0.5)  # dropout: seeds every call
    call = layer_call(case, {"packed_sorted": [2, 1], "packed_unsorted": [1, 2]}.get(input))
    inputs = layer_inputs(layer, case, steps=2, batch=2)
    names = [n for n, _ in layer.named_parameters()]

    def function(*leaves):
        params = dict(zip(names, leaves[len(inputs):]))
        outputs = call(lambda *a: functional_call(layer, params, a), *leaves[:len(inputs)])
        return tuple(tensor for _, tensor in flatten(outputs))

    leaves = [t.requires_grad_() for t in inputs] + [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(function, tuple(leaves))


# ------------------------------------------------------------------------------------ layers drive the variants

LAYER_VARIANTS = {
    "peephole_lstm": lambda **kw: LSTM(I, H, peephole=True, **kw),
    "cifg_lstm": lambda **kw: LSTM(I, H, coupled=True, **kw),
    "layernorm_lstm_projected": lambda **kw: LSTM(I, H, layer_norm=True, proj_size=2, **kw),
    "all_lstm_switches": lambda **kw: LSTM(I, H, peephole=True, coupled=True, layer_norm=True, **kw),
    "layernorm_gru": lambda **kw: GRU(I, H, layer_norm=True, **kw),
    "layernorm_gru_reset_before": lambda **kw: GRU(I, H, reset_after=False, layer_norm=True, **kw),
}
LAYER_CASES = [Case(num_layers=2, bidirectional=True, input="packed_unsorted", hx=True, dtype=torch.float64),
               Case(batch_first=True, hx=True, dtype=torch.float64)]  # float32: LN's backward over T steps
# drifts past 1e-5 from the loop's different order of operations (one step in float32 is tested above)


@pytest.mark.parametrize("case", LAYER_CASES, ids=str)
@pytest.mark.parametrize("variant", list(LAYER_VARIANTS))
def test_variant_layer_equals_hand_loop(variant, case):
    """Stacks, directions, packing and the hoisted (layer-normalised) input projection, against the hand step in
    a loop run one sequence at a time (test_layers.stacked_loop)."""
    torch.manual_seed(0)
    layer = randomized(LAYER_VARIANTS[variant](**case.options).to(case.dtype))
    kwargs = {"return_cell_states": True} if isinstance(layer, LSTM) else {}
    lengths = LENGTHS[case.input]
    names, params = zip(*layer.named_parameters())
    oracle = hand_call(layer, lambda k, x, state: by_hand(cell_view(layer, k), x, state), case, lengths)
    assert_same_function(lambda *a: layer_call(case, lengths, **kwargs)(layer, *a), oracle,
                         layer_inputs(layer, case), params, params, names)


NOISY = dict(recurrent_dropout=0.5, zoneout=0.3, bidirectional=True)


@pytest.mark.parametrize("make", [lambda: LSTM(I, H, proj_size=2, layer_norm=True, **NOISY),
                                  lambda: GRU(I, H, reset_after=False, **NOISY), lambda: RNN(I, H, **NOISY)],
                         ids=["lstm", "gru", "rnn"])
def test_noisy_layer_equals_hand_loop_with_the_same_masks(make):
    """Training mode, both directions: the layer applies at step t the masks that draw_noise draws for step t from
    the same seed (the reverse direction too: the masks are indexed by time step, not by loop iteration)."""
    torch.manual_seed(0)
    layer = make().double().train()
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.manual_seed(5)
    output, _ = layer(x)
    torch.manual_seed(5)
    expected = []
    for direction in range(2):
        cell = cell_view(layer, direction)
        noise = cell.draw_noise(T, (B,), x)
        state = cell.zero_state((B,), x)
        outputs = [None] * T
        for t in reversed(range(T)) if direction else range(T):
            d = tuple(mask[t] for mask in noise.zoneout)  # (B, size) each
            state = zoned_out(d, state, by_hand(cell, x[t], state, noise.recurrent))
            outputs[t] = state[0]
        expected.append(torch.stack(outputs))
    assert torch.allclose(output, torch.cat(expected, dim=-1), atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------- switched off: plain

LSTM_OFF = dict(peephole=False, coupled=False, layer_norm=False, recurrent_dropout=0.0, zoneout=0.0)
GRU_OFF = dict(layer_norm=False, recurrent_dropout=0.0, zoneout=0.0)
RNN_OFF = dict(recurrent_dropout=0.0, zoneout=0.0)
OFF = {  # name -> (variant class with every switch off, plain class, torch's twin)
    "lstm_cell": (lambda: LSTMCell(I, H, **LSTM_OFF), lambda: LSTMCell(I, H), lambda: nn.LSTMCell(I, H)),
    "gru_cell": (lambda: GRUCell(I, H, **GRU_OFF), lambda: GRUCell(I, H), lambda: nn.GRUCell(I, H)),
    "rnn_cell": (lambda: RNNCell(I, H, **RNN_OFF), lambda: RNNCell(I, H), lambda: nn.RNNCell(I, H)),
    "lstm": (lambda: LSTM(I, H, 2, proj_size=2, **LSTM_OFF), lambda: LSTM(I, H, 2, proj_size=2),
             lambda: nn.LSTM(I, H, 2, proj_size=2)),
    "gru": (lambda: GRU(I, H, 2, bidirectional=True, **GRU_OFF), lambda: GRU(I, H, 2, bidirectional=True),
            lambda: nn.GRU(I, H, 2, bidirectional=True)),
    "rnn": (lambda: RNN(I, H, 2, **RNN_OFF), lambda: RNN(I, H, 2), lambda: nn.RNN(I, H, 2)),
}


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("name", list(OFF))
def test_switches_off_give_the_plain_module_exactly(name):
    """Every switch off: torch's parameters only (a torch state_dict loads), the plain module's initial weights from
    the same seed, and in training mode the same outputs and gradients, bit for bit."""
    make_off, make_plain, make_torch = OFF[name]
    torch.manual_seed(0)
    off = make_off().train()
    torch.manual_seed(0)
    plain = make_plain().train()
    theirs = make_torch()
    assert [(n, p.shape) for n, p in off.state_dict().items()] == [(n, p.shape) for n, p in theirs.state_dict().items()]
    assert all(torch.equal(a, b) for a, b in zip(off.state_dict().values(), plain.state_dict().values(), strict=True))
    off.load_state_dict(theirs.state_dict())
    plain.load_state_dict(theirs.state_dict())
    x = torch.randn(T, B, I) if "cell" not in name else torch.randn(B, I)
    torch.manual_seed(1)
    got = flatten(off(x))
    torch.manual_seed(1)
    expected = flatten(plain(x))
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert torch.equal(a, b)
    sum(t.sum() for _, t in got).backward()
    sum(t.sum() for _, t in expected).backward()
    for a, b in zip(off.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)


def test_zero_peepholes_give_the_plain_lstm_exactly():
    torch.manual_seed(0)
    peephole, plain = LSTMCell(I, H, peephole=True), LSTMCell(I, H)
    plain.load_state_dict({n: p for n, p in peephole.state_dict().items() if not n.startswith("weight_c")})
    with torch.no_grad():
        for name in ("weight_ci", "weight_cf", "weight_co"):
            getattr(peephole, name).zero_()
    x, state = torch.randn(B, I), random_state(plain, (B,), torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(peephole(x, state), plain(x, state), strict=True))


class ArithmeticCount(TorchDispatchMode):
    """Counts the arithmetic ops run inside it, by name (views, transposes and autograd's detaches left out)."""

    BOOKKEEPING = {"detach", "t", "split", "split_with_sizes", "slice", "view", "unsqueeze", "squeeze", "expand"}

    def __init__(self):
        super().__init__()
        self.ops = Tally()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ not in self.BOOKKEEPING:
            self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


# cell -> the arithmetic of its plain equations, counted from the class docstrings (x_proj holds the input part)
PLAIN_ARITHMETIC = {
    # addmm: x_proj + W_hh h; sigmoid: i, f, o; tanh: g, c'; mul: f * c, i * g, o * tanh(c'); add: the sum in c'
    "lstm": (lambda: LSTMCell(I, H), dict(addmm=1, sigmoid=3, tanh=2, mul=3, add=1)),
    # addmm: r and z's x + W h; mm: W_hn h; add: + b_hn, x_n + r * (...), the two terms of h'; rsub: 1 - z
    "gru": (lambda: GRUCell(I, H), dict(addmm=1, mm=1, sigmoid=1, tanh=1, mul=3, add=3, rsub=1)),
    # addmm: r and z's, and n's x_n + W_hn (r * h); mul: r * h, (1 - z) * n, z * h
    "gru_reset_before": (lambda: GRUCell(I, H, reset_after=False),
                         dict(addmm=2, sigmoid=1, tanh=1, mul=3, add=1, rsub=1)),
    "rnn": (lambda: RNNCell(I, H), dict(addmm=1, tanh=1)),
}


@pytest.mark.parametrize("name", list(PLAIN_ARITHMETIC))
def test_a_plain_step_is_its_equations_arithmetic_and_no_more(name):
    """A switch that is off costs no operation: the plain cells' step runs exactly their equations' arithmetic,
    and the peephole switch adds exactly its three terms (w_c* * c: one mul and one add each)."""
    make, expected = PLAIN_ARITHMETIC[name]
    cell = make()
    x_proj, state = cell.input_projection(torch.randn(B, I)), random_state(cell, (B,), torch.float32)
    with ArithmeticCount() as count:
        cell.step(x_proj, state)
    assert count.ops == Tally(expected)
    if name == "lstm":
        peephole = LSTMCell(I, H, peephole=True)
        with ArithmeticCount() as with_peepholes:
            peephole.step(x_proj, state)
        assert with_peepholes.ops == Tally(expected) + Tally(mul=3, add=3)


@pytest.mark.parametrize("name", list(VARIANT_CELLS))
def test_variant_cells_keep_their_switches_through_deepcopy_and_save(name):
    """What a variant's switches chose at construction travels with the module: a deep copy, and a whole-module
    torch.save and load, step exactly as the original (and as its equations by hand)."""
    torch.manual_seed(0)
    cell = randomized(VARIANT_CELLS[name]())
    buffer = io.BytesIO()
    torch.save(cell, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x, state = torch.randn(B, I), random_state(cell, (B,), torch.float32)
    expected = cell(x, state)
    for other in (copy.deepcopy(cell), loaded):
        for (_, a), (_, b) in zip(flatten(other(x, state)), flatten(expected), strict=True):
            assert torch.equal(a, b)
    for (_, a), (_, b) in zip(flatten(expected), flatten(by_hand(cell, x, state)), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("make", [lambda **kw: LSTMCell(I, H, peephole=True, layer_norm=True, **kw),
                                  lambda **kw: GRUCell(I, H, layer_norm=True, **kw)], ids=["lstm", "gru"])
@pytest.mark.parametrize("init", ["torch", "reference", "orthogonal"])
def test_variants_start_from_the_plain_cells_weights(make, init):
    """The same seed gives a variant the plain cell's weights; layer-norm gains start at 1, shifts at 0."""
    torch.manual_seed(0)
    variant = make(init=init)
    torch.manual_seed(0)
    plain = type(variant)(I, H, init=init)
    for name, p in plain.named_parameters():
        assert torch.equal(getattr(variant, name), p), name
    for name, p in variant.named_parameters():
        if name.startswith("ln_gain"):
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.startswith("ln_bias"):
            assert torch.equal(p, torch.zeros_like(p)), name


def test_cifg_has_three_gates_and_its_forget_bias():
    cell = LSTMCell(I, H, coupled=True, forget_bias=1.0, init="orthogonal")
    assert cell.num_gates == 3 and cell.weight_ih.shape == (3 * H, I) and cell.weight_hh.shape == (3 * H, H)
    assert torch.equal(cell.bias_ih[:H] + cell.bias_hh[:H], torch.ones(H))  # gates f, g, o: f first
    for block in cell.weight_hh.detach().double().split(H):
        assert torch.allclose(block @ block.T, torch.eye(H, dtype=torch.float64), atol=1e-5)
    assert not hasattr(LSTMCell(I, H, coupled=True, peephole=True), "weight_ci")  # no input gate to look at c


# ---------------------------------------------------------------------------- recurrent dropout and zoneout masks

def counting_rnn(p_dropout=0.0, p_zoneout=0.0, width=64):
    """h_t = relu(x_t + m * h_{t-1}) with x_t > 0: a unit whose mask m is 0 shows x_t exactly, so the masks can
    be read off the states. Returns the layer and an input (T=6, B=3, width)."""
    layer = RNN(width, width, nonlinearity="relu", bias=False, recurrent_dropout=p_dropout, zoneout=p_zoneout)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.eye(width))
        layer.weight_hh_l0.copy_(torch.eye(width))
    return layer, torch.rand(6, 3, width) + 0.5


def test_recurrent_dropout_mask_is_fixed_for_the_sequence():
    torch.manual_seed(0)
    layer, x = counting_rnn(p_dropout=0.5)
    output, _ = layer.train()(x)
    dropped = output[1:] == x[1:]  # (T-1, B, H): units whose h_{t-1} was multiplied by 0
    assert torch.equal(dropped, dropped[:1].expand_as(dropped))  # the same units at every step
    assert 0.3 < dropped[0].float().mean() < 0.7
    kept = ~dropped[0]
    assert torch.allclose(output[1][kept], (x[1] + 2 * output[0])[kept])  # the others scaled by 1/(1-p) = 2
    again, _ = layer(x)  # a new sequence, a new mask
    assert not torch.equal(again[1:] == x[1:], dropped)


def test_zoneout_masks_are_drawn_per_step():
    """Krueger et al.: each step, each unit keeps its previous value with probability p (its own mask per step)."""
    torch.manual_seed(0)
    layer, x = counting_rnn(p_zoneout=0.4)
    output, _ = layer.train()(x)
    kept = output[1:] == output[:-1]  # (T-1, B, H): a unit that zoned out repeats h_{t-1} exactly
    assert 0.25 < kept.float().mean() < 0.55
    assert not torch.equal(kept, kept[:1].expand_as(kept))  # different units at different steps
    assert torch.equal(output[0], torch.where(output[0] == 0, 0.0, x[0]))  # at t = 0: 0 (h_0) or x_0


def test_zoneout_in_eval_mode_is_its_expectation():
    torch.manual_seed(0)
    layer, x = counting_rnn(p_zoneout=0.4)
    state, expected = torch.zeros(3, 64), []
    for x_t in x:
        state = 0.4 * state + 0.6 * torch.relu(x_t + state)
        expected.append(state)
    rng = torch.get_rng_state()
    output, _ = layer.eval()(x)
    assert torch.allclose(output, torch.stack(expected), atol=1e-6, rtol=0)
    assert torch.equal(torch.get_rng_state(), rng)  # nothing drawn: eval mode is deterministic


@pytest.mark.parametrize("make", [lambda: LSTM(I, H, 2, layer_norm=True, recurrent_dropout=0.5),
                                  lambda: GRU(I, H, bidirectional=True, recurrent_dropout=0.5),
                                  lambda: RNN(I, H, recurrent_dropout=0.5)], ids=["lstm", "gru", "rnn"])
def test_recurrent_dropout_is_the_identity_in_eval_mode(make):
    torch.manual_seed(0)
    layer = make()
    plain = type(layer)(I, H, layer.num_layers, bidirectional=layer.bidirectional,
                        **({"layer_norm": True} if layer.cells[0].layer_norm else {}))
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I)
    rng = torch.get_rng_state()
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(flatten(layer.eval()(x)), flatten(plain(x)), strict=True))
    assert torch.equal(torch.get_rng_state(), rng)
    assert not torch.equal(layer.train()(x)[0], plain(x)[0])


@pytest.mark.parametrize("options", [dict(recurrent_dropout=0.3), dict(zoneout=0.3),
                                     dict(recurrent_dropout=0.3, zoneout=0.2, peephole=True)],
                         ids=["recurrent_dropout", "zoneout", "both_peephole"])
def test_same_seed_same_masks(options):
    torch.manual_seed(0)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, **options).train()
    x = torch.randn(T, B, I)
    runs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        runs.append(flatten(layer(x)))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(runs[0], runs[1], strict=True))
    assert not torch.equal(runs[0][0][1], runs[2][0][1])


def test_draw_noise_shapes_and_values():
    torch.manual_seed(0)
    cell = LSTMCell(I, 40, proj_size=30, recurrent_dropout=0.25, zoneout=0.5).train()
    like = torch.zeros(1, dtype=torch.float64)
    noise = cell.draw_noise(T, (8,), like)
    assert noise.recurrent.shape == (8, 30)  # one mask for the sequence; h_{t-1} is the projected state
    assert set(noise.recurrent.unique().tolist()) == {0.0, 1 / 0.75}
    assert [d.shape for d in noise.zoneout] == [(T, 8, 30), (T, 8, 40)]  # h and c, a mask per step
    assert all(set(d.unique().tolist()) == {0.0, 1.0} for d in noise.zoneout)
    step = noise.at(3)
    assert step.recurrent is noise.recurrent and all(torch.equal(a, b[3]) for a, b in zip(step.zoneout, noise.zoneout))
    assert cell.eval().draw_noise(T, (8,), like) == Noise(None, (0.5, 0.5))
    assert cell.draw_noise(T, (8,), like).at(2) == Noise(None, (0.5, 0.5))
    assert LSTMCell(I, H, recurrent_dropout=0.25).eval().draw_noise(T, (8,), like) is None
    assert LSTMCell(I, H).train().draw_noise(T, (8,), like) is None


@pytest.mark.parametrize("name", ["recurrent_dropout", "zoneout"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize("make", [LSTMCell, GRUCell, RNNCell, LSTM, GRU, RNN])
def test_bad_probabilities_fail_at_the_call_naming_them(make, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\), got {value}"):
        make(I, H, **{name: value})


# ----------------------------------------------------------------------------------------- counter and the CLI

VARIANT_NAMES = ["peephole-lstm", "cifg-lstm", "layernorm-lstm", "layernorm-gru"]


def test_counter_builds_each_variant_by_name():
    expected = {"lstm": (LSTMCell, {}), "gru": (GRUCell, {}), "rnn": (RNNCell, {}),
                "peephole-lstm": (LSTMCell, {"peephole": True}), "cifg-lstm": (LSTMCell, {"coupled": True}),
                "layernorm-lstm": (LSTMCell, {"layer_norm": True}), "layernorm-gru": (GRUCell, {"layer_norm": True})}
    assert set(CELLS) - set(expected) == {"mingru", "minlstm", "unnormalized-minlstm", "slstm"}  # test_modern.py's
    for name, (cls, switches) in expected.items():
        cell = Counter(ModelConfig(cell=name, recurrent_dropout=0.1, zoneout=0.2)).rnn.cells[0]
        assert type(cell) is cls and (cell.recurrent_dropout, cell.zoneout) == (0.1, 0.2)
        for switch in ("peephole", "coupled", "layer_norm"):
            assert getattr(cell, switch, False) == switches.get(switch, False), (name, switch)
    assert Counter(ModelConfig(cell="layernorm-gru")).rnn.cells[0].reset_after is False  # the reference's GRU


def test_model_config_round_trips_and_reads_older_files():
    config = ModelConfig(cell="cifg-lstm", recurrent_dropout=0.25, zoneout=0.1)
    assert ModelConfig(**config.to_dict()) == config
    older = {k: v for k, v in ModelConfig().to_dict().items() if k not in ("recurrent_dropout", "zoneout")}
    assert ModelConfig(**older) == ModelConfig()
    with pytest.raises(ValueError, match=r"zoneout must be in \[0, 1\)"):
        ModelConfig(zoneout=1.0)


def test_compare_all_variants(tmp_path):
    cells = ["lstm", "gru", *VARIANT_NAMES]
    out = tmp_path / "variants"
    tiny = ["--train-samples", "64", "--test-samples", "16", "--length", "6", "--hidden-size", "4"]
    result = rnncount("compare", "--cells", ",".join(cells), "--epochs", "1", *tiny, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"| epoch | {' | '.join(cells)} |" in result.stdout
    assert "| time per epoch (s) |" in result.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert list(report["cells"]) == cells and all((out / c / "model.pt").exists() for c in cells)


def test_train_with_recurrent_dropout_and_zoneout_then_predict_and_resume(tmp_path):
    out = tmp_path / "noisy"
    result = rnncount("train", "--cell", "layernorm-lstm", "--recurrent-dropout", "0.25", "--zoneout", "0.1",
                      "--epochs", "1", *TINY, "--out", out)
    assert result.returncode == 0, result.stderr
    payload = torch.load(out / "model.pt", weights_only=True)
    assert (payload["model_config"]["cell"], payload["model_config"]["recurrent_dropout"],
            payload["model_config"]["zoneout"]) == ("layernorm-lstm", 0.25, 0.1)
    assert "rnn.ln_gain_hh_l0" in payload["model"]
    first = rnncount("predict", "--model", out / "model.pt", "0110100", "111")
    second = rnncount("predict", "--model", out / "model.pt", "0110100", "111")
    assert first.returncode == 0 and first.stdout == second.stdout  # eval mode: no random masks
    assert len(first.stdout.splitlines()) == 2
    resumed = rnncount("train", "--resume", out, "--epochs", "2")  # the masks' RNG state is in the model file
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    assert rnncount("train", "--cell", "layernorm-lstm", "--recurrent-dropout", "0.25", "--zoneout", "0.1",
                    "--epochs", "2", *TINY, "--out", straight).returncode == 0

    def epochs(folder):
        return [{k: v for k, v in e.items() if k != "seconds"}
                for e in json.loads((folder / "metrics.json").read_text())["epochs"]]
    assert epochs(out) == epochs(straight)


@pytest.mark.parametrize("flag", ["--recurrent-dropout", "--zoneout"])
@pytest.mark.parametrize("value, fragment", [("1", "must be in [0, 1)"), ("-0.5", "must be in [0, 1)"),
                                             ("x", "expected a number")])
def test_bad_probability_flags(flag, value, fragment):
    assert_one_line_error(rnncount("train", flag, value), flag, fragment)

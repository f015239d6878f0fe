"""minGRU, minLSTM and sLSTM (rnncount.modern) and the parallel scan (rnncount.parallel): every cell equals its
equations written out by hand; the chunked scan equals the step loop (values and gradients, float64 to 1e-10),
forwards, backwards, with lengths, packed, stacked and bidirectional; gradcheck; the stabilised sLSTM equals the
unstabilised one; the counter and every command of the CLI take the new cells by name."""

from __future__ import annotations

import contextlib
import json
import logging

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from conftest import assert_close, assert_same_function, flatten
from rnncount import SLSTM, MinGRU, MinGRUCell, MinLSTM, MinLSTMCell, SLSTMCell
from rnncount.model import CELLS, Counter, ModelConfig
from rnncount.modern import g
from rnncount import parallel
from rnncount.layers import scan as step_loop
from rnncount.parallel import chunk_size, chunked_scan, chunked_scan_and_end, log_space_scan, sequential
from conftest import TINY, assert_one_line_error, rnncount

I, H, B, T = 2, 4, 3, 7
f64 = torch.float64
NEW_CELLS = ["mingru", "minlstm", "unnormalized-minlstm", "slstm"]


# ------------------------------------------------------------------------------------------- the scans themselves

def scan_inputs(steps: int, channels=(3, 4), positive=False):
    torch.manual_seed(steps)
    a = torch.rand(steps, *channels, dtype=f64) * 0.98 + 0.01  # in (0, 1), as 1 - z and f' are
    b = torch.randn(steps, *channels, dtype=f64)
    h0 = torch.randn(*channels, dtype=f64)
    return (a, b.abs() + 0.1, h0.abs()) if positive else (a, b, h0)


def loop_backwards(a, b, h0):
    return sequential(a.flip(0), b.flip(0), h0).flip(0)


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 16, 17, 20, 37, 1000])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_chunked_scan_equals_the_loop(steps, reverse):
    """Values and the gradients of a, b and h0, float64, to 1e-10: padded (17, 37) and unpadded lengths."""
    assert_same_function(lambda a, b, h0: chunked_scan(a, b, h0, reverse),
                         loop_backwards if reverse else sequential, scan_inputs(steps), [], [], [])


@pytest.mark.parametrize("steps", [1, 5, 23])
def test_chunked_scan_gradcheck(steps):
    a, b, h0 = (t.requires_grad_() for t in scan_inputs(steps, (2, 3)))
    for reverse in (False, True):
        assert torch.autograd.gradcheck(lambda a, b, h0: chunked_scan(a, b, h0, reverse), (a, b, h0))


@pytest.mark.parametrize("steps", [1, 5, 23])
def test_chunked_scan_and_end_gradcheck(steps):
    """Both outputs, h and the end state h_end, differentiated together (gradcheck sums over each)."""
    a, b, h0 = (t.requires_grad_() for t in scan_inputs(steps, (2, 3)))
    for reverse in (False, True):
        assert torch.autograd.gradcheck(lambda a, b, h0: chunked_scan_and_end(a, b, h0, reverse), (a, b, h0))


@pytest.mark.parametrize("steps", [1, 2, 5, 23])
def test_chunked_scan_second_derivatives_and_forward_mode(steps):
    """create_graph: the backward through autograd (gradgradcheck); forward mode: the tangents' scan, checked by
    gradcheck's forward-AD pass and against torch.func.jvp of the loop."""
    a, b, h0 = (t.requires_grad_() for t in scan_inputs(steps, (2, 3)))
    tangents = tuple(torch.randn_like(t) for t in (a, b, h0))
    for reverse in (False, True):
        def scan(a, b, h0):
            return chunked_scan_and_end(a, b, h0, reverse)
        assert torch.autograd.gradgradcheck(scan, (a, b, h0))
        assert torch.autograd.gradcheck(scan, (a, b, h0), check_forward_ad=True, check_backward_ad=False)
        _, mine = torch.func.jvp(lambda *inputs: scan(*inputs)[0], (a.detach(), b.detach(), h0.detach()), tangents)
        _, loop = torch.func.jvp(loop_backwards if reverse else sequential, (a.detach(), b.detach(), h0.detach()),
                                 tangents)
        assert_close(f"jvp reverse={reverse}", mine, loop)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("read", ["end", "every step and end"])
def test_the_end_output_is_the_last_step_bit_for_bit(reverse, read):
    """h_end is the walk's last h: the same value, and the same gradients to the last bit (float32), whether
    a loss reads it there or as h[-1] (h[0] reversed) of the history, alone or beside every step's h."""
    a, b, h0 = (t.float() for t in scan_inputs(300))
    weights = torch.randn(300, 3, 4)  # a loss over every step, when read

    def gradients(through_end: bool):
        inputs = [t.clone().requires_grad_() for t in (a, b, h0)]
        h, h_end = chunked_scan_and_end(*inputs, reverse)
        end = h_end if through_end else h[0 if reverse else -1]
        loss = (end ** 2).sum() + ((h * weights).sum() if read != "end" else 0)
        return [end.detach(), *torch.autograd.grad(loss, inputs)]

    for got, expected in zip(gradients(True), gradients(False)):
        assert torch.equal(got, expected)


def test_log_space_scan_equals_the_loop():
    a, b, h0 = scan_inputs(300, positive=True)
    assert_close("log-space scan", log_space_scan(a, b, h0), sequential(a, b, h0))


def test_chunked_scan_does_not_overflow_where_a_is_tiny():
    """Tiny a_t (a saturated gate) make A_t underflow: a scan that divided by A_s would give inf or NaN."""
    a, b, h0 = scan_inputs(400)
    a[::3] = 1e-30
    h = chunked_scan(a.float(), b.float(), h0.float())
    assert torch.isfinite(h).all()
    assert_close("float32 scan", h.double().float(), sequential(a.float(), b.float(), h0.float()))


def test_chunked_scan_leaves_its_inputs_alone():
    a, b, h0 = scan_inputs(1)
    copies = [t.clone() for t in (a, b, h0)]
    chunked_scan(a, b, h0)
    assert all(torch.equal(t, c) for t, c in zip((a, b, h0), copies))


@pytest.mark.parametrize("steps", [1, 2, 7, 20, 1000, 1009])
def test_chunk_size_is_about_the_square_root(steps):
    size = chunk_size(steps)
    assert 1 <= size <= steps and size * size >= steps // 2
    assert -(-steps // size) <= 2 * size + 1


# ------------------------------------------------------------------------------------------- the cells by hand

def gate(cell, x, k):
    """Gate k's pre-activation from the parameter slices: W_k x + b_k."""
    rows = slice(k * cell.hidden_size, (k + 1) * cell.hidden_size)
    return x @ cell.weight_ih[rows].T + cell.bias_ih[rows]


def test_g_is_the_papers():
    x = torch.randn(10_000)
    assert torch.equal(g(x), torch.where(x >= 0, x + 0.5, torch.sigmoid(x)))  # bit for bit
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 4.0], dtype=f64)
    assert torch.equal(g(x), torch.tensor([torch.sigmoid(torch.tensor(-3.0, dtype=f64)).item(),
                                           torch.sigmoid(torch.tensor(-0.5, dtype=f64)).item(), 0.5, 1.0, 4.5],
                                          dtype=f64))


def test_mingru_step_is_its_equations():
    torch.manual_seed(0)
    cell = MinGRUCell(I, H).double()
    x, h = torch.randn(B, I, dtype=f64), torch.randn(B, H, dtype=f64)
    z = torch.sigmoid(gate(cell, x, 0))
    h_tilde = g(gate(cell, x, 1))
    assert_close("h_t", cell(x, h), (1 - z) * h + z * h_tilde)
    assert_close("zero state", cell(x), z * h_tilde)


@pytest.mark.parametrize("normalize", [True, False])
def test_minlstm_step_is_its_equations(normalize):
    torch.manual_seed(0)
    cell = MinLSTMCell(I, H, normalize=normalize).double()
    x, h = torch.randn(B, I, dtype=f64), torch.randn(B, H, dtype=f64)
    f, i = torch.sigmoid(gate(cell, x, 0)), torch.sigmoid(gate(cell, x, 1))
    h_tilde = g(gate(cell, x, 2))
    if normalize:
        f, i = f / (f + i), i / (f + i)
    assert_close("h_t", cell(x, h), f * h + i * h_tilde)


def test_minlstm_by_hand_with_numbers():
    """One unit, W = 0: f = sigmoid(b_f), i = sigmoid(b_i), h̃ = g(b_h); with b_f = b_i the scaled gates are 1/2."""
    cell = MinLSTMCell(1, 1).double()
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.bias_ih.copy_(torch.tensor([2.0, 2.0, 1.5]))
    assert cell(torch.zeros(1, 1, dtype=f64), torch.full((1, 1), 4.0, dtype=f64)).item() == pytest.approx(
        0.5 * 4.0 + 0.5 * 2.0)  # g(1.5) = 2
    raw = MinLSTMCell(1, 1, normalize=False).double()
    raw.load_state_dict(cell.state_dict())
    s = torch.sigmoid(torch.tensor(2.0, dtype=f64)).item()
    assert raw(torch.zeros(1, 1, dtype=f64), torch.full((1, 1), 4.0, dtype=f64)).item() == pytest.approx(
        s * 4.0 + s * 2.0)


@pytest.mark.parametrize("parallel", [True, False])
def test_minlstm_stays_finite_where_both_gates_round_to_zero(parallel):
    """Below a pre-activation of about -104, sigmoid rounds to 0 in float32, and f / (f + i) would be 0/0. The
    scaled gates are their limit instead (f' = i' = 1/2 for equal pre-activations; sigmoid(k_f - k_i) in general),
    in the step loop and the parallel scan alike, and the gradients are finite."""
    layer = MinLSTM(1, 1)
    layer.parallel = parallel
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.tensor([[1.0], [1.0], [0.0]]))  # k_f = k_i = x_t, h̃ = g(0) = 1/2
        layer.bias_ih_l0.zero_()
    x = torch.tensor([[[1.0]], [[-120.0]], [[1.0]]], requires_grad=True)
    output, _ = layer(x)
    assert output.flatten().tolist() == [0.25, 0.375, 0.4375]  # h = h/2 + 1/4 at every step: exact in float32
    output.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.weight_ih_l0.grad).all()
    k_f, k_i = torch.tensor([-200.0, -110.0]), torch.tensor([-190.0, -130.0])
    a, _ = MinLSTMCell(1, 1).coefficients(k_f, k_i, torch.zeros(2))
    torch.testing.assert_close(a, torch.sigmoid(k_f - k_i), rtol=1e-5, atol=0)  # float32: to its rounding


# rtol: e^k's relative error is |k| eps when k is rounded once (|k| <= 300 here). atol, float32: one gate e^70 times
# the other is a shifted f below float32's smallest normal number, which the vectorised sigmoid rounds to 0, so
# f' < 1e-30 may come out 0 (the log form's limit is 1e-38). grad_atol: the gradients are exact to eps times their
# scale (|w| h̃, up to ~100 here), not relatively: sigmoid's derivative f (1 - f) rounds where f is near 1, as every
# sigmoid gate's does (torch.nn.LSTM's), and the quotient's two terms cancel where one gate is far above the other
# float16 and bfloat16 are computed in float32 inside (float16's range cannot hold the division's gradient), then
# rounded: to their own eps relatively, float16's values below its smallest normal number (6e-5) absolutely, and
# the gradients to float32's noise from inputs rounded to 16 bits (a few times eps times their scale)
@pytest.mark.parametrize("dtype, rtol, atol, grad_atol", [(torch.float64, 1e-13, 1e-300, 1e-13),
                                                          (torch.float32, 2e-5, 1e-30, 1e-5),
                                                          (torch.float16, 2e-3, 1e-7, 1e-4),
                                                          (torch.bfloat16, 1e-2, 1e-30, 1e-4)])
def test_minlstm_ratios_equal_the_log_form_everywhere(dtype, rtol, atol, grad_atol):
    """f' = f / (f + i) with both pre-activations shifted where both gates are tiny, against the paper's log form
    sigmoid(log f - log i) in float64 (logsigmoid is exact far below 0) from the same inputs: values and gradients,
    over pre-activations from -300 to 40, so that every case occurs (both above the floor, one below, both below,
    both below -104)."""
    generator = torch.Generator().manual_seed(0)
    k_f, k_i, k_h = (torch.empty(4000, dtype=torch.float64).uniform_(-300, 40, generator=generator)
                     for _ in range(3))
    k_f[:1000] = k_i[:1000] + torch.empty(1000, dtype=torch.float64).uniform_(-5, 5, generator=generator)  # close

    def log_form(k_f, k_i, k_h):
        log_ratio = torch.nn.functional.logsigmoid(k_f) - torch.nn.functional.logsigmoid(k_i)
        return torch.sigmoid(log_ratio), torch.sigmoid(-log_ratio) * g(k_h)

    cell = MinLSTMCell(1, 1, dtype=dtype)
    ours = [k.to(dtype).clone().requires_grad_() for k in (k_f, k_i, k_h)]
    exact = [k.to(dtype).double().clone().requires_grad_() for k in (k_f, k_i, k_h)]  # the same, rounded to dtype
    weights = torch.randn(2, 4000, dtype=torch.float64, generator=generator)
    a, b = cell.coefficients(*ours)
    a_exact, b_exact = log_form(*exact)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    torch.testing.assert_close(a.double(), a_exact, rtol=rtol, atol=atol)
    torch.testing.assert_close(b.double(), b_exact, rtol=rtol, atol=atol)
    ((a.double() * weights[0]).sum() + (b.double() * weights[1]).sum()).backward()
    ((a_exact * weights[0]).sum() + (b_exact * weights[1]).sum()).backward()
    for mine, theirs in zip(ours, exact):
        torch.testing.assert_close(mine.grad.double(), theirs.grad, rtol=rtol, atol=grad_atol)


def test_minlstm_float16_gradients_stay_finite():
    """float16's largest number is 65504: h̃ / (f + i) in the division's gradient overflowed it where both gates sit
    below the floor (f + i ~ 1e-4) and h̃ ~ 60 (an audit's case). Computed in float32 inside, the gradients are
    finite and those of float32 inputs to float16's precision."""
    inputs = [torch.tensor([v], dtype=torch.float16, requires_grad=True) for v in (-16.0, -14.0, 63.0)]
    _, b = MinLSTMCell(1, 1).coefficients(*inputs)
    b.sum().backward()
    wide = [k.detach().float().requires_grad_() for k in inputs]
    _, b32 = MinLSTMCell(1, 1).coefficients(*wide)
    b32.sum().backward()
    for narrow, full in zip(inputs, wide):
        assert torch.isfinite(narrow.grad).all()
        torch.testing.assert_close(narrow.grad.float(), full.grad, rtol=2e-3, atol=1e-4)
    # a layer under autocast: inputs x300 put gates below the floor; with this seed nothing else overflows float16
    # (with most, the weights' gradients do, in the paper's log form too); before, its gradients were not finite
    torch.manual_seed(0)
    layer = MinLSTM(1, 20, batch_first=True)
    x = torch.randn(4, 50, 1) * 300
    with torch.autocast("cpu", dtype=torch.float16):
        output, _ = layer(x)
    output.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def block_diagonal(cell):
    """The sLSTM's recurrent matrix written out in full, (4H, H): zeros outside each head's block."""
    size = cell.hidden_size // cell.num_heads
    full = torch.zeros(4 * cell.hidden_size, cell.hidden_size, dtype=cell.weight_hh.dtype)
    for gate_ in range(4):
        for head in range(cell.num_heads):
            rows = slice(gate_ * cell.hidden_size + head * size, gate_ * cell.hidden_size + (head + 1) * size)
            full[rows, head * size:(head + 1) * size] = cell.weight_hh[rows]
    return full


def slstm_unstabilised(cell, xs):
    """The sLSTM of Beck et al. without the stabiliser: i = exp(ĩ), f = sigmoid(f̃). Returns every h, c, n."""
    R, b = block_diagonal(cell), cell.bias_ih + cell.bias_hh
    h = c = n = torch.zeros(xs.size(1), cell.hidden_size, dtype=xs.dtype)
    out = []
    for x in xs:
        i_tilde, f_tilde, z_tilde, o_tilde = (x @ cell.weight_ih.T + h @ R.T + b).chunk(4, dim=-1)
        i, f, z, o = torch.exp(i_tilde), torch.sigmoid(f_tilde), torch.tanh(z_tilde), torch.sigmoid(o_tilde)
        c = f * c + i * z
        n = f * n + i
        h = o * c / n
        out.append((h, c, n))
    return out


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_slstm_stabilised_equals_unstabilised(num_heads):
    """h_t equal; the stored c_t, n_t are the unstabilised ones times exp(-m_t)."""
    torch.manual_seed(0)
    cell = SLSTMCell(I, 8, num_heads=num_heads).double()
    xs = torch.randn(T, B, I, dtype=f64)
    state = cell.zero_state((B,), xs)
    for t, (h, c, n) in enumerate(slstm_unstabilised(cell, xs)):
        state = cell(xs[t], state)
        assert_close(f"h_{t}", state[0], h)
        assert_close(f"c_{t}", state[1] * torch.exp(state[3]), c)
        assert_close(f"n_{t}", state[2] * torch.exp(state[3]), n)


def test_slstm_first_step_and_stabiliser_by_hand():
    """From the zero state m_1 = ĩ_1, so i' = 1, n_1 = 1, c_1 = z_1 and h_1 = o_1 z_1;
    then m_2 = max(log f_2 + m_1, ĩ_2)."""
    torch.manual_seed(1)
    cell = SLSTMCell(I, H).double()
    x1, x2 = torch.randn(B, I, dtype=f64), torch.randn(B, I, dtype=f64)
    h, c, n, m = cell(x1)
    i_tilde, _, z_tilde, o_tilde = cell.input_projection(x1).chunk(4, dim=-1)
    assert_close("m_1", m, i_tilde)
    assert_close("n_1", n, torch.ones_like(n))
    assert_close("c_1", c, torch.tanh(z_tilde))
    assert_close("h_1", h, torch.sigmoid(o_tilde) * torch.tanh(z_tilde))
    i2, f2, _, _ = (cell.input_projection(x2) + h @ block_diagonal(cell).T).chunk(4, dim=-1)
    assert_close("m_2", cell(x2, (h, c, n, m))[3], torch.maximum(F.logsigmoid(f2) + m, i2))


def test_slstm_does_not_overflow_where_the_unstabilised_form_does():
    cell = SLSTMCell(1, 2).double()
    with torch.no_grad():
        cell.bias_ih[:2] = 800.0  # ĩ = 800: exp(800) is inf even in float64
    xs = torch.randn(5, 1, 1, dtype=f64)
    assert not torch.isfinite(slstm_unstabilised(cell, xs)[-1][0]).all()
    state = cell.zero_state((1,), xs)
    for x in xs:
        state = cell(x, state)
    assert all(torch.isfinite(s).all() for s in state)


def test_slstm_first_step_stays_finite_where_the_input_gate_is_far_below_zero():
    """On the first step m_1 = ĩ_1, so f'_1 = f_1 e^(m_0 - ĩ_1): past e^88 in float32 for ĩ_1 below about -88, and
    f'_1 c_0 = inf * 0 was NaN. h_1 = o_1 z_1 whatever ĩ_1 is (n_1 = i'_1 = 1): against float64 and by hand."""
    cell = SLSTMCell(1, 2)
    with torch.no_grad():
        cell.weight_ih.zero_(), cell.weight_hh.zero_(), cell.bias_hh.zero_()
        cell.bias_ih.copy_(torch.tensor([-100.0, -1e4, 0.0, 0.0, 1.0, -2.0, 0.0, 3.0]))  # ĩ, f̃, z̃, õ for 2 units
    x = torch.zeros(1, 1, requires_grad=True)
    h, c, n, m = cell(x)
    assert_close("h_1", h.detach(), torch.sigmoid(torch.tensor([[0.0, 3.0]])) * torch.tanh(torch.tensor([[1.0, -2.0]])))
    (c.sum() + n.sum() + h.sum()).backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in cell.parameters())
    assert_close("float64", h.detach(), cell.double()(x.detach().double())[0].float())
    torch.manual_seed(0)
    layer = SLSTM(1, 8, num_heads=2)
    assert torch.isfinite(layer(torch.randn(20, 4, 1) * 1000)[0]).all()


def test_slstm_cell_checks_every_part_of_its_state():
    """n and m are checked as h and c are: a wrong shape, dimension count or dtype of any part fails."""
    cell, x = SLSTMCell(I, H), torch.randn(B, I)
    right = cell.zero_state((B,), x)
    for part in range(4):
        for wrong, error in ((torch.zeros(2, B, H), ValueError), (torch.zeros(B, H + 1), RuntimeError),
                             (torch.zeros(B, H, dtype=f64), RuntimeError)):
            state = list(right)
            state[part] = wrong
            with pytest.raises(error, match="hcnm"[part]):
                cell(x, tuple(state))


def test_slstm_heads_mix_only_within_a_head():
    torch.manual_seed(0)
    cell = SLSTMCell(I, 8, num_heads=2).double()
    x, state = torch.randn(1, I, dtype=f64), [torch.rand(1, 8, dtype=f64) + 0.5 for _ in range(4)]
    moved = [s.clone() for s in state]
    moved[0][:, 4:] += 1.0  # the second head's h_{t-1}
    before, after = cell(x, tuple(state)), cell(x, tuple(moved))
    assert torch.equal(before[0][:, :4], after[0][:, :4]) and not torch.equal(before[0][:, 4:], after[0][:, 4:])
    assert cell.weight_hh.shape == (32, 4)


@pytest.mark.parametrize("make", [lambda: MinGRUCell(I, H), lambda: MinLSTMCell(I, H),
                                  lambda: MinLSTMCell(I, H, normalize=False), lambda: SLSTMCell(I, H, num_heads=2)],
                         ids=["mingru", "minlstm", "unnormalized-minlstm", "slstm"])
def test_cell_gradcheck(make):
    torch.manual_seed(0)
    cell = make().double()
    x = torch.randn(B, I, dtype=f64, requires_grad=True)
    state = tuple(torch.rand(B, s, dtype=f64, requires_grad=True) + 0.1 for s in cell.state_sizes)
    assert torch.autograd.gradcheck(lambda x, *s: cell(x, s), (x, *state))


def test_cells_take_weights_from_outside():
    """weights=: the parameters a layer hands its cell (issue 12); the cell's own when None."""
    torch.manual_seed(0)
    for cell in (MinGRUCell(I, H), MinLSTMCell(I, H), SLSTMCell(I, H, num_heads=2)):
        other = type(cell)(I, H, **({"num_heads": 2} if isinstance(cell, SLSTMCell) else {}))
        x = torch.randn(B, I)
        state = cell.zero_state((B,), x)
        ours = cell.step(cell.input_projection(x, weights=other), state, weights=other.own_weights())
        theirs = other.step(other.input_projection(x), state)
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_cell_arguments_fail_at_the_call():
    with pytest.raises(ValueError, match="hidden_size=6 must be a multiple of num_heads=4"):
        SLSTMCell(1, 6, num_heads=4)
    with pytest.raises(ValueError, match="init must be one of"):
        MinGRUCell(1, 4, init="nope")
    with pytest.raises(ValueError, match="not implemented for the MinGRU"):
        MinGRU(1, 4, zoneout=0.1)


@pytest.mark.parametrize("init, bound", [("torch", 0.5), ("reference", 1 / 2 ** 0.5)])
def test_min_cells_init(init, bound):
    cell = MinGRUCell(2, 4, init=init)
    assert all(p.abs().max() <= bound for p in cell.parameters())
    assert SLSTMCell(1, 4, forget_bias=20.0).bias_ih[4:8].eq(20.0).all()
    assert MinLSTMCell(1, 4, forget_bias=20.0).bias_ih[:4].eq(20.0).all()


# ------------------------------------------------------------------------------------------- the layers

LAYERS = {
    "mingru": lambda **kw: MinGRU(I, H, **kw),
    "minlstm": lambda **kw: MinLSTM(I, H, **kw),
    "unnormalized-minlstm": lambda **kw: MinLSTM(I, H, normalize=False, **kw),
}
OPTIONS = {
    "plain": {},
    "batch_first": {"batch_first": True},
    "two_layers_bidirectional": {"num_layers": 2, "bidirectional": True},
}


def run_layer(layer, parallel: bool, x, h0=None, lengths=None):
    layer.parallel = parallel
    try:
        return layer(x, h0, lengths=lengths)
    finally:
        layer.parallel = True


@pytest.mark.parametrize("read", ["all", "h_n"])
@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_parallel_layer_equals_the_step_loop(kind, options, with_lengths, read):
    """The layer's parallel path against its own cells' step loop (layer.parallel = False): outputs, h_n and
    the gradients of input, h_0 and every parameter, float64 to 1e-10. read="h_n": only the final states are
    differentiated, as a counter's loss does."""
    torch.manual_seed(0)
    layer = LAYERS[kind](**options).double()
    steps = 45  # chunks of 5 (a divisor: no padding) ...
    batch_first = options.get("batch_first", False)
    x = torch.randn(*((B, steps) if batch_first else (steps, B)), I, dtype=f64)
    h0 = torch.randn(layer.num_layers * layer.num_directions, B, H, dtype=f64)
    lengths = torch.tensor([steps, 3, 31]) if with_lengths else None
    params = list(layer.parameters())
    names = [n for n, _ in layer.named_parameters()]
    pick = (lambda output: output) if read == "all" else (lambda output: output[1])
    assert_same_function(lambda x, h0: pick(run_layer(layer, True, x, h0, lengths)),
                         lambda x, h0: pick(run_layer(layer, False, x, h0, lengths)), [x, h0], params, params, names)
    x = x[:, :44] if batch_first else x[:44]  # ... and 44 steps: 7 chunks of 7, the last one padded
    lengths = None if lengths is None else lengths.clamp(max=44)
    assert_same_function(lambda x, h0: pick(run_layer(layer, True, x, h0, lengths)),
                         lambda x, h0: pick(run_layer(layer, False, x, h0, lengths)), [x, h0], params, params, names)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_parallel_layer_packed_and_unbatched(kind):
    torch.manual_seed(0)
    layer = LAYERS[kind](bidirectional=True).double()
    x = torch.randn(9, B, I, dtype=f64)
    packed = pack_padded_sequence(x, torch.tensor([4, 9, 2]), enforce_sorted=False)
    for inputs in ([packed], [x[:, 0]]):
        parallel, loop = flatten(run_layer(layer, True, *inputs)), flatten(run_layer(layer, False, *inputs))
        for (name, a), (_, b) in zip(parallel, loop, strict=True):
            assert_close(name, a, b)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_lengths_equal_each_sequence_alone(kind):
    """Padding changes nothing: each sequence's output and h_n as if it were run on its own, both directions."""
    torch.manual_seed(0)
    layer = LAYERS[kind](bidirectional=True).double()
    x, lengths = torch.randn(12, B, I, dtype=f64), [12, 5, 1]
    output, h_n = layer(x, lengths=torch.tensor(lengths))
    for b, n in enumerate(lengths):
        alone, h_alone = layer(x[:n, b:b + 1])
        assert_close(f"output {b}", output[:n, b:b + 1], alone)
        assert torch.equal(output[n:, b], torch.zeros_like(output[n:, b]))
        assert_close(f"h_n {b}", h_n[:, b:b + 1], h_alone)


EXPORTED = {"mingru": LAYERS["mingru"], "minlstm": LAYERS["minlstm"], "slstm": lambda **kw: SLSTM(I, H, **kw)}


@pytest.mark.parametrize("kind", EXPORTED)
def test_torch_export_equals_eager(kind):
    """torch.export.export of a 2-layer bidirectional modern layer, with lengths, runs and equals eager, for other
    lengths too (the parallel layers trace their step loop: export refuses the chunked scan's in-place writes)."""
    torch.manual_seed(0)
    layer = EXPORTED[kind](num_layers=2, bidirectional=True).eval()
    x = torch.randn(T, B, I)
    exported = torch.export.export(layer, (x,), {"lengths": torch.tensor([T, 3, 1])})
    for lengths in ([T, 3, 1], [2, T, 5]):
        lengths = torch.tensor(lengths)
        torch.testing.assert_close(dict(flatten(exported.module()(x, lengths=lengths))),
                                   dict(flatten(layer(x, lengths=lengths))), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", EXPORTED)
def test_onnx_export_runs_in_onnxruntime(kind):
    """torch.onnx.export(dynamo=True) of a bidirectional modern layer runs in onnxruntime and equals eager."""
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    layer = EXPORTED[kind](bidirectional=True).eval()
    x = torch.randn(T, B, I)
    program = torch.onnx.export(layer, (x,), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close([torch.from_numpy(out) for out in outputs], [t for _, t in flatten(layer(x))],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_compiled_gates_equal_the_step_loop(kind):
    """parallel.scan with the gates through torch.compile against the cell's eager step loop (rnncount.layers.scan),
    with lengths, both directions: h and the gradients of x, h_0 and every parameter, float64 to 1e-10."""
    torch.manual_seed(0)
    layer = LAYERS[kind]().double()
    cell, weights = layer.cells[0], layer.cell_weights(0)
    mask = (torch.arange(45).view(45, 1, 1) < torch.tensor([45, 3, 31]).view(1, B, 1))  # (T, B, 1)
    params = list(layer.parameters())
    for reverse in (False, True):
        assert_same_function(
            lambda x, h0: parallel.scan(cell, cell.gate_inputs(x, weights), (h0,), mask, reverse, compiled=True),
            lambda x, h0: step_loop(cell, cell.input_projection(x, weights), (h0,), mask, reverse, weights=weights),
            [torch.randn(45, B, I, dtype=f64), torch.randn(B, H, dtype=f64)], params, params,
            [n for n, _ in layer.named_parameters()])


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_gate_inputs_are_the_input_projection_one_gate_at_a_time(kind):
    torch.manual_seed(0)
    for bias in (True, False):
        layer = LAYERS[kind](bias=bias)
        cell, weights = layer.cells[0], layer.cell_weights(0)  # the layer holds its cells' weights
        x = torch.randn(7, B, I)
        gate_inputs = cell.gate_inputs(x, weights)
        assert len(gate_inputs) == cell.num_gates
        assert all(k.is_contiguous() and k.shape == (7, B, H) for k in gate_inputs)
        assert_close("gate inputs", torch.cat(gate_inputs, dim=-1), cell.input_projection(x, weights))


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_compiled_gates_save_their_sigmoids_for_the_backward(kind):
    """Left to itself the compiler would save only the G gate inputs and recompute every sigmoid in the backward;
    parallel._gates keeps each sigmoid's (and division's) output instead: more (T, B, H) tensors are saved."""
    cell = LAYERS[kind]().cells[0]
    gate_inputs = [torch.randn(5, B, H, requires_grad=True) for _ in range(cell.num_gates)]

    def gradients(a, b):
        return torch.cat(torch.autograd.grad((a * b).sum(), gate_inputs))

    eager, counts = gradients(*cell.coefficients(*gate_inputs)), {}
    for name, gates in (("recomputing", torch.compile(lambda c, *k: c.coefficients(*k), fullgraph=True)),
                        ("saving", torch.compile(parallel._gates, fullgraph=True))):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
            a, b = gates(cell, *gate_inputs)
        counts[name] = len(saved)
        assert_close(f"{name} gradients", gradients(a, b), eager)
    assert counts["recomputing"] <= cell.num_gates < counts["saving"]


@pytest.mark.parametrize("quiet", [False, True])
def test_compiled_gates_print_no_notice(monkeypatch, quiet):
    """torch's one-time notice about in-place ops under a checkpoint's context_fn is not shown to a command's user;
    quiet=False (the filter off) shows that this compile does reach the notice, so the test can fail."""
    monkeypatch.setattr(parallel._compiled_gates, "compiled", None)
    monkeypatch.setattr(parallel._compiled_gates, "failed", False)
    if not quiet:
        monkeypatch.setattr(parallel, "_quiet_compile", contextlib.nullcontext)
    torch._logging._internal.warning_once.cache_clear()  # the notice is printed once per process: let it come again
    torch._dynamo.reset()  # and the gates compile again, not from an earlier test's graph of the same shapes
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    torch_logger = logging.getLogger("torch._higher_order_ops.wrap")  # where torch logs it
    torch_logger.addHandler(handler)
    try:
        cell = MinLSTMCell(I, H)
        with torch._inductor.config.patch(force_disable_caches=True):  # a cached compile would not reach the notice
            a, b = parallel.coefficients(cell, cell.gate_inputs(torch.randn(6, B, I)), compiled=True)
        (a + b).sum().backward()
    finally:
        torch_logger.removeHandler(handler)
    notices = [r for r in records if "context_fn" in r.getMessage()]
    assert len(notices) == (0 if quiet else 1)


def test_compiled_layer_runs_its_gates_compiled(monkeypatch):
    """compile_steps() (the CLI's --compile) hands the parallel layers' gates to torch.compile."""
    calls = []
    monkeypatch.setattr(parallel, "coefficients", lambda cell, k, compiled=False: calls.append(compiled) or
                        cell.coefficients(*k))
    layer = LAYERS["mingru"]()
    layer(torch.randn(T, B, I))
    layer.compile_steps()(torch.randn(T, B, I))
    assert calls == [False, True]


def test_compiled_gates_fall_back_to_eager_with_one_line(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise RuntimeError("no compiler here\nmore detail")
    monkeypatch.setattr(parallel._compiled_gates, "compiled", None)
    monkeypatch.setattr(parallel._compiled_gates, "failed", False)
    monkeypatch.setattr(torch, "compile", refuse)
    cell = MinGRUCell(I, H)
    gate_inputs = cell.gate_inputs(torch.randn(5, B, I))
    for _ in range(2):  # the second call does not try again
        a, b = parallel.coefficients(cell, gate_inputs, compiled=True)
        assert all(torch.equal(mine, eager) for mine, eager in zip((a, b), cell.coefficients(*gate_inputs)))
    assert capsys.readouterr().err == ("rnncount: torch.compile is unavailable here (RuntimeError: no compiler here); "
                                       "the gates run eagerly\n")


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_parallel_layer_second_derivatives_and_jvp_equal_the_step_loop(kind):
    """A gradient penalty (create_graph, then backward) and torch.func.jvp through the parallel path equal the
    step loop's, float64, both directions, with lengths."""
    results = {}
    for parallel_path in (True, False):
        torch.manual_seed(0)
        layer = LAYERS[kind](bidirectional=True).double()
        x = torch.randn(T, B, I, dtype=f64, requires_grad=True)
        layer.parallel = parallel_path
        (grad,) = torch.autograd.grad(layer(x, lengths=torch.tensor([T, 4, 1]))[0].pow(2).sum(), x, create_graph=True)
        penalty = torch.autograd.grad(grad.pow(2).sum(), [x, *layer.parameters()])
        _, tangent = torch.func.jvp(lambda t: layer(t)[0], (x.detach(),), (torch.ones_like(x),))
        results[parallel_path] = (grad, *penalty, tangent)
    for mine, loop in zip(results[True], results[False]):
        assert_close("second derivatives and jvp", mine, loop)


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_parallel_layer_takes_an_empty_batch(kind):
    """torch.nn's layers take a batch of 0 sequences; so does the step loop, and so does the parallel path."""
    layer = LAYERS[kind](num_layers=2, bidirectional=True)
    x = torch.randn(T, 0, I, requires_grad=True)
    output, h_n = layer(x)
    assert output.shape == (T, 0, 2 * H) and h_n.shape == (4, 0, H)
    output.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_parallel_layer_under_autocast_keeps_the_step_loops_dtype(kind, dtype):
    """Under autocast the gates come out 16-bit and h_0 is float32; the step loop's a_t * h + b_t is float32, and
    so is the parallel scan now (it had rounded h_0 to 16 bits and returned 16-bit outputs)."""
    torch.manual_seed(0)
    layer, x, h0 = LAYERS[kind](), torch.randn(T, B, I), torch.randn(1, B, H)
    with torch.autocast("cpu", dtype=dtype):
        mine = run_layer(layer, True, x, h0)
        loop = run_layer(layer, False, x, h0)
    for (name, a), (_, b) in zip(flatten(mine), flatten(loop)):
        assert a.dtype == b.dtype == torch.float32
        assert_close(name, a, b)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_parallel_layer_gradcheck(kind):
    torch.manual_seed(0)
    layer = LAYERS[kind](bidirectional=True).double()
    x = torch.randn(11, 2, I, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x, lengths=torch.tensor([11, 6]))[0], (x,))


def test_slstm_layer_equals_its_cell_stepped_by_hand():
    torch.manual_seed(0)
    layer = SLSTM(I, 8, num_heads=2, bidirectional=True).double()
    x = torch.randn(T, B, I, dtype=f64)
    output, (h_n, c_n, n_n, m_n), cells = layer(x, return_cell_states=True)
    for direction, steps in ((0, range(T)), (1, reversed(range(T)))):
        cell, weights = layer.cells[direction], layer.cell_weights(direction)  # the layer holds its cells' weights
        state = cell.zero_state((B,), x)
        for t in steps:
            state = cell.step(cell.input_projection(x[t], weights), state, weights=weights)
            assert_close(f"h {direction} {t}", output[t, :, direction * 8:(direction + 1) * 8], state[0])
            assert_close(f"c {direction} {t}", cells[t, :, direction * 8:(direction + 1) * 8], state[1])
        for name, final, mine in zip("hcnm", (h_n, c_n, n_n, m_n), state):
            assert_close(f"{name}_n {direction}", final[direction], mine)
    again, _ = layer(x, (h_n, c_n, n_n, m_n))  # hx: the four states
    assert again.shape == output.shape
    with pytest.raises(ValueError, match="hx must be h_0 and c_0 and n_0 and m_0"):
        layer(x, (h_n, c_n))


def test_state_dict_has_torch_style_names():
    assert set(MinGRU(1, 3, bidirectional=True).state_dict()) == {
        "weight_ih_l0", "bias_ih_l0", "weight_ih_l0_reverse", "bias_ih_l0_reverse"}
    assert {k: tuple(v.shape) for k, v in SLSTM(1, 4, num_heads=2).state_dict().items()} == {
        "weight_ih_l0": (16, 1), "weight_hh_l0": (16, 2), "bias_ih_l0": (16,), "bias_hh_l0": (16,)}


# ------------------------------------------------------------------------------------------- counter and CLI

def test_counter_builds_the_new_cells_by_name():
    assert set(NEW_CELLS) <= set(CELLS)
    expected = {"mingru": MinGRUCell, "minlstm": MinLSTMCell, "unnormalized-minlstm": MinLSTMCell, "slstm": SLSTMCell}
    for name, cls in expected.items():
        cell = Counter(ModelConfig(cell=name)).rnn.cells[0]
        assert type(cell) is cls
    assert Counter(ModelConfig(cell="unnormalized-minlstm")).rnn.cells[0].normalize is False
    assert Counter(ModelConfig(cell="slstm", num_heads=4)).rnn.cells[0].num_heads == 4
    counter = Counter(ModelConfig(cell="slstm", readout="c", forget_bias=20.0))
    x = torch.ones(2, 5, 1)
    assert counter(x).shape == (2,) and counter(x, every_step=True).shape == (2, 5)


@pytest.mark.parametrize("settings, fragment", [
    (dict(cell="mingru", readout="c"), "readout='c' applies to the LSTM"),
    (dict(cell="mingru", forget_bias=1.0), "forget_bias applies to the LSTM (and its variants), the sLSTM and"),
    (dict(cell="minlstm", zoneout=0.1), "not implemented for the minlstm"),
    (dict(cell="lstm", num_heads=2), "num_heads applies to the sLSTM only"),
    (dict(cell="slstm", num_heads=3), "hidden_size=20 must be a multiple of num_heads=3"),
    (dict(cell="lstm", reset_after=True), "reset_after applies to the GRU (and its variants) only, not the lstm"),
    (dict(cell="mingru", reset_after=True), "reset_after applies to the GRU"),
    (dict(cell="lstm", nonlinearity="relu"), "nonlinearity='relu' applies to the RNN only, not the lstm"),
    (dict(cell="gru", nonlinearity="relu"), "nonlinearity='relu' applies to the RNN only"),
])
def test_model_config_refuses_what_a_cell_lacks(settings, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig(**settings)


def test_model_config_takes_each_cells_own_switches_and_the_defaults():
    """reset_after for every GRU, nonlinearity for the RNN; the defaults (off, tanh) for any cell."""
    assert ModelConfig(cell="layernorm-gru", reset_after=True).reset_after is True
    assert ModelConfig(cell="rnn", nonlinearity="relu").nonlinearity == "relu"
    for cell in CELLS:
        assert ModelConfig(cell=cell, reset_after=False, nonlinearity="tanh").cell == cell


def test_older_files_with_a_switch_their_cell_lacks_still_load(tmp_path):
    """Written before such switches were refused (they changed nothing): the file loads, predicts and resumes."""
    from rnncount.checkpoint import load_model
    from rnncount.train import load_trainer
    out = tmp_path / "run"
    assert rnncount("train", "--cell", "lstm", *TINY, "--epochs", "1", "--out", out).returncode == 0
    payload = torch.load(out / "model.pt", weights_only=True)
    payload["model_config"].update(reset_after=True, nonlinearity="relu")
    torch.save(payload, out / "model.pt")
    assert load_model(out / "model.pt")[0].config == ModelConfig(hidden_size=6)
    assert load_trainer(out / "model.pt").model_config == ModelConfig(hidden_size=6)
    assert rnncount("predict", "--model", out / "model.pt", "0110").returncode == 0


TINY_SLSTM = [*TINY[:-1], "4"]  # hidden size 4: two heads of 2


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """The new cells trained side by side by compare, with scores at other lengths."""
    out = tmp_path_factory.mktemp("modern") / "cmp"
    result = rnncount("compare", "--cells", ",".join(NEW_CELLS), "--epochs", "2", *TINY_SLSTM,
                      "--test-lengths", "12,30", "--out", out, process=True)
    assert result.returncode == 0, result.stderr
    return out, result


def test_compare_the_new_cells(compared):
    out, result = compared
    assert f"| epoch | {' | '.join(NEW_CELLS)} |" in result.stdout and "| accuracy at length 30 |" in result.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert list(report["cells"]) == NEW_CELLS
    assert all(len(r["epochs"]) == 2 and len(r["lengths"]) == 2 for r in report["cells"].values())


@pytest.mark.parametrize("cell", NEW_CELLS)
def test_predict_evaluate_generalize_inspect(compared, cell, tmp_path):
    out, _ = compared
    model = out / cell / "model.pt"
    predicted = rnncount("predict", "--model", model, "0110100", "1")
    assert predicted.returncode == 0 and len(predicted.stdout.splitlines()) == 2, predicted.stderr
    evaluated = rnncount("evaluate", "--model", model, "--length", "30", "--samples", "20")
    assert evaluated.returncode == 0 and "Accuracy: " in evaluated.stdout, evaluated.stderr
    scored = rnncount("generalize", "--model", model, "--lengths", "8,50", "--samples", "20", "--out", tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert [r["length"] for r in json.loads((tmp_path / "generalization.json").read_text())["lengths"]] == [8, 50]
    inspected = rnncount("inspect", "--model", model, "0110100111", "--out", tmp_path / "i.png")
    assert inspected.returncode == 0 and "Best counting unit: " in inspected.stdout, inspected.stderr
    assert ("c[" in inspected.stdout or "h[" in inspected.stdout) and (tmp_path / "i.png").exists()


@pytest.mark.parametrize("cell", ["mingru", "slstm"])
def test_train_recipe_generalize_same_seed_same_numbers_and_resume(cell, tmp_path):
    """The recipe's settings reach the model file; the same seed gives the same numbers; a resumed run (the
    reference recipe: the recipe's learning rate schedule depends on --epochs) continues to the same numbers."""
    tiny = [*TINY_SLSTM, "--num-heads", "2"] if cell == "slstm" else TINY
    recipe = ["train", "--cell", cell, "--recipe", "generalize", *tiny, "--epochs", "1"]
    assert rnncount(*recipe, "--out", tmp_path / "one").returncode == 0
    assert rnncount(*recipe, "--out", tmp_path / "two").returncode == 0
    payload = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    assert payload["model_config"]["cell"] == cell and payload["train_config"]["recipe"] == "generalize"
    if cell == "slstm":
        assert payload["model_config"]["readout"] == "c" and payload["model_config"]["num_heads"] == 2

    def epochs(folder):
        return [{k: v for k, v in e.items() if k != "seconds"}
                for e in json.loads((folder / "metrics.json").read_text())["epochs"]]
    assert epochs(tmp_path / "one") == epochs(tmp_path / "two")
    plain = ["train", "--cell", cell, *tiny]
    assert rnncount(*plain, "--epochs", "2", "--out", tmp_path / "straight").returncode == 0
    assert rnncount(*plain, "--epochs", "1", "--out", tmp_path / "part").returncode == 0
    assert rnncount("train", "--resume", tmp_path / "part", "--epochs", "2").returncode == 0
    assert epochs(tmp_path / "part") == epochs(tmp_path / "straight")


def test_sweep_the_new_cells(tmp_path):
    out = tmp_path / "sweep"
    result = rnncount("sweep", "--cells", "mingru,minlstm", "--seeds", "0,1", "--hidden-sizes", "4",
                      "--lengths", "5", "--train-samples", "40", "--test-samples", "10", "--epochs", "1",
                      "--jobs", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "4 runs: 0 finished earlier" in result.stdout and (out / "summary.csv").exists()


@pytest.mark.parametrize("args, fragments", [
    (["train", "--cell", "mingru", "--recurrent-decay", "1"], ["--recurrent-decay", "no recurrent weights"]),
    (["train", "--cell", "minlstm", "--zoneout", "0.1"], ["not implemented for the minlstm"]),
    (["train", "--cell", "mingru", "--readout", "c"], ["--readout c applies to"]),
    (["train", "--cell", "slstm", "--num-heads", "3"], ["error: --hidden-size 20 must be a multiple of --num-heads 3"]),
    (["train", "--cell", "gru", "--num-heads", "2"], ["error: --num-heads applies to the sLSTM only"]),
    (["train", "--num-heads", "0"], ["--num-heads", "must be >= 1"]),
    (["compare", "--cells", "mingru,slstn"], ["unknown cell slstn"]),
])
def test_bad_arguments_for_the_new_cells(args, fragments):
    assert_one_line_error(rnncount(*args), *fragments)

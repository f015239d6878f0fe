"""The parallel path: every time step at once, for the cells whose gates see only x_t (minGRU, minLSTM).

Their recurrence is linear in the state and elementwise,

    h_t = a_t ⊙ h_{t-1} + b_t        a_t, b_t from x_t alone (cell.coefficients, rnncount.modern)

so a_t and b_t are computed for every t in one go, and h_1 .. h_T is a scan of them:

    h_t = A_t ⊙ h_0 + Σ_{s<=t} (A_t / A_s) ⊙ b_s,     A_t = a_1 ⊙ ... ⊙ a_t

Three ways to run it, equal up to rounding (tests/test_modern.py):

    sequential(a, b, h_0)       the loop, one step after another: the twin the others are proven against
    log_space_scan(a, b, h_0)   Heinsen 2023, the form Feng et al. 2024 train with: in logs, with
                                a*_t = cumsum(log a) and log h_t = a*_t + logcumsumexp(log h_0, log b_s - a*_s).
                                Needs b > 0 (minGRU's g) and is slow on a CPU: logcumsumexp is a serial
                                loop with an exp and a log per element (benchmarks/run.py, target 7).
    chunked_scan(a, b, h_0)     what the layers use. The T steps are cut into chunks of C ~ sqrt(T) steps:
                                  1. inside every chunk, from a zero start, the C steps run one after another,
                                     all chunks (and all B*H channels) at once: h°_t = a_t h°_{t-1} + b_t and
                                     the running product P_t = a_t P_{t-1};
                                  2. across chunks, a short loop carries each chunk's start:
                                     s_k = P_end s_{k-1} + h°_end;
                                  3. h_t = h°_t + P_t s_k, one fused multiply-add over everything.
                                About 2*sqrt(T) small vectorised ops in all, in linear space and with nothing
                                but products of a's in [0, 1] and sums, so it cannot overflow (no division by
                                A_s, no exp). Its backward is the same scan run backwards in time (below),
                                not an autograd graph of every op.

`scan(cell, gate_inputs, state, mask, reverse)` has rnncount.layers.scan's contract, from each gate's
pre-activation as its own contiguous (T, B, H) tensor (cell.gate_inputs) rather than slices of x_proj:
the layers call it in place of the step loop for MinGRU and MinLSTM. With compiled=True the gates
(cell.coefficients, the very code the step loop runs) go through torch.compile: one fused loop forward and
one backward instead of a dozen full-size elementwise kernels each way, the larger part of a long
sequence's time on a CPU; the backward reads the sigmoids and quotients the forward saved rather than
computing them again (`_save_sigmoids_and_quotients`). The layers pass it their `compile_steps` setting
(`--compile`). The scan itself stays eager (compiled, its unrolled loops ran slower than eager here). A cold
compile takes seconds (benchmarks/run.py, target 7).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math

import torch
from torch import Tensor

from .cells import State
from .fast import CompiledOrEager


def sequential(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t, one step at a time. a, b (T, *), h0 (*) -> every h_t, (T, *)."""
    h, history = h0, []
    for a_t, b_t in zip(a.unbind(0), b.unbind(0)):
        h = a_t * h + b_t
        history.append(h)
    return torch.stack(history)


def log_space_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """Heinsen's log-space scan: log h_t = a*_t + log(h_0 + Σ_{s<=t} exp(log b_s - a*_s)), a*_t = Σ_{r<=t} log a_r.

    a > 0, b > 0 and h0 >= 0 (T, *), (T, *), (*) -> (T, *). The textbook form, for comparison (tests, benchmarks).
    """
    a_star = torch.cumsum(torch.log(a), dim=0)  # (T, *)
    log_terms = torch.cat([torch.log(h0).unsqueeze(0), torch.log(b) - a_star])  # (T + 1, *): log h_0, log b_s - a*_s
    return torch.exp(a_star + torch.logcumsumexp(log_terms, dim=0)[1:])


def chunk_size(steps: int) -> int:
    """C ~ sqrt(T), so that the steps inside a chunk and the loop across chunks both take about sqrt(T) ops;
    a divisor of T near sqrt(T) where there is one (no padding), else ceil(sqrt(T))."""
    root = math.isqrt(steps)
    divisor = next((c for c in range(root, 2 * root + 1) if c and steps % c == 0), 0)
    return divisor or root + (root * root < steps)


def _chunked(a: Tensor, b: Tensor, h0: Tensor, reverse: bool = False, scratch: bool = False) -> Tensor:
    """The three stages of chunked_scan, without autograd: a, b (T, N), h0 (N,) -> h (T, N).

    reverse: h_t = a_t ⊙ h_{t+1} + b_t, from h_{T+1} = h0 down to h_1 (the walk goes backwards in time).
    scratch: a and b (contiguous) are the caller's to lose: P and h are computed in their place, saving two copies.
    """
    steps, channels = a.shape
    size = chunk_size(steps)
    chunks = -(-steps // size)
    pad = chunks * size - steps
    if pad:  # padded steps keep the state (a = 1, b = 0); they lie after step T and are cut off again
        a = torch.cat([a, a.new_ones(pad, channels)])
        b = torch.cat([b, b.new_zeros(pad, channels)])
    a = a.reshape(chunks, size, channels)  # (K, C, N): chunk, position in chunk, channel
    b = b.reshape(chunks, size, channels)
    h = b if scratch or pad else b.clone()  # (K, C, N): h°, then h
    product = a if scratch or pad else a.clone()  # (K, C, N): P; a itself is read only where P still equals it
    inside = range(size - 2, -1, -1) if reverse else range(1, size)
    step = 1 if reverse else -1  # where the previous step of the walk lies
    h_at, p_at = h.unbind(1), product.unbind(1)  # C views (K, N) each: one call, not four indexings a step
    for c in inside:  # 1. inside every chunk at once, from a zero start
        h_at[c].addcmul_(p_at[c], h_at[c + step])  # h°_c = a_c h°_prev + b_c  (P_c is a_c until the next line)
        p_at[c].mul_(p_at[c + step])  # P_c = a_c P_prev
    end = 0 if reverse else size - 1  # each chunk's last step in the walk
    order = range(chunks - 1, -1, -1) if reverse else range(chunks)
    starts = torch.empty_like(h[:, 0])  # (K, N): the state before each chunk
    starts[order[0]] = h0
    h_end, p_end, s_at = h[:, end].unbind(0), product[:, end].unbind(0), starts.unbind(0)  # K views (N,) each
    for k, following in zip(order, order[1:]):  # 2. across chunks: s_next = P_end s_k + h°_end
        torch.addcmul(h_end[k], p_end[k], s_at[k], out=s_at[following])
    h.addcmul_(product, starts.unsqueeze(1))  # 3. h_t = h°_t + P_t s_k
    return h.view(chunks * size, channels)[:steps]


class _ChunkedScan(torch.autograd.Function):
    """(h, h_end) = chunked scan of (a, b) from h0, and its last state apart; backward: the same scan, run backwards.

    With g_t = dL/dh_t, the gradient reaching h_t from every later step is δ_t = g_t + a_{t+1} δ_{t+1}
    (δ_T = g_T): a linear recurrence like the forward one, run from T down to 1. Then
    dL/db_t = δ_t,  dL/da_t = δ_t ⊙ h_{t-1},  dL/dh_0 = a_1 ⊙ δ_1. (For a reversed scan, mirror t.)

    h_end (the walk's last h, a copy) is its own output so that a model reading only the final state (a counter)
    sends back a gradient of N numbers, not a (T, N) tensor of zeros: the backward then makes the one (T, N)
    buffer it scans in, where it would have copied autograd's zeros into it.

    A second derivative (create_graph=True) runs the same equations as autograd ops, the scan as this Function again
    (`_backward_through_autograd`). Forward mode (torch.func.jvp) scans the tangents the same way:
    dh_t = a_t ⊙ dh_{t-1} + (da_t ⊙ h_{t-1} + db_t), from dh_0.
    """

    @staticmethod
    def forward(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> tuple[Tensor, Tensor]:
        h = _chunked(a, b, h0, reverse)
        return h, h[0 if reverse else -1].clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        a, _, h0, reverse = inputs
        ctx.save_for_backward(a, h0, output[0])
        ctx.save_for_forward(a, h0, output[0])
        ctx.reverse = reverse
        ctx.set_materialize_grads(False)  # an output nobody read sends None

    @staticmethod
    def vmap(info, in_dims, a: Tensor, b: Tensor, h0: Tensor, reverse: bool):
        """Under torch.func.vmap (stacked models, rnncount.stacked): the models are more channels, one scan for all.

        a, b (K, T, N) -> (T, K*N), h0 (K, N) -> (K*N,); the scan is elementwise over channels, so each model's
        numbers are the ones it gets alone. Returns h (T, K, N), batched along dim 1, and h_end (K, N) along dim 0.
        """
        def members_first(x: Tensor, dim: int | None) -> Tensor:
            return x.movedim(dim, 0) if dim is not None else x.expand(info.batch_size, *x.shape)

        a, b = (members_first(x, dim).transpose(0, 1) for x, dim in ((a, in_dims[0]), (b, in_dims[1])))  # (T, K, N)
        steps = a.shape[0]
        h, h_end = _ChunkedScan.apply(a.reshape(steps, -1), b.reshape(steps, -1),
                                      members_first(h0, in_dims[2]).reshape(-1), reverse)
        return (h.view(steps, info.batch_size, -1), h_end.view(info.batch_size, -1)), (1, 0)

    @staticmethod
    def backward(ctx, grad_h: Tensor | None, grad_end: Tensor | None):
        a, h0, h = ctx.saved_tensors
        reverse = ctx.reverse
        if torch.is_grad_enabled():  # create_graph: this backward will itself be differentiated
            return _backward_through_autograd(a, h0, h, grad_h, grad_end, reverse)
        later, earlier = (slice(None, -1), slice(1, None)) if reverse else (slice(1, None), slice(None, -1))
        first = -1 if reverse else 0  # the walk's first step, the one that read h0
        a_next = torch.empty_like(a)  # the coefficient of the step after t in the walk; none after the last
        a_next[earlier] = a[later]
        a_next[-first - 1] = 0
        # g_t, in a buffer of its own that the scan overwrites with δ_t
        g = torch.zeros_like(a) if grad_h is None else grad_h.clone(memory_format=torch.contiguous_format)
        if grad_end is not None:
            g[-first - 1] += grad_end
        delta = _chunked(a_next, g, torch.zeros_like(h0), not reverse, scratch=True)  # (T, N)
        grad_a = torch.empty_like(a)
        torch.mul(delta[later], h[earlier], out=grad_a[later])  # δ_t h_{t-1}
        torch.mul(delta[first], h0, out=grad_a[first])
        return grad_a, delta, a[first] * delta[first], None

    @staticmethod
    def jvp(ctx, da: Tensor | None, db: Tensor | None, dh0: Tensor | None, _reverse: None):
        a, h0, h = ctx.saved_tensors
        drive = torch.zeros_like(a) if db is None else db  # da_t h_{t-1} + db_t, (T, N)
        if da is not None:
            drive = drive + da * _previous(h, h0, ctx.reverse)
        return _ChunkedScan.apply(a, drive, torch.zeros_like(h0) if dh0 is None else dh0, ctx.reverse)


def _previous(h: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """The state before each step of the walk, h_{t-1} (h_{t+1} if reverse): (T, N), h0 where the walk starts."""
    return torch.cat([h[1:], h0.unsqueeze(0)]) if reverse else torch.cat([h0.unsqueeze(0), h[:-1]])


def _backward_through_autograd(a: Tensor, h0: Tensor, h: Tensor, grad_h: Tensor | None, grad_end: Tensor | None,
                               reverse: bool) -> tuple[Tensor, Tensor, Tensor, None]:
    """_ChunkedScan.backward's equations as autograd ops, for a second derivative: δ_t = g_t + a_{t+1} δ_{t+1} is
    _ChunkedScan again (walking the other way), then dL/da_t = δ_t h_{t-1}, dL/db_t = δ_t, dL/dh_0 = a_1 δ_1."""
    none = torch.zeros_like(h0).unsqueeze(0)  # (1, N): no step after the walk's last
    a_next = torch.cat([none, a[:-1]]) if reverse else torch.cat([a[1:], none])  # (T, N)
    g = torch.zeros_like(a) if grad_h is None else grad_h  # (T, N)
    if grad_end is not None:  # the end state's gradient joins the walk's last step
        g = torch.cat([g[:1] + grad_end, g[1:]]) if reverse else torch.cat([g[:-1], g[-1:] + grad_end])
    delta, _ = _ChunkedScan.apply(a_next, g, torch.zeros_like(h0), not reverse)
    first = -1 if reverse else 0
    return delta * _previous(h, h0, reverse), delta, a[first] * delta[first], None


def chunked_scan(a: Tensor, b: Tensor, h0: Tensor, reverse: bool = False) -> Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t for every t, chunk-parallel (module docstring): a, b (T, *), h0 (*) -> (T, *).

    reverse: h_t = a_t ⊙ h_{t+1} + b_t, from h0 after the last step back to the first.
    """
    return chunked_scan_and_end(a, b, h0, reverse)[0]


def chunked_scan_and_end(a: Tensor, b: Tensor, h0: Tensor, reverse: bool = False) -> tuple[Tensor, Tensor]:
    """chunked_scan, and the walk's last state h_T (h_1 if reverse) as a tensor of its own: (T, *), (*)."""
    shape = a.shape
    h, h_end = _ChunkedScan.apply(a.reshape(shape[0], -1), b.reshape(shape[0], -1), h0.reshape(-1), reverse)
    return h.view(shape), h_end.view(shape[1:])


_SAVED_FOR_BACKWARD = (torch.ops.aten.sigmoid.default, torch.ops.aten.div.Tensor)


def _save_sigmoids_and_quotients(ctx, op, *args, **kwargs):
    """What the compiled gates keep for their backward pass: every sigmoid's and every division's output.

    Left to itself, torch.compile saves only the gates' inputs and recomputes the whole forward inside the
    backward kernel (its partitioner counts elementwise work as free). On a CPU an exp is not: over (T, B, H)
    it costs 4x an add, and the forward has three. Saving their results (one (T, B, H) tensor each) made a
    minLSTM training epoch at T=1000 13% shorter and a minGRU's 5% (docs/modern-cells.md), with the same numbers.
    """
    from torch.utils.checkpoint import CheckpointPolicy
    return CheckpointPolicy.MUST_SAVE if op in _SAVED_FOR_BACKWARD else CheckpointPolicy.PREFER_RECOMPUTE


def _gates(cell, *gate_inputs: Tensor) -> tuple[Tensor, Tensor]:
    """cell.coefficients(*gate_inputs), with torch's selective activation checkpointing choosing what is saved.

    Imported here, where only a compile reaches: an older torch without it fails that compile, and the gates run
    eagerly (`coefficients`), while the package imports as before."""
    from torch.utils.checkpoint import checkpoint, create_selective_checkpoint_contexts
    return checkpoint(cell.coefficients, *gate_inputs, use_reentrant=False,
                      context_fn=functools.partial(create_selective_checkpoint_contexts, _save_sigmoids_and_quotients))


def _not_the_in_place_notice(record: logging.LogRecord) -> bool:
    """False for torch's notice, logged once when a checkpoint given a context_fn compiles, that such a region must
    hold no in-place ops: the gates hold none, and a command's user cannot act on it."""
    return "context_fn is passed to torch.utils.checkpoint" not in record.getMessage()


@contextlib.contextmanager
def _quiet_compile():
    """_not_the_in_place_notice on the logger torch writes the notice to, for one call of the compiled gates."""
    torch_logger = logging.getLogger("torch._higher_order_ops.wrap")
    torch_logger.addFilter(_not_the_in_place_notice)
    try:
        yield
    finally:
        torch_logger.removeFilter(_not_the_in_place_notice)


def _eager_gates(cell, *gate_inputs: Tensor) -> tuple[Tensor, Tensor]:
    """cell.coefficients(*gate_inputs) as it is: what runs where _gates cannot be compiled."""
    return cell.coefficients(*gate_inputs)


# the gates through torch.compile; where compiling fails, one line on stderr and the eager gates from then on
_compiled_gates = CompiledOrEager(_gates, "the gates run eagerly", eager=_eager_gates, fullgraph=True)


def coefficients(cell, gate_inputs: tuple[Tensor, ...], compiled: bool = False) -> tuple[Tensor, Tensor]:
    """cell.coefficients(*gate_inputs), through torch.compile when compiled and compiling works here.

    Under torch.func.vmap (stacked models) the eager code runs: a compiled call there would trace the batching too.
    The first failure to compile prints one line to stderr, and the gates run eagerly from then on.
    """
    if not compiled or torch._C._functorch.is_functorch_wrapped_tensor(gate_inputs[0]):
        return cell.coefficients(*gate_inputs)
    with _quiet_compile():
        return _compiled_gates(cell, *gate_inputs)


def scan(cell, gate_inputs: tuple[Tensor, ...], state: State, mask: Tensor | None = None, reverse: bool = False,
         compiled: bool = False) -> tuple[State, State]:
    """rnncount.layers.scan's contract, every step at once, from the gates' pre-activations instead of x_proj:
    gate_inputs (cell.gate_inputs: G tensors (T, B, H)), state (h_0,) -> ((T, B, H),), (h_T,).

    Past a sequence's end (mask False) the state is carried, as the step loop does: a_t = 1, b_t = 0 there.
    Reversed: the scan walks from the last step to the first; the history stays in time order.
    compiled: the gates through torch.compile (`coefficients`); the same numbers up to float rounding.
    """
    (h0,) = state  # (B, H)
    a, b = coefficients(cell, gate_inputs, compiled)  # (T, B, H) each
    # the step loop's a_t * h + b_t promotes to the wider of the two: under autocast a and b are 16-bit, h_0 float32
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), h0.dtype)
    a, b, h0 = a.to(dtype), b.to(dtype), h0.to(dtype)
    if mask is not None:
        a, b = torch.where(mask, a, 1.0), torch.where(mask, b, 0.0)
    h, h_end = chunked_scan_and_end(a, b, h0, reverse)  # (T, B, H), (B, H)
    return (h,), (h_end,)  # the carried state: each sequence's own last step

"""Recurrent cells, one time step each, written out gate by gate.

Every cell has the parameters of its torch.nn counterpart (same names, shapes and gate order,
so a torch state_dict loads) and splits its step in two, so that a sequence layer can hoist
the input half out of its time loop (one matmul for all steps):

    x_proj = cell.input_projection(x)      # W_ih x + b_ih (+ the recurrent biases that can join it)
    state  = cell.step(x_proj, state)      # the recurrent matmul and the gate equations

A state is a tuple of tensors: (h, c) for the LSTM, (h,) for the GRU and the RNN; h is always
first. `forward(x, state=None)` is the one-step call with torch.nn.*Cell's contract.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import init as _init
from ._checks import check_dtype, check_input, check_positive_int, check_state

State = tuple[Tensor, ...]


class RecurrentCell(nn.Module):
    """What every cell shares: parameters, initialisation, checks and the one-step forward.

    A subclass sets `num_gates` and writes `step`; it may override `input_projection`.
    Parameters: weight_ih (G*H, I), weight_hh (G*H, H_rec), bias_ih (G*H), bias_hh (G*H),
    where G = num_gates and H_rec is the width of the state fed back (H, or proj_size).
    """

    num_gates: int
    forget_gate: int | None = None  # index of the forget gate, for init's forget_bias
    reference_init = "linear"  # the counting reference's initialisation (see rnncount.init)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, recurrent_size: int | None = None,
                 init: str = "torch", forget_bias: float | None = None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        recurrent_size = hidden_size if recurrent_size is None else recurrent_size
        gates = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates, input_size))  # (G*H, I)
        self.weight_hh = nn.Parameter(torch.empty(gates, recurrent_size))  # (G*H, H_rec)
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gates))
            self.bias_hh = nn.Parameter(torch.empty(gates))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.init, self.forget_bias = init, forget_bias
        if init not in _init.SCHEMES:
            raise ValueError(f"init must be one of {', '.join(_init.SCHEMES)}, got {init!r}")

    def reset_parameters(self) -> None:
        _init.initialize_(self, self.init, self.forget_bias)

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Width of each state tensor: (H,) here, (H_out, H) for the LSTM."""
        return (self.hidden_size,)

    def input_projection(self, x: Tensor) -> Tensor:
        """W_ih x + b_ih + b_hh: (..., I) -> (..., G*H). Both biases add outside every gate product."""
        return F.linear(x, self.weight_ih, None if self.bias_ih is None else self.bias_ih + self.bias_hh)

    def step(self, x_proj: Tensor, state: State) -> State:
        raise NotImplementedError

    def zero_state(self, batch_shape: tuple[int, ...], like: Tensor) -> State:
        return tuple(like.new_zeros(*batch_shape, size) for size in self.state_sizes)

    def forward(self, x: Tensor, state: Tensor | State | None = None):
        """One step: x (B, I) or unbatched (I,); state as torch.nn's cell takes it (zeros if None)."""
        check_input(x, self.input_size, batched_dims=2)
        batch_shape = tuple(x.shape[:-1])  # (B,) or ()
        if state is None:
            state = self.zero_state(batch_shape, x)
        state = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(state) != len(self.state_sizes):
            raise ValueError(f"state must hold {len(self.state_sizes)} tensor(s), got {len(state)}")
        check_dtype(x, self.weight_ih)
        for name, tensor, size in zip(("h", "c"), state, self.state_sizes):
            check_state(name, tensor, (*batch_shape, size), like=x)
        if not batch_shape:  # unbatched: a batch of one, squeezed again below
            new = self.step(self.input_projection(x.unsqueeze(0)), tuple(s.unsqueeze(0) for s in state))
            new = tuple(s.squeeze(0) for s in new)
        else:
            new = self.step(self.input_projection(x), state)
        return new[0] if len(new) == 1 else new

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


def _recurrent(x_proj: Tensor, h: Tensor, weight_hh: Tensor) -> Tensor:
    """x_proj + h W_hh^T in one fused matmul (addmm). (B, G*H)"""
    return torch.addmm(x_proj, h, weight_hh.t())


class LSTMCell(RecurrentCell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), torch.nn.LSTMCell's gate order i, f, g, o.

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
        f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)         candidate cell
        o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
        c' = f * c + i * g
        h' = o * tanh(c')                               (h' = W_hr (o * tanh(c')) with proj_size > 0)

    Example:
        >>> cell = LSTMCell(1, 20)
        >>> h, c = cell(torch.ones(16, 1))              # zero state; h, c: (16, 20)
        >>> h, c = cell(torch.ones(16, 1), (h, c))
    """

    num_gates = 4
    forget_gate = 1
    reference_init = "uniform3"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, proj_size: int = 0, *,
                 init: str = "torch", forget_bias: float | None = None):
        check_positive_int("hidden_size", hidden_size)  # first: the proj_size check below reads it
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or not 0 <= proj_size < hidden_size:
            raise ValueError(f"proj_size must be an int in [0, hidden_size={hidden_size}), got {proj_size}")
        super().__init__(input_size, hidden_size, bias, recurrent_size=proj_size or hidden_size,
                         init=init, forget_bias=forget_bias)
        self.proj_size = proj_size
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size))  # (P, H)
        self.reset_parameters()

    @property
    def state_sizes(self) -> tuple[int, int]:
        return (self.proj_size or self.hidden_size, self.hidden_size)

    def step(self, x_proj: Tensor, state: State) -> State:
        h, c = state  # (B, H_out), (B, H)
        gates = _recurrent(x_proj, h, self.weight_hh)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c_next = f * c + i * g
        h_next = o * torch.tanh(c_next)
        if self.proj_size:
            h_next = h_next @ self.weight_hr.t()  # (B, P)
        return h_next, c_next

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", proj_size={self.proj_size}" if self.proj_size else "")


class GRUCell(RecurrentCell):
    """Gated recurrent unit (Cho et al. 2014), torch.nn.GRUCell's gate order r, z, n.

    reset_after=True (torch.nn.GRU, cuDNN, Keras' default):
        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     reset gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)     update gate
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))  candidate state
        h' = (1 - z) * n + z * h
    reset_after=False (Cho et al.'s original, the counting reference's form):
        n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn)  the reset gate acts before the matmul
    The two forms are different models with the same parameters.

    Example:
        >>> cell = GRUCell(1, 20, reset_after=False)
        >>> h = cell(torch.ones(16, 1))                 # (16, 20)
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, reset_after: bool = True, *,
                 init: str = "torch"):
        super().__init__(input_size, hidden_size, bias, init=init)
        self.reset_after = bool(reset_after)
        self.reset_parameters()

    def input_projection(self, x: Tensor) -> Tensor:
        """W_ih x + b_ih, plus b_hh where it adds outside a gate product: (..., I) -> (..., 3H)."""
        if self.bias_ih is None:
            return F.linear(x, self.weight_ih)
        if self.reset_after:  # b_hn sits inside r * (W_hn h + b_hn): only b_hr, b_hz join
            b_hr, b_hz, _ = self.bias_hh.chunk(3)
            return F.linear(x, self.weight_ih, self.bias_ih + torch.cat([b_hr, b_hz, torch.zeros_like(b_hz)]))
        return F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)

    def step(self, x_proj: Tensor, state: State) -> State:
        (h,) = state  # (B, H)
        H = self.hidden_size
        x_rz, x_n = x_proj.split([2 * H, H], dim=1)  # (B, 2H), (B, H)
        w_rz, w_n = self.weight_hh.split([2 * H, H], dim=0)  # (2H, H), (H, H)
        r, z = torch.sigmoid(_recurrent(x_rz, h, w_rz)).chunk(2, dim=1)
        if self.reset_after:
            h_n = h @ w_n.t()
            if self.bias_hh is not None:
                h_n = h_n + self.bias_hh[2 * H:]
            n = torch.tanh(x_n + r * h_n)
        else:
            n = torch.tanh(_recurrent(x_n, r * h, w_n))
        h_next = (1 - z) * n + z * h
        return (h_next,)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")


class RNNCell(RecurrentCell):
    """Elman RNN, torch.nn.RNNCell:  h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu.

    Example:
        >>> cell = RNNCell(1, 20, nonlinearity="relu")
        >>> h = cell(torch.ones(16, 1))                 # (16, 20)
    """

    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", *,
                 init: str = "torch"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, init=init)
        self.nonlinearity = nonlinearity
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu
        self.reset_parameters()

    def step(self, x_proj: Tensor, state: State) -> State:
        (h,) = state  # (B, H)
        return (self.activation(_recurrent(x_proj, h, self.weight_hh)),)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"

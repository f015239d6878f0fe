"""Recurrent cells, one time step each, written out gate by gate.

Every cell has the parameters of its torch.nn counterpart (same names, shapes and gate order,
so a torch state_dict loads) and splits its step in two, so that a sequence layer can hoist
the input half out of its time loop (one matmul for all steps):

    x_proj = cell.input_projection(x)      # W_ih x + b_ih (+ the recurrent biases that can join it)
    state  = cell.step(x_proj, state)      # the recurrent matmul and the gate equations

A state is a tuple of tensors: (h, c) for the LSTM, (h,) for the GRU and the RNN; h is always
first. `forward(x, state=None)` is the one-step call with torch.nn.*Cell's contract.

The parameters a step reads come from `weights`: by default the cell's own (a cell alone is a
module with torch.nn.*Cell's parameters), or, inside a layer, the layer's, which owns them under
torch.nn's names (weight_hh_l0, ...) and hands each cell a `Weights` of them at every call:

    x_proj = cell.input_projection(x, weights)
    state  = cell.step(x_proj, state, weights=weights)

Variants are keyword switches on these same cells, off by default; a switch that is off adds no
parameter and no operation, so with all of them off a cell is the plain one, equal to torch.nn's:

    LSTMCell(peephole=True)              Gers & Schmidhuber 2001: the gates look at the cell state
    LSTMCell(coupled=True)               CIFG: no input gate, i = 1 - f
    LSTMCell, GRUCell(layer_norm=True)   Ba et al. 2016: layer-normalised gate pre-activations and cell
    any cell(recurrent_dropout=p)        Gal & Ghahramani 2016: one dropout mask on h_{t-1} per sequence
    any cell(zoneout=p)                  Krueger et al. 2017: units keep their previous value at random

The two random ones need masks; a layer draws a sequence's masks once, before its loop
(`noise = cell.draw_noise(T, (B,), x)`), and hands each step its own (`cell.step(x_proj, state, noise.at(t))`).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import init as _init
from ._checks import check_dtype, check_input, check_probability, check_size, check_state

State = tuple[Tensor, ...]
STATE_NAMES = ("h", "c", "n", "m")  # a state's parts, in order, as far as a cell has them (the sLSTM has all four)


class Weights:
    """A cell's parameters, read once per call: attributes by the cell's own names (weight_ih, weight_hh, ...),
    and the views of them that every step reads (W_hh^T, ...; see RecurrentCell.read_weights).

    A layer owns its cells' parameters under torch.nn's names and makes one of these per cell at each
    forward (cell.read_weights), from whatever those attributes hold then (a reassigned Parameter, a
    parametrization's value). The views are made there, once per call rather than once per step: autograd then
    sums the steps' gradients of a view before it takes the view's backward once, where a view per step would
    take that backward at every step. Eager forward and backward of a (T=20, B=16, H=20) layer, one thread:
    LSTM 7%, GRU 13% (reset-before 15%), RNN 12% faster; the same gradients to the last bit (test_cells).
    """

    def __init__(self, tensors: dict[str, Tensor | None]):
        for name, tensor in tensors.items():
            setattr(self, name, tensor)


class Noise(NamedTuple):
    """Random masks: a sequence's from RecurrentCell.draw_noise, one step's from noise.at(t) (what step takes).

    recurrent: (B, H_rec) of 0 and 1/(1-p), one mask for every step: multiplies h_{t-1} in the recurrent matmuls.
    zoneout:   per state tensor (h, c), 1 where a unit keeps its previous value: (T, B, size) for a sequence,
               (B, size) for a step; in eval mode the float p (the masks' expectation) instead.
    """

    recurrent: Tensor | None
    zoneout: tuple[Tensor | float, ...] | None

    def at(self, t: int) -> Noise:
        """Step t's masks."""
        if self.zoneout is None:
            return self
        return Noise(self.recurrent, tuple(d if isinstance(d, float) else d[t] for d in self.zoneout))

    def sequences(self, rows: Tensor) -> Noise:
        """The masks of some of a sequence batch's rows (their batch dimension: recurrent's 0, zoneout's 1)."""
        zoneout = None if self.zoneout is None else tuple(d if isinstance(d, float) else d[:, rows]
                                                          for d in self.zoneout)
        return Noise(None if self.recurrent is None else self.recurrent[rows], zoneout)


class RecurrentCell(nn.Module):
    """What every cell shares: parameters, initialisation, checks, the random masks and the one-step forward.

    A subclass sets `num_gates` and writes `step`; it may override `_projection_bias`. Every method that
    reads a parameter takes `weights` (see Weights): None means the cell's own.
    Parameters: weight_ih (G*H, I), weight_hh (G*H, H_rec), bias_ih (G*H), bias_hh (G*H),
    where G = num_gates and H_rec is the width of the state fed back (H, or proj_size);
    with layer_norm also ln_gain_ih and ln_gain_hh (G, H), each gate's layer-norm gain.

    Regularisers every cell has (0 = off; random in training mode only, masks from torch's global RNG):
        recurrent_dropout=p   Gal & Ghahramani 2016, Keras' recurrent_dropout: the recurrent matmuls see
                              h_{t-1} * m / (1 - p), m ~ Bernoulli(1 - p) of shape (B, H_rec), one mask
                              per sequence, shared by every step and every gate. Eval mode: h_{t-1}.
        zoneout=p             Krueger et al. 2017: every state tensor s (h, and c for the LSTM) becomes
                              s_t = d * s_{t-1} + (1 - d) * s_t,  d ~ Bernoulli(p) of shape (B, size),
                              drawn afresh at every step, as in the paper. Eval mode: d = p, its expectation.
    """

    num_gates: int
    forget_gate: int | None = None  # index of the forget gate, for init's forget_bias
    reference_init = "linear"  # the counting reference's initialisation (see rnncount.init)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 recurrent_size: int | None = None, init: str = "torch", forget_bias: float | None = None,
                 layer_norm: bool = False, recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        super().__init__()
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.bias = bool(bias)
        recurrent_size = hidden_size if recurrent_size is None else recurrent_size
        gates = self.num_gates * hidden_size
        factory = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(gates, input_size, **factory))  # (G*H, I)
        self.weight_hh = nn.Parameter(torch.empty(gates, recurrent_size, **factory))  # (G*H, H_rec)
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gates, **factory))
            self.bias_hh = nn.Parameter(torch.empty(gates, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.layer_norm = bool(layer_norm)
        if layer_norm:
            self.ln_gain_ih = nn.Parameter(torch.empty(self.num_gates, hidden_size, **factory))  # (G, H)
            self.ln_gain_hh = nn.Parameter(torch.empty(self.num_gates, hidden_size, **factory))  # (G, H)
        else:
            self.register_parameter("ln_gain_ih", None)
            self.register_parameter("ln_gain_hh", None)
        # layer_norm, resolved once so that a step has no branch on it: _recurrence adds W_hh h to the input part
        # (one fused addmm, or each gate's block layer-normalised first); _norm_hh is that norm alone, for a product
        # a step combines itself (the reset-after GRU's r * (W_hn h + b_hn)); off, it is _unchanged
        self._recurrence = _normed_recurrence if layer_norm else _recurrence
        self._norm_hh = _layer_norm if layer_norm else _unchanged
        self.recurrent_dropout = check_probability("recurrent_dropout", recurrent_dropout)
        self.zoneout = check_probability("zoneout", zoneout)
        self.init, self.forget_bias = init, forget_bias
        if init not in _init.SCHEMES:
            raise ValueError(f"init must be one of {', '.join(_init.SCHEMES)}, got {init!r}")

    def reset_parameters(self, weights: dict[str, Tensor] | None = None) -> None:
        """Initialise the cell's parameters with its scheme (rnncount.init); weights: a layer's for this cell."""
        _init.initialize_(self, self.init, self.forget_bias, weights)

    def _built(self) -> None:
        """The end of a cell's __init__: remember its parameters' names (weight_names), then initialise them."""
        self.weight_names = tuple(self._parameters)
        self.reset_parameters()

    def own_weights(self) -> Weights:
        """The cell's own parameters, each read once (a parametrized one is computed once per call)."""
        return self.read_weights({name: getattr(self, name) for name in self.weight_names})

    def read_weights(self, tensors: dict[str, Tensor | None]) -> Weights:
        """These parameters (the cell's own, or a layer's for it) as the steps of one call read them."""
        weights = Weights(tensors)
        for name, view in self._step_views(weights).items():
            setattr(weights, name, view)
        return weights

    def _step_views(self, w: Weights) -> dict[str, Tensor]:
        """What every step reads of the parameters, made once per call: W_hh^T (H_rec, G*H) for the one matmul."""
        return {"weight_hh_t": w.weight_hh.t()}

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Width of each state tensor: (H,) here, (H_out, H) for the LSTM."""
        return (self.hidden_size,)

    def input_projection(self, x: Tensor, weights: Weights | None = None) -> Tensor:
        """W_ih x + b: (..., I) -> (..., G*H), b the biases that add outside every gate product.

        With layer_norm: LN(W_ih x) + b, each gate normalised over its H units (so it can be hoisted too).
        """
        w = self if weights is None else weights
        bias = self._projection_bias(w)
        if not self.layer_norm:
            return F.linear(x, w.weight_ih, bias)
        x_proj = _layer_norm(F.linear(x, w.weight_ih), w.ln_gain_ih)
        return x_proj if bias is None else x_proj + bias

    def _projection_bias(self, w) -> Tensor | None:
        """b_ih + b_hh: here both add outside every gate product."""
        return None if w.bias_ih is None else w.bias_ih + w.bias_hh

    def step(self, x_proj: Tensor, state: State, noise: Noise | None = None, weights: Weights | None = None) -> State:
        """One step: x_proj (B, G*H) from input_projection, state -> the next state. weights: read_weights' (None:
        own_weights(), read afresh at this step; in a loop of your own, read them once and pass them)."""
        raise NotImplementedError

    def zero_state(self, batch_shape: tuple[int, ...], like: Tensor) -> State:
        return tuple(like.new_zeros(*batch_shape, size) for size in self.state_sizes)

    def draw_noise(self, steps: int, batch_shape: tuple[int, ...], like: Tensor) -> Noise | None:
        """The masks of one sequence of `steps` steps (see Noise), from torch's global RNG; None if it has none.

        Recurrent dropout: one mask for all steps, training only. Zoneout: a mask per step in training, p in eval.
        """
        if not self.recurrent_dropout and not self.zoneout:  # (before reading self.training: no mode, no masks)
            return None
        dropout = self.recurrent_dropout if self.training else 0.0
        if not dropout and not self.zoneout:
            return None
        recurrent = zoneout = None
        if dropout:
            keep = 1.0 - dropout
            recurrent = like.new_empty(*batch_shape, self.state_sizes[0]).bernoulli_(keep) / keep  # (B, H_rec)
        if self.zoneout and self.training:
            zoneout = tuple(like.new_empty(steps, *batch_shape, size).bernoulli_(self.zoneout)
                            for size in self.state_sizes)  # (T, B, size) each
        elif self.zoneout:
            zoneout = (self.zoneout,) * len(self.state_sizes)
        return Noise(recurrent, zoneout)

    def forward(self, x: Tensor, state: Tensor | State | None = None):
        """One step: x (B, I) or unbatched (I,); state as torch.nn's cell takes it (zeros if None).

        Random masks, if any, are drawn for this one step (a sequence of one); to keep them over your own
        loop, draw them once with draw_noise and call step with each step's.
        """
        check_input(x, self.input_size, batched_dims=2)
        batch_shape = tuple(x.shape[:-1])  # (B,) or ()
        if state is None:
            state = self.zero_state(batch_shape, x)
        state = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(state) != len(self.state_sizes):
            raise ValueError(f"state must hold {len(self.state_sizes)} tensor(s), got {len(state)}")
        for name, tensor in zip(STATE_NAMES, state):
            if isinstance(tensor, Tensor) and tensor.dim() not in (1, 2):
                raise ValueError(f"{name} must have 1 (unbatched) or 2 (batched) dimensions, got shape "
                                 f"{tuple(tensor.shape)}")
        weights = self.own_weights()
        check_dtype(x, weights.weight_ih, RuntimeError)
        for name, tensor, size in zip(STATE_NAMES, state, self.state_sizes):
            check_state(name, tensor, (*batch_shape, size), like=x)
        noise = self.draw_noise(1, batch_shape or (1,), x)
        noise = None if noise is None else noise.at(0)
        if not batch_shape:  # unbatched: a batch of one, squeezed again below
            new = self.step(self.input_projection(x.unsqueeze(0), weights), tuple(s.unsqueeze(0) for s in state),
                            noise, weights)
            new = tuple(s.squeeze(0) for s in new)
        else:
            new = self.step(self.input_projection(x, weights), state, noise, weights)
        return new[0] if len(new) == 1 else new

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"] + ([] if self.bias else ["bias=False"])
        options += [f"{name}=True" for name in self._switches() if getattr(self, name)]
        options += [f"{name}={getattr(self, name)}" for name in ("recurrent_dropout", "zoneout") if getattr(self, name)]
        return ", ".join(options)

    def _switches(self) -> tuple[str, ...]:
        return ("layer_norm",)


def check_proj_size(proj_size, hidden_size: int) -> int:
    """proj_size: an int in [0, hidden_size) (0: no projection); TypeError/ValueError as torch.nn.LSTM."""
    if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral):
        raise TypeError(f"proj_size must be an int, got {type(proj_size).__name__}")
    if not 0 <= proj_size < max(hidden_size, 1):
        raise ValueError(f"proj_size must be an int in [0, hidden_size={hidden_size}), got {proj_size}")
    return int(proj_size)


def _recurrence(x_proj: Tensor, h: Tensor, weight_hh_t: Tensor, ln_gain: None = None) -> Tensor:
    """x_proj + h W_hh^T in one fused matmul (addmm), from W_hh^T (H_rec, G*H): (B, G*H).
    (ln_gain: a layer-normalised cell's, unused here.)

    Under torch.func.vmap (stacked models, rnncount.stacked) addmm's batching rule is x_proj * 1 + bmm + add;
    there x_proj + h @ W_hh^T is the same numbers (bmm + add) with one op less forward and backward: a stacked
    LSTM or GRU step 7% faster (5 models, interleaved, one thread). A cell alone runs the fused addmm.
    """
    if torch._C._functorch.is_batchedtensor(x_proj):
        return x_proj + h @ weight_hh_t
    return torch.addmm(x_proj, h, weight_hh_t)


def _normed_recurrence(x_proj: Tensor, h: Tensor, weight_hh_t: Tensor, ln_gain: Tensor) -> Tensor:
    """x_proj + LN(h W_hh^T), each gate's block normalised apart (layer_norm=True): (B, G*H)."""
    return x_proj + _layer_norm(h @ weight_hh_t, ln_gain)


def _unchanged(x: Tensor, *unused) -> Tensor:
    """A switch that is off: x itself, no operation (an identity norm, no projection, no peephole)."""
    return x


def _layer_norm(z: Tensor, gain: Tensor) -> Tensor:
    """Each gate's block of z normalised over its H units (mean 0, variance 1, eps 1e-5), times its gain.

    z (..., G*H), gain (G, H) -> (..., G*H). Per gate, so that a gate's norm can be taken wherever its
    pre-activation is computed (the reset-before GRU computes the candidate's apart from r and z's).
    """
    return (F.layer_norm(z.unflatten(-1, gain.shape), gain.shape[-1:]) * gain).flatten(-2)


def _dropped(h: Tensor, noise: Noise | None) -> Tensor:
    """h_{t-1} as the recurrent matmuls see it: h * m / (1 - p) under recurrent dropout, else h."""
    return h if noise is None or noise.recurrent is None else h * noise.recurrent


def _zoned_out(new: State, old: State, noise: Noise | None) -> State:
    """Zoneout: s_t = d * s_{t-1} + (1 - d) * s_t for each state tensor (d = p in eval mode)."""
    if noise is None or noise.zoneout is None:
        return new
    return tuple(d * s_old + (1 - d) * s_new for d, s_old, s_new in zip(noise.zoneout, old, new))


def _input_forget(z_i: Tensor, z_f: Tensor, c: Tensor, w) -> tuple[Tensor, Tensor]:
    """The plain input and forget gates: i = sigmoid(z_i), f = sigmoid(z_f). (B, H) each."""
    return torch.sigmoid(z_i), torch.sigmoid(z_f)


def _input_forget_peephole(z_i: Tensor, z_f: Tensor, c: Tensor, w) -> tuple[Tensor, Tensor]:
    """Peepholes: i = sigmoid(z_i + w_ci * c), f = sigmoid(z_f + w_cf * c).

    f's term is made before i's: autograd sums c's gradient contributions in the reverse order of their making,
    so swapping the two lines would change the gradients' last bits.
    """
    z_f = z_f + w.weight_cf * c
    z_i = z_i + w.weight_ci * c
    return torch.sigmoid(z_i), torch.sigmoid(z_f)


def _input_forget_coupled(z_f: Tensor, c: Tensor, w) -> tuple[Tensor, Tensor]:
    """CIFG, no input gate of its own: f = sigmoid(z_f), i = 1 - f."""
    f = torch.sigmoid(z_f)
    return 1 - f, f


def _input_forget_coupled_peephole(z_f: Tensor, c: Tensor, w) -> tuple[Tensor, Tensor]:
    """CIFG with a peephole: f = sigmoid(z_f + w_cf * c), i = 1 - f."""
    f = torch.sigmoid(z_f + w.weight_cf * c)
    return 1 - f, f


# (coupled, peephole) -> how the input and forget gates are made from their pre-activations (z_i, z_f, or z_f alone)
_INPUT_FORGET = {(False, False): _input_forget, (False, True): _input_forget_peephole,
                 (True, False): _input_forget_coupled, (True, True): _input_forget_coupled_peephole}


def _output_peephole(z_o: Tensor, c_next: Tensor, w) -> Tensor:
    """The output gate's peephole looks at the new cell state: z_o + w_co * c'."""
    return z_o + w.weight_co * c_next


def _cell_layer_norm(c_next: Tensor, w) -> Tensor:
    """LN_c(c'): the cell state normalised over its H units, with its own gain and shift, before its tanh."""
    return F.layer_norm(c_next, c_next.shape[-1:], w.ln_gain_c, w.ln_bias_c)


def _projection(h_next: Tensor, w) -> Tensor:
    """W_hr h': (B, H) -> (B, P), torch.nn.LSTM's proj_size."""
    return h_next @ w.weight_hr.t()


class LSTMCell(RecurrentCell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), torch.nn.LSTMCell's gate order i, f, g, o.

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     input gate
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)     forget gate
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)        candidate cell
        c' = f * c + i * g                              new cell state
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)     output gate
        h' = o * tanh(c')                               new hidden state

    o comes after c' because its peephole (below) looks at c'. Variants (keyword switches, combinable; each adds
    only its own parameters and, off, is no operation at all: step above is the plain cell's equations):
        peephole=True    Gers & Schmidhuber 2001: i and f look at c, o at c' (vectors w_c*, (H,) each):
                             i = sigmoid(... + w_ci * c),  f = sigmoid(... + w_cf * c),  o = sigmoid(... + w_co * c')
        coupled=True     coupled input and forget gate (CIFG, Greff et al. 2017):  i = 1 - f.
                         There is no input gate: the weights hold 3 gates f, g, o (3H rows), not 4.
        layer_norm=True  Ba et al. 2016: the input and the recurrent part of each gate normalised apart,
                         and the cell state before its tanh (the carried c' itself is not normalised):
                             i, f, g, o = LN(W_i* x) + LN(W_h* h) + b_i* + b_h*      (LN per gate over H)
                             h' = o * tanh(LN_c(c'))
        proj_size=P      torch.nn.LSTM's projection: h' = W_hr (o * tanh(c')), (B, P); W_hr (P, H)
        recurrent_dropout, zoneout: see RecurrentCell (zoneout acts on h and c).

    Example:
        >>> cell = LSTMCell(1, 20)
        >>> h, c = cell(torch.ones(16, 1))              # zero state; h, c: (16, 20)
        >>> h, c = cell(torch.ones(16, 1), (h, c))
        >>> LSTMCell(1, 20, peephole=True, layer_norm=True)
    """

    num_gates = 4
    forget_gate = 1
    reference_init = "uniform3"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 proj_size: int = 0, init: str = "torch", forget_bias: float | None = None, peephole: bool = False,
                 coupled: bool = False, layer_norm: bool = False, recurrent_dropout: float = 0.0,
                 zoneout: float = 0.0):
        check_size("hidden_size", hidden_size)  # first: the proj_size check below reads it
        proj_size = check_proj_size(proj_size, hidden_size)
        self.coupled = bool(coupled)
        if coupled:  # gates f, g, o
            self.num_gates, self.forget_gate = 3, 0
        super().__init__(input_size, hidden_size, bias, device, dtype, recurrent_size=proj_size or hidden_size,
                         init=init, forget_bias=forget_bias, layer_norm=layer_norm,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        self.proj_size = proj_size
        factory = dict(device=device, dtype=dtype)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size, **factory))  # (P, H)
        self.peephole = bool(peephole)
        if peephole:
            if not coupled:
                self.weight_ci = nn.Parameter(torch.empty(hidden_size, **factory))  # (H,)
            self.weight_cf = nn.Parameter(torch.empty(hidden_size, **factory))  # (H,)
            self.weight_co = nn.Parameter(torch.empty(hidden_size, **factory))  # (H,)
        if layer_norm:
            self.ln_gain_c = nn.Parameter(torch.empty(hidden_size, **factory))  # (H,)
            self.ln_bias_c = nn.Parameter(torch.empty(hidden_size, **factory))  # (H,)
        # the switches, resolved once: step calls each piece unconditionally, and an off switch is _unchanged
        self._input_forget = _INPUT_FORGET[self.coupled, self.peephole]
        self._output_peephole = _output_peephole if peephole else _unchanged
        self._cell_norm = _cell_layer_norm if layer_norm else _unchanged
        self._projection = _projection if proj_size else _unchanged
        self._built()

    @property
    def state_sizes(self) -> tuple[int, int]:
        return (self.proj_size or self.hidden_size, self.hidden_size)

    def step(self, x_proj: Tensor, state: State, noise: Noise | None = None, weights: Weights | None = None) -> State:
        """The equations above, in their order: x_proj (B, G*H) from input_projection, state (h, c) -> (h', c')."""
        w = self.own_weights() if weights is None else weights
        h, c = state  # (B, H_out), (B, H)
        z = self._recurrence(x_proj, _dropped(h, noise), w.weight_hh_t, w.ln_gain_hh)  # (B, G*H) pre-activations
        *z_if, z_g, z_o = z.chunk(self.num_gates, dim=1)  # (B, H) each: z_i, z_f (coupled: z_f alone), z_g, z_o
        i, f = self._input_forget(*z_if, c, w)  # sigmoid(z_i), sigmoid(z_f); the variants' in _INPUT_FORGET
        g = torch.tanh(z_g)
        c_next = f * c + i * g
        o = torch.sigmoid(self._output_peephole(z_o, c_next, w))
        h_next = o * torch.tanh(self._cell_norm(c_next, w))  # (B, H)
        h_next = self._projection(h_next, w)  # (B, H_out): W_hr h' with proj_size, else h' itself
        return _zoned_out((h_next, c_next), state, noise)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", proj_size={self.proj_size}" if self.proj_size else "")

    def _switches(self) -> tuple[str, ...]:
        return ("peephole", "coupled", "layer_norm")


def _gru_gate_gains(ln_gain_hh: Tensor) -> tuple[Tensor, Tensor]:
    """A layer-normalised GRU's recurrent gains (3, H) split as its matmuls are: r and z's (2, H), n's (1, H)."""
    return ln_gain_hh.split([2, 1])


def _no_gains(ln_gain_hh: None) -> tuple[None, None]:
    return None, None


class _ResetAfter:
    """The reset-after GRU's candidate, and where its recurrent biases b_hh = [b_hr, b_hz, b_hn] add.

    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): b_hr and b_hz add outside every product, so input_projection
    adds them to b_ih, once per sequence (hoisted_bias); b_hn sits inside r * (...), so each step adds it (candidate).
    """

    @staticmethod
    def hoisted_bias(b_ih: Tensor, b_hh: Tensor) -> Tensor:
        """b_ih + [b_hr, b_hz, 0]: (3H,)."""
        b_hr, b_hz, _ = b_hh.chunk(3)
        return b_ih + torch.cat([b_hr, b_hz, torch.zeros_like(b_hz)])

    @staticmethod
    def candidate(cell: GRUCell, x_n: Tensor, r: Tensor, h: Tensor, w_n_t: Tensor, ln_n, b_hh: Tensor) -> Tensor:
        """n's pre-activation W_in x + b_in + r * (W_hn h + b_hn), from x_n = W_in x + b_in and W_hn^T: (B, H)."""
        return x_n + r * (cell._norm_hh(h @ w_n_t, ln_n) + b_hh[2 * cell.hidden_size:])


class _ResetAfterUnbiased(_ResetAfter):
    """The reset-after GRU with bias=False: n = tanh(W_in x + r * W_hn h)."""

    @staticmethod
    def candidate(cell: GRUCell, x_n: Tensor, r: Tensor, h: Tensor, w_n_t: Tensor, ln_n, b_hh: None) -> Tensor:
        return x_n + r * cell._norm_hh(h @ w_n_t, ln_n)


class _ResetBefore:
    """The reset-before GRU's candidate, and where its recurrent biases b_hh = [b_hr, b_hz, b_hn] add.

    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn): all of b_hh adds outside every product, so input_projection
    adds all of it to b_ih, once per sequence (hoisted_bias), and a step adds none.
    """

    @staticmethod
    def hoisted_bias(b_ih: Tensor, b_hh: Tensor) -> Tensor:
        """b_ih + b_hh: (3H,)."""
        return b_ih + b_hh

    @staticmethod
    def candidate(cell: GRUCell, x_n: Tensor, r: Tensor, h: Tensor, w_n_t: Tensor, ln_n, b_hh) -> Tensor:
        """n's pre-activation W_in x + b_in + b_hn + W_hn (r * h), from x_n = W_in x + b_in + b_hn: (B, H)."""
        return cell._recurrence(x_n, r * h, w_n_t, ln_n)


class GRUCell(RecurrentCell):
    """Gated recurrent unit (Cho et al. 2014), torch.nn.GRUCell's gate order r, z, n.

    reset_after=True (torch.nn.GRU, cuDNN, Keras' default):
        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     reset gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)     update gate
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))  candidate state
        h' = (1 - z) * n + z * h                        new state
    reset_after=False (Cho et al.'s original, the counting reference's form):
        n  = tanh(W_in x + b_in + W_hn (r * h) + b_hn)  the reset gate acts before the matmul
    The two forms are different models with the same parameters. Each form's candidate, and with it where its
    recurrent biases add (input_projection takes those outside every product), is one class: _ResetAfter,
    _ResetBefore.

    Variants (keyword switches):
        layer_norm=True  Ba et al. 2016: every W x and W h product normalised per gate over its H units
                         before its bias is added:  r = sigmoid(LN(W_ir x) + b_ir + LN(W_hr h) + b_hr), ...,
                         n = tanh(LN(W_in x) + b_in + r * (LN(W_hn h) + b_hn))   (reset-before: LN(W_hn (r * h)))
        recurrent_dropout, zoneout: see RecurrentCell (the dropped h_{t-1} feeds the matmuls only; z * h keeps h).

    Example:
        >>> cell = GRUCell(1, 20, reset_after=False)
        >>> h = cell(torch.ones(16, 1))                 # (16, 20)
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 reset_after: bool = True, init: str = "torch", layer_norm: bool = False,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        super().__init__(input_size, hidden_size, bias, device, dtype, init=init, layer_norm=layer_norm,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        self.reset_after = bool(reset_after)
        # the form and the switches, resolved once: step has no branch on them
        self._form = (_ResetAfter if bias else _ResetAfterUnbiased) if reset_after else _ResetBefore
        self._gate_gains = _gru_gate_gains if layer_norm else _no_gains
        self._built()

    def _projection_bias(self, w) -> Tensor | None:
        """b_ih + the recurrent biases that add outside every gate product: the form's hoisted_bias."""
        return None if w.bias_ih is None else self._form.hoisted_bias(w.bias_ih, w.bias_hh)

    def _step_views(self, w: Weights) -> dict[str, Tensor]:
        """W_hh split as the step's two matmuls read it, transposed: r and z's (H, 2H), n's (H, H); with layer_norm
        their gains (2, H) and (1, H) (None without)."""
        w_rz, w_n = w.weight_hh.split([2 * self.hidden_size, self.hidden_size])  # (2H, H), (H, H)
        ln_rz, ln_n = self._gate_gains(w.ln_gain_hh)
        return {"weight_hh_rz_t": w_rz.t(), "weight_hh_n_t": w_n.t(), "ln_gain_hh_rz": ln_rz, "ln_gain_hh_n": ln_n}

    def step(self, x_proj: Tensor, state: State, noise: Noise | None = None, weights: Weights | None = None) -> State:
        """The equations above, in their order: x_proj (B, 3H) from input_projection, state (h,) -> (h',)."""
        w = self.own_weights() if weights is None else weights
        (h,) = state  # (B, H)
        h_rec = _dropped(h, noise)  # h_{t-1} as the recurrent matmuls see it
        H = self.hidden_size
        x_rz, x_n = x_proj.split([2 * H, H], dim=1)  # (B, 2H), (B, H)
        # r, z, n: (B, H) each, from W_hh's two blocks as read_weights made them (transposed: (H, 2H), (H, H))
        r, z = torch.sigmoid(self._recurrence(x_rz, h_rec, w.weight_hh_rz_t, w.ln_gain_hh_rz)).chunk(2, dim=1)
        n = torch.tanh(self._form.candidate(self, x_n, r, h_rec, w.weight_hh_n_t, w.ln_gain_hh_n, w.bias_hh))
        h_next = (1 - z) * n + z * h
        return _zoned_out((h_next,), state, noise)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")


class RNNCell(RecurrentCell):
    """Elman RNN, torch.nn.RNNCell:  h' = act(W_ih x + b_ih + W_hh h + b_hh),  act = tanh or relu.

    recurrent_dropout and zoneout as in RecurrentCell.

    Example:
        >>> cell = RNNCell(1, 20, nonlinearity="relu")
        >>> h = cell(torch.ones(16, 1))                 # (16, 20)
    """

    num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None, *, init: str = "torch", recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, device, dtype, init=init,
                         recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        self.nonlinearity = nonlinearity
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu
        self._built()

    def step(self, x_proj: Tensor, state: State, noise: Noise | None = None, weights: Weights | None = None) -> State:
        w = self.own_weights() if weights is None else weights
        (h,) = state  # (B, H)
        h_next = self.activation(_recurrence(x_proj, _dropped(h, noise), w.weight_hh_t))
        return _zoned_out((h_next,), state, noise)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity}")

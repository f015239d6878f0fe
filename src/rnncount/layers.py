"""Sequence layers: drop-in replacements for torch.nn.LSTM, GRU and RNN, built from rnncount's cells.

    scan                 drives any cell over time (forward or reversed, with per-sequence lengths)
    RecurrentLayer       stacks layers and directions of one cell type: cells[layer * D + direction]
    LSTM, GRU, RNN       torch.nn's constructors and forward contracts

A layer owns its parameters under torch.nn's names (weight_ih_l0, bias_hh_l1_reverse, weight_hr_l0,
..., a variant's as ln_gain_hh_l0, weight_ci_l0), as real Parameters in torch's order, so a torch
state_dict loads both ways and torch.nn.utils (weight_norm, spectral_norm, prune, parametrize) find
them. Its cells hold the switches and the math, no parameters: at each call the layer hands every
cell a `Weights` of what those attributes hold then, so a reassigned, tied or parametrized weight
takes effect (docs/dropin.md says what differs from torch.nn and why).
Beyond torch: `lengths=` for padded batches without packing, every step's cell state from the
LSTM (`return_cell_states=True`), initialisation schemes (`init=`, `forget_bias=`), the
reset-before GRU (`reset_after=False`), and the cells' variants (rnncount.cells): `peephole=`,
`coupled=`, `layer_norm=`, `recurrent_dropout=`, `zoneout=`, passed to every cell of the stack.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import fast, parallel
from ._checks import check_bool, check_dropout, check_dtype, check_input, check_positive_int, check_state
from .cells import STATE_NAMES, GRUCell, LSTMCell, Noise, RecurrentCell, RNNCell, State, Weights, check_proj_size
from .modern import MinGRUCell, MinLSTMCell, SLSTMCell


def scan(cell: RecurrentCell, x_proj: Tensor, state: State, mask: Tensor | None = None,
         reverse: bool = False, noise: Noise | None = None, weights: Weights | None = None) -> tuple[State, State]:
    """Run `cell.step` over time.

    x_proj: (T, B, G*H), the input already projected for every step (cell.input_projection).
    state:  the initial state, a tuple of (B, *) tensors.
    mask:   optional (T, B, 1) bool; where False (past a sequence's end) the state is carried
            unchanged, so each sequence's final state is the one at its own last step.
    reverse: walk from the last step to the first (the backward direction).
    noise:  optional, the sequence's random masks (cell.draw_noise); step t gets noise.at(t).
    weights: the cell's parameters (None: its own), passed to every step.
    Returns every step's state, stacked in time order per component ((T, B, H_out), ...),
    and the final state.
    """
    inputs = x_proj.unbind(0)  # unbind, not x_proj[t]: indexing would allocate a full-size gradient per step
    alive = mask.unbind(0) if mask is not None else None
    states: list[State] = [()] * len(inputs)
    for t in reversed(range(len(inputs))) if reverse else range(len(inputs)):
        new = cell.step(inputs[t], state, None if noise is None else noise.at(t), weights)
        if alive is not None:
            new = tuple(torch.where(alive[t], n, s) for n, s in zip(new, state))
        states[t] = state = new
    return tuple(torch.stack(parts) for parts in zip(*states)), state


class RecurrentLayer(nn.Module):
    """A stack of `num_layers` layers of one cell type, each in one or two directions.

    Layer l's input is layer l-1's output (both directions concatenated); dropout, in training
    mode, acts between layers only, as in torch.nn. Cells sit in `self.cells` at index
    layer * num_directions + direction; their parameters are the layer's, named `{name}_l{layer}`
    (+ `_reverse`), and `cell_weights(k)` reads cell k's. `compile_steps()` runs them through rnncount.fast.
    """

    compiled = False  # scan with rnncount.fast (compiled chunks of steps), not the eager loop (parallel: the gates)
    proj_size = 0  # torch.nn's attribute on every RNN (the LSTM sets its own)
    parallel = False  # every step at once with rnncount.parallel (cells whose gates see x_t only)

    def __init__(self, make_cell: Callable[..., RecurrentCell], input_size: int, hidden_size: int,
                 num_layers: int = 1, bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers, integral=True)
        self.dropout = check_dropout(dropout)
        if self.dropout and num_layers == 1:
            warnings.warn("dropout acts between layers only, so it has no effect with num_layers=1", stacklevel=3)
        self.bias, self.batch_first = check_bool("bias", bias), check_bool("batch_first", batch_first)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        factory = dict(device=device, dtype=dtype)
        first = make_cell(input_size, **factory)
        layer_input = self.num_directions * first.state_sizes[0]
        self.cells = nn.ModuleList(
            [first] + [make_cell(input_size if k < self.num_directions else layer_input, **factory)
                       for k in range(1, num_layers * self.num_directions)]
        )
        # Each cell made (and initialised) its parameters; they move to the layer under torch's names.
        self._weight_names: list[dict[str, str | None]] = []  # per cell: its name -> the layer's (None: absent)
        for k, cell in enumerate(self.cells):
            names = {}
            for name, parameter in list(cell._parameters.items()):
                names[name] = None if parameter is None else self._torch_name(k, name)
                if parameter is not None:
                    self.register_parameter(names[name], parameter)
                delattr(cell, name)
            self._weight_names.append(names)
        self._all_weights = [[n for n in names.values() if n is not None] for names in self._weight_names]
        self._flat_weights_names = [name for names in self._all_weights for name in names]

    def _torch_name(self, k: int, name: str) -> str:
        layer, direction = divmod(k, self.num_directions)
        return f"{name}_l{layer}" + ("_reverse" if direction else "")

    def cell_weights(self, k: int) -> Weights:
        """Cell k's parameters as they are now (after any parametrization), by the cell's own names."""
        return self.cells[k].read_weights({name: None if attr is None else getattr(self, attr)
                                           for name, attr in self._weight_names[k].items()})

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """torch.nn's: every cell's parameters, a list per layer and direction."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list[Tensor]:
        """torch.nn's: every parameter in order, as the attributes hold them now."""
        return [getattr(self, name) for name in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """Does nothing: torch.nn packs its weights into one buffer for cuDNN; these layers read them as they are."""

    def reset_parameters(self) -> None:
        """Initialise every cell's parameters again, with its scheme (rnncount.init), in construction order."""
        for k, cell in enumerate(self.cells):
            cell.reset_parameters({name: getattr(self, attr) for name, attr in self._weight_names[k].items() if attr})

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return self.cells[0].state_sizes

    def compile_steps(self, enabled: bool = True) -> RecurrentLayer:
        """Run the cells' steps compiled, a chunk of steps at a time (see rnncount.fast); for the parallel layers
        (MinGRU, MinLSTM), their gates over the whole sequence (rnncount.parallel). Returns self."""
        self.compiled = bool(enabled)
        return self

    def _run(self, input: Tensor | PackedSequence, hx, lengths, keep_cell_states: bool):
        """Shared forward: returns (output, final states as tensors, cell states or None)."""
        packed = input if isinstance(input, PackedSequence) else None
        if packed is not None:
            if lengths is not None:
                raise ValueError("lengths= is for padded input; a PackedSequence carries its own lengths")
            check_input(packed.data, self.input_size, batched_dims=2)
            x, lengths = pad_packed_sequence(packed)  # (T, B, I), original batch order
            batched = True
        else:
            check_input(input, self.input_size, batched_dims=3)
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1)  # unbatched (T, I) -> (T, 1, I)
            if batched and self.batch_first:
                x = x.transpose(0, 1)  # (B, T, I) -> (T, B, I)
        weights = [self.cell_weights(k) for k in range(len(self.cells))]  # each read once per call
        check_dtype(x, weights[0].weight_ih, ValueError)
        steps, batch = x.shape[:2]
        if steps == 0:
            raise RuntimeError(f"input has no time steps (shape {tuple(x.shape)})")
        mask = None if lengths is None else _step_mask(lengths, steps, batch, x.device)  # (T, B, 1)
        states = self._initial_states(hx, batch, x, batched)
        finals, cell_states = [], None
        for layer in range(self.num_layers):
            outputs, cells = [], []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                cell = self.cells[k]
                noise = cell.draw_noise(steps, (batch,), x)  # one sequence's masks (None if it has none)
                if self.parallel and not _exporting():  # every step at once, from W_g x + b_g: G (T, B, H)
                    gate_inputs = cell.gate_inputs(x, weights[k])
                    history, final = parallel.scan(cell, gate_inputs, states[k], mask, direction == 1, self.compiled)
                else:
                    x_proj = cell.input_projection(x, weights[k])  # (T, B, G*H)
                    if self.compiled and noise is None:  # random masks keep to the eager loop for now
                        history, final = fast.scan(cell, x_proj, states[k], mask, direction == 1, weights[k])
                    else:
                        history, final = scan(cell, x_proj, states[k], mask, direction == 1, noise, weights[k])
                outputs.append(history[0])  # (T, B, H_out)
                if keep_cell_states and layer == self.num_layers - 1:
                    cells.append(history[1])  # (T, B, H)
                finals.append(final)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (T, B, D*H_out)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
            if cells:
                cell_states = torch.cat(cells, dim=-1) if len(cells) > 1 else cells[0]  # (T, B, D*H)
        final_states = tuple(torch.stack([f[i] for f in finals]) for i in range(len(self.state_sizes)))
        if not batched:
            final_states = tuple(s.squeeze(1) for s in final_states)  # (L*D, H)
        return self._shape_output(x, packed, mask, batched), final_states, (
            None if cell_states is None else self._shape_output(cell_states, packed, mask, batched))

    def _shape_output(self, y: Tensor, packed: PackedSequence | None, mask: Tensor | None, batched: bool):
        """(T, B, F) -> the caller's layout: packed, batch_first, unbatched, padded steps zeroed."""
        if mask is not None:
            y = y * mask
        if packed is not None:
            return _pack_like(y, packed)
        if not batched:
            return y.squeeze(1)
        return y.transpose(0, 1) if self.batch_first else y

    def _initial_states(self, hx, batch: int, like: Tensor, batched: bool) -> list[State]:
        """hx as torch.nn takes it (None, a tensor, or (h_0, c_0)) -> one state tuple per cell."""
        count = self.num_layers * self.num_directions
        if hx is None:
            return [self.cells[0].zero_state((batch,), like) for _ in range(count)]
        hx = (hx,) if isinstance(hx, Tensor) else tuple(hx)
        names = tuple(f"{part}_0" for part in STATE_NAMES)  # h_0, c_0, ...
        if len(hx) != len(self.state_sizes):
            raise ValueError(f"hx must be {' and '.join(names[:len(self.state_sizes)])}, got {len(hx)} tensor(s)")
        shaped = []
        for name, h, size in zip(names, hx, self.state_sizes):
            check_state(name, h, (count, batch, size) if batched else (count, size), like)
            shaped.append(h if batched else h.unsqueeze(1))  # (L*D, B, size)
        # each cell's state as a fresh tensor, like the states its steps make, not a view k*B*size floats into hx:
        # a CPU matmul can round differently for an operand at another alignment (seen on an AVX2 host, h against
        # the GRU's W_hh slices), and a sequence run in pieces (generalize.count_in_chunks) drifted from one pass
        return [tuple(h[k].clone() for h in shaped) for k in range(count)]

    def extra_repr(self) -> str:
        """torch.nn's: the sizes, then what differs from the defaults (the variants show on the cells below)."""
        options = [f"{self.input_size}, {self.hidden_size}"]
        options += [f"proj_size={self.proj_size}"] if self.proj_size else []
        options += [f"num_layers={self.num_layers}"] if self.num_layers != 1 else []
        options += ["bias=False"] if not self.bias else []
        options += [name + "=True" for name in ("batch_first", "bidirectional") if getattr(self, name)]
        options += [f"dropout={self.dropout}"] if self.dropout else []
        return ", ".join(options)


def _exporting() -> bool:
    """True while torch.export traces the layer. The parallel layers then trace their step loop, the same function
    (tests/test_modern.py): export refuses the chunked scan's in-place writes into the views of one `unbind`; and
    lengths= is checked by the exported program when it runs (torch._check), since its values are not known here.
    torch.compiler.is_exporting came with torch 2.6; before it, those exports fail as they did."""
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting())


def _step_mask(lengths, steps: int, batch: int, device) -> Tensor:
    """(T, B, 1) bool: True where step t is inside sequence b (t < lengths[b])."""
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (batch,) or lengths.is_floating_point() or lengths.is_complex():
        raise ValueError(f"lengths must hold {batch} integers (one per sequence), got shape {tuple(lengths.shape)} "
                         f"of {lengths.dtype}")
    within = f"lengths must lie in [1, {steps}] (the number of steps)"
    if lengths.numel() and _exporting():  # the exported program checks them each time it runs
        torch._check(lengths.min().item() >= 1, lambda: within)
        torch._check(lengths.max().item() <= steps, lambda: within)
    # under torch.func.vmap (rnncount.stacked) the values cannot be read here; the stack's data was checked
    elif lengths.numel() and not torch._C._functorch.is_batchedtensor(lengths) and (
            lengths.min() < 1 or lengths.max() > steps):
        raise ValueError(f"{within}, got {lengths.tolist()}")
    return (torch.arange(steps)[:, None] < lengths.cpu()[None, :]).unsqueeze(-1).to(device)


def _pack_like(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """(T, B, F) padded, original batch order -> a PackedSequence with `like`'s batch layout."""
    if like.sorted_indices is not None:
        padded = padded.index_select(1, like.sorted_indices)  # batch sorted by length, longest first
    steps, batch = padded.shape[:2]
    inside = torch.arange(batch)[None, :] < like.batch_sizes[:steps, None]  # (T, B)
    data = padded[inside.to(padded.device)]  # (sum of lengths, F), step-major as in the packed layout
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _no_projection(proj_size) -> None:
    if proj_size:
        raise ValueError("proj_size is only supported by the LSTM, not the RNN or GRU (as in torch.nn)")


class HiddenStateLayer(RecurrentLayer):
    """A layer whose state is h alone (GRU, RNN, minGRU, minLSTM): forward(input, hx=None, *, lengths=None)
    -> output (T, B, D*H), h_n (L*D, B, H), torch.nn.GRU's and RNN's contract."""

    def forward(self, input: Tensor | PackedSequence, hx: Tensor | None = None, *,
                lengths: Sequence[int] | Tensor | None = None):
        output, (h_n,), _ = self._run(input, hx, lengths, keep_cell_states=False)
        return output, h_n


class LSTM(RecurrentLayer):
    """torch.nn.LSTM, from rnncount.LSTMCell.

    forward(input, hx=None, *, lengths=None, return_cell_states=False)
        -> output, (h_n, c_n)                        [, cell_states]
    input (T, B, I), (B, T, I) with batch_first, (T, I) unbatched, or a PackedSequence.
    output (T, B, D*H_out); h_n (L*D, B, H_out); c_n (L*D, B, H); H_out = proj_size or hidden_size.
    cell_states: every step's c_t of the last layer, (T, B, D*H), in output's layout.
    Variants (rnncount.LSTMCell, the same in every cell): peephole, coupled, layer_norm, recurrent_dropout,
    zoneout. In training mode each cell draws its masks once per forward call (one per sequence).

    Example:
        >>> lstm = LSTM(1, 20, num_layers=2, batch_first=True)
        >>> output, (h_n, c_n) = lstm(torch.randn(16, 50, 1))       # (16, 50, 20), (2, 16, 20) x 2
        >>> LSTM(1, 20, layer_norm=True, recurrent_dropout=0.25)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, init: str = "torch",
                 forget_bias: float | None = None, peephole: bool = False, coupled: bool = False,
                 layer_norm: bool = False, recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        check_positive_int("hidden_size", hidden_size)
        proj_size = check_proj_size(proj_size, hidden_size)
        variants = dict(peephole=peephole, coupled=coupled, layer_norm=layer_norm,
                        recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        super().__init__(
            lambda size, **factory: LSTMCell(size, hidden_size, bias, **factory, proj_size=proj_size, init=init,
                                             forget_bias=forget_bias, **variants),
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.proj_size = proj_size

    mode = "LSTM"  # torch.nn's name of the recurrence (RNNBase.mode)

    def forward(self, input: Tensor | PackedSequence, hx: tuple[Tensor, Tensor] | None = None, *,
                lengths: Sequence[int] | Tensor | None = None, return_cell_states: bool = False):
        output, (h_n, c_n), cell_states = self._run(input, hx, lengths, return_cell_states)
        return (output, (h_n, c_n), cell_states) if return_cell_states else (output, (h_n, c_n))


class GRU(HiddenStateLayer):
    """torch.nn.GRU, from rnncount.GRUCell; `reset_after=False` gives the reset-before form.

    forward(input, hx=None, *, lengths=None) -> output (T, B, D*H), h_n (L*D, B, H)
    Variants (rnncount.GRUCell): layer_norm, recurrent_dropout, zoneout.

    Example:
        >>> gru = GRU(1, 20, reset_after=False)
        >>> output, h_n = gru(torch.randn(50, 16, 1))               # (50, 16, 20), (1, 16, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, reset_after: bool = True, init: str = "torch",
                 layer_norm: bool = False, recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        _no_projection(proj_size)
        variants = dict(layer_norm=layer_norm, recurrent_dropout=recurrent_dropout, zoneout=zoneout)
        super().__init__(lambda size, **factory: GRUCell(size, hidden_size, bias, **factory, reset_after=reset_after,
                                                         init=init, **variants),
                         input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.reset_after = reset_after

    mode = "GRU"  # torch.nn's name of the recurrence (RNNBase.mode)


class RNN(HiddenStateLayer):
    """torch.nn.RNN (Elman, tanh or relu), from rnncount.RNNCell.

    forward(input, hx=None, *, lengths=None) -> output (T, B, D*H), h_n (L*D, B, H)
    Variants (rnncount.RNNCell): recurrent_dropout, zoneout.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None, *, init: str = "torch",
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        _no_projection(proj_size)
        super().__init__(lambda size, **factory: RNNCell(size, hidden_size, bias, nonlinearity, **factory, init=init,
                                                         recurrent_dropout=recurrent_dropout, zoneout=zoneout),
                         input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.nonlinearity = nonlinearity

    @property
    def mode(self) -> str:
        """torch.nn's name of the recurrence (RNNBase.mode): RNN_TANH or RNN_RELU."""
        return f"RNN_{self.nonlinearity.upper()}"


def _no_noise(layer: str, recurrent_dropout: float, zoneout: float) -> None:
    if recurrent_dropout or zoneout:
        raise ValueError(f"recurrent_dropout and zoneout are not implemented for the {layer}")


class MinGRU(HiddenStateLayer):
    """minGRU (Feng et al. 2024), from rnncount.MinGRUCell, every step at once (rnncount.parallel).

    forward(input, hx=None, *, lengths=None) -> output (T, B, D*H), h_n (L*D, B, H)
    `layer.parallel = False` runs the cell's step loop instead: the same numbers, one step at a time.

    Example:
        >>> gru = MinGRU(1, 20, batch_first=True)
        >>> output, h_n = gru(torch.randn(16, 1000, 1))             # (16, 1000, 20), (1, 16, 20)
    """

    parallel = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *, device=None,
                 dtype=None, init: str = "torch", recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        _no_noise("MinGRU", recurrent_dropout, zoneout)
        super().__init__(lambda size, **factory: MinGRUCell(size, hidden_size, bias, **factory, init=init),
                         input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)


class MinLSTM(HiddenStateLayer):
    """minLSTM (Feng et al. 2024), from rnncount.MinLSTMCell, every step at once (rnncount.parallel).

    forward(input, hx=None, *, lengths=None) -> output (T, B, D*H), h_n (L*D, B, H)
    normalize=False drops the length-independence scaling f/(f+i), i/(f+i); forget_bias sets b_f at the start.
    `layer.parallel = False`: the step loop.
    """

    parallel = True

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *, device=None,
                 dtype=None, init: str = "torch", normalize: bool = True, forget_bias: float | None = None,
                 recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        _no_noise("MinLSTM", recurrent_dropout, zoneout)
        super().__init__(lambda size, **factory: MinLSTMCell(size, hidden_size, bias, **factory, init=init,
                                                             normalize=normalize, forget_bias=forget_bias),
                         input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.normalize = normalize


class SLSTM(RecurrentLayer):
    """sLSTM (Beck et al. 2024), from rnncount.SLSTMCell, step by step (its gates see h_{t-1}).

    forward(input, hx=None, *, lengths=None, return_cell_states=False)
        -> output, (h_n, c_n, n_n, m_n)              [, cell_states]
    output (T, B, D*H); each final state (L*D, B, H); hx, if given, the same four. cell_states: every step's
    (stabilised) c_t of the last layer, (T, B, D*H). num_heads: blocks of the recurrent matrices.

    Example:
        >>> slstm = SLSTM(1, 20, num_heads=4, batch_first=True)
        >>> output, (h_n, c_n, n_n, m_n) = slstm(torch.randn(16, 50, 1))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 num_heads: int = 1, *, device=None, dtype=None, init: str = "torch",
                 forget_bias: float | None = None, recurrent_dropout: float = 0.0, zoneout: float = 0.0):
        _no_noise("SLSTM", recurrent_dropout, zoneout)
        super().__init__(
            lambda size, **factory: SLSTMCell(size, hidden_size, bias, num_heads, **factory, init=init,
                                              forget_bias=forget_bias),
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        self.num_heads = num_heads

    def forward(self, input: Tensor | PackedSequence, hx: tuple[Tensor, ...] | None = None, *,
                lengths: Sequence[int] | Tensor | None = None, return_cell_states: bool = False):
        output, states, cell_states = self._run(input, hx, lengths, return_cell_states)
        return (output, states, cell_states) if return_cell_states else (output, states)

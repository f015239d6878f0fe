"""Modern recurrent cells: minGRU and minLSTM (Feng et al. 2024), and the sLSTM of xLSTM (Beck et al. 2024).

They keep rnncount.cells' interface (input_projection, step, state_sizes, zero_state, draw_noise, forward), so
every sequence layer drives them. Their parameter-using methods take `weights=None`: the object whose
attributes (weight_ih, ...) hold the parameters, the cell itself when None (a standalone cell).

minGRU and minLSTM ("Were RNNs All We Needed?"): the gates and the candidate see x_t only, never h_{t-1},
so each step is  h_t = a_t ⊙ h_{t-1} + b_t  with a_t, b_t from x_t alone (`coefficients`). The step loop
and the parallel scan of rnncount.parallel both start from `coefficients`: one copy of the math.
The candidate goes through Feng et al.'s g (x + 1/2 for x >= 0, sigmoid(x) below), which keeps it > 0,
as their log-space training needs; the chunked scan the layers use does not need it, but the model is theirs.

sLSTM: exponential input gate, sigmoid forget gate (NX-AI/xlstm's default), a normaliser state n_t and a
stabiliser m_t, and a recurrent matrix that is block-diagonal over heads (memory mixing within a head only).
It has a recurrence through h_{t-1}, so it runs step by step like the LSTM.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_positive_int
from .cells import Noise, RecurrentCell, State, Weights
from .init import SCHEMES


def _half_log_max(dtype: torch.dtype) -> float:
    """log(largest float of dtype) / 2: e to this power times anything below it stays finite."""
    return math.log(torch.finfo(dtype).max) / 2


def g(x: Tensor) -> Tensor:
    """Feng et al.'s g: x + 1/2 for x >= 0, sigmoid(x) for x < 0: continuous, increasing and > 0.

    Written as sigmoid(min(x, 0)) + max(x, 0), the same numbers bit for bit (sigmoid(0) = 1/2) without
    torch.where, whose forward and backward cost several times a sigmoid's on a CPU.
    """
    positive = torch.relu(x)  # max(x, 0)
    return torch.sigmoid(x - positive) + positive


class _InputGatedCell(RecurrentCell):
    """What minGRU and minLSTM share: one input map W_ih x + b_ih to all gates, no recurrent weights.

    Parameters: weight_ih (G*H, I), bias_ih (G*H). RecurrentCell's constructor is not called: it would make
    a W_hh, which these cells do not have. No recurrent dropout or zoneout (no recurrent matmul to drop from).
    init: "torch" U(-k, k), k = 1/sqrt(H), as torch.nn's cells; "reference" nn.Linear's default, k = 1/sqrt(I),
    what the authors' code gets from its nn.Linear; "orthogonal" and "identity" act on W_hh, absent here: as "torch".
    """

    recurrent_dropout = 0.0
    zoneout = 0.0
    layer_norm = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 init: str = "torch", forget_bias: float | None = None):
        nn.Module.__init__(self)
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        if init not in SCHEMES:
            raise ValueError(f"init must be one of {', '.join(SCHEMES)}, got {init!r}")
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True")
        self.init, self.forget_bias = init, forget_bias
        factory = dict(device=device, dtype=dtype)
        self.weight_ih = nn.Parameter(torch.empty(self.num_gates * hidden_size, input_size, **factory))  # (G*H, I)
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(self.num_gates * hidden_size, **factory))  # (G*H,)
        else:
            self.register_parameter("bias_ih", None)
        self._built()

    def reset_parameters(self, weights: dict[str, Tensor] | None = None) -> None:
        """U(-k, k) (see the class docstring), then b_f = forget_bias if set; weights: a layer's for this cell."""
        weights = dict(self.named_parameters()) if weights is None else weights
        k = 1.0 / math.sqrt(self.input_size if self.init == "reference" else self.hidden_size)
        with torch.no_grad():
            for p in weights.values():
                p.uniform_(-k, k)
            if self.forget_bias is not None and weights:
                gate = self.forget_gate * self.hidden_size
                weights["bias_ih"][gate:gate + self.hidden_size] = self.forget_bias  # b_f

    def input_projection(self, x: Tensor, weights=None) -> Tensor:
        """W_ih x + b_ih: (..., I) -> (..., G*H), every gate's pre-activation (they see x_t only)."""
        w = self if weights is None else weights
        return F.linear(x, w.weight_ih, w.bias_ih)

    def gate_inputs(self, x: Tensor, weights=None) -> tuple[Tensor, ...]:
        """W_g x + b_g for each gate g, as G separate (..., H) tensors: input_projection, one gate at a time.

        The parallel path's layout: each gate one contiguous block. The chunks of input_projection's (..., G*H)
        are strided slices, and over a whole sequence an elementwise op on one costs several times what it
        costs on a contiguous tensor (rnncount.parallel).
        """
        w = self if weights is None else weights
        biases = (None,) * self.num_gates if w.bias_ih is None else w.bias_ih.chunk(self.num_gates)
        # x as rows (N, I): then F.linear is one addmm with the bias fused; on (T, B, I), a layer's transposed input,
        # it is a copy, an mm and a separate add, 2.5x the time for a whole sequence (T=1000, B=16, H=20)
        rows = x.reshape(-1, x.shape[-1])  # (N, I)
        return tuple(F.linear(rows, weight, bias).view(*x.shape[:-1], self.hidden_size)  # (..., H)
                     for weight, bias in zip(w.weight_ih.chunk(self.num_gates), biases))

    def _step_views(self, w: Weights) -> dict[str, Tensor]:
        return {}  # no recurrent weights

    def coefficients(self, *gate_inputs: Tensor) -> tuple[Tensor, Tensor]:
        """a_t, b_t of h_t = a_t ⊙ h_{t-1} + b_t from the gates' pre-activations, (..., H) each, in weight order."""
        raise NotImplementedError

    def step(self, x_proj: Tensor, state: State, noise: Noise | None = None, weights=None) -> State:
        (h,) = state  # (B, H)
        a, b = self.coefficients(*x_proj.chunk(self.num_gates, dim=-1))  # (B, H) each
        return (a * h + b,)  # h_t = a_t ⊙ h_{t-1} + b_t

    def _switches(self) -> tuple[str, ...]:
        return ()


class MinGRUCell(_InputGatedCell):
    """minGRU (Feng et al. 2024): a GRU whose gate and candidate see only x_t, and no reset gate.

        z_t  = sigmoid(W_z x_t + b_z)                   update gate
        h̃_t  = g(W_h x_t + b_h)                         candidate, > 0
        h_t  = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t          a_t = 1 - z_t,  b_t = z_t ⊙ h̃_t

    Weights in the order z, h̃: weight_ih (2H, I), bias_ih (2H). h_t is a convex mix of h_{t-1} and h̃_t, so it
    stays between h_0 and the largest candidate: bounded, whatever the length.

    Example:
        >>> cell = MinGRUCell(1, 20)
        >>> h = cell(torch.ones(16, 1))                 # (16, 20)
    """

    num_gates = 2

    def coefficients(self, k_z: Tensor, k_h: Tensor) -> tuple[Tensor, Tensor]:  # (..., H) each
        z = torch.sigmoid(k_z)
        h_tilde = g(k_h)
        return 1 - z, z * h_tilde


class MinLSTMCell(_InputGatedCell):
    """minLSTM (Feng et al. 2024): an LSTM without output gate or cell/hidden split, gates on x_t only.

        f_t  = sigmoid(W_f x_t + b_f)                   forget gate
        i_t  = sigmoid(W_i x_t + b_i)                   input gate
        h̃_t  = g(W_h x_t + b_h)                         candidate, > 0
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)    length-independence scaling (normalize=True)
        h_t  = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t             a_t = f'_t,  b_t = i'_t ⊙ h̃_t

    Weights in the order f, i, h̃: weight_ih (3H, I), bias_ih (3H). Normalised (the paper's form, the default),
    f' + i' = 1 and h_t is a convex mix, bounded like minGRU's. normalize=False keeps f_t and i_t as they are:
    then f = 1 adds i_t ⊙ h̃_t at every step, without bound. forget_bias sets b_f after initialisation.

    Example:
        >>> cell = MinLSTMCell(1, 20)
        >>> h = cell(torch.ones(16, 1))                 # (16, 20)
    """

    num_gates = 3
    forget_gate = 0

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None, *,
                 init: str = "torch", normalize: bool = True, forget_bias: float | None = None):
        self.normalize = bool(normalize)
        super().__init__(input_size, hidden_size, bias, device, dtype, init=init, forget_bias=forget_bias)

    def coefficients(self, k_f: Tensor, k_i: Tensor, k_h: Tensor) -> tuple[Tensor, Tensor]:  # (..., H) each
        h_tilde = g(k_h)
        if not self.normalize:
            return torch.sigmoid(k_f), torch.sigmoid(k_i) * h_tilde  # f_t, i_t ⊙ h̃_t
        # f and i both round to 0 in float32 below k = -104, and f / (f + i) is then 0/0. Far below 0,
        # sigmoid(k) = e^k (1 - e^k + ...) and the ratio depends only on k_f - k_i, so where both gates are below
        # e^floor (floor = log eps - 2, -17.9 in float32) both k are first raised by the same shift, to max = floor:
        # the ratio is unchanged to within eps / 7, and its gradient with respect to the shift is as small (no_grad).
        # 16-bit floats are raised to float32 here: the division's gradient, h̃ / (f + i), would overflow float16
        dtype = k_f.dtype
        if torch.finfo(dtype).bits < 32:
            k_f, k_i = k_f.float(), k_i.float()
        with torch.no_grad():
            floor = math.log(torch.finfo(k_f.dtype).eps) - 2
            shift = torch.relu(floor - torch.maximum(k_f, k_i))  # (..., H): 0 wherever a gate is above e^floor
        f, i = torch.sigmoid(k_f + shift), torch.sigmoid(k_i + shift)  # f_t, i_t (both scaled by ~e^shift)
        total = f + i
        return (f / total).to(dtype), (i / total * h_tilde).to(dtype)  # f'_t, i'_t ⊙ h̃_t

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.normalize else ", normalize=False")


class SLSTMCell(RecurrentCell):
    """sLSTM (Beck et al. 2024, xLSTM), NX-AI/xlstm's gate order i, f, z, o:

        ĩ_t = W_i x_t + R_i h_{t-1} + b_i               input gate, exponential:  i_t = exp(ĩ_t)
        f̃_t = W_f x_t + R_f h_{t-1} + b_f               forget gate:              f_t = sigmoid(f̃_t)
        z_t = tanh(W_z x_t + R_z h_{t-1} + b_z)          cell input
        o_t = sigmoid(W_o x_t + R_o h_{t-1} + b_o)       output gate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ z_t                 cell state
        n_t = f_t ⊙ n_{t-1} + i_t                       normaliser state
        h_t = o_t ⊙ c_t / n_t                           hidden state

    exp(ĩ_t) overflows, so the cell carries a stabiliser m_t and c, n scaled by exp(-m_t) (the ratio c/n,
    hence h, is unchanged):
        m_t  = max(log f_t + m_{t-1}, ĩ_t)              (m_t = ĩ_t where n_{t-1} = 0, the first step)
        i'_t = exp(ĩ_t - m_t),  f'_t = exp(log f_t + m_{t-1} - m_t)
        c_t  = f'_t ⊙ c_{t-1} + i'_t ⊙ z_t,   n_t = f'_t ⊙ n_{t-1} + i'_t,   h_t = o_t ⊙ c_t / n_t

    Heads: R_* is block-diagonal, num_heads blocks of D = H / num_heads; unit u of head k sees only its
    head's D units of h_{t-1}. Parameters as torch.nn.LSTM's with H_rec = D: weight_ih (4H, I),
    weight_hh (4H, D) (row g*H + k*D + u: gate g, head k, unit u), bias_ih, bias_hh (4H) (b = b_ih + b_hh).
    State (h, c, n, m), each (B, H). h_t = o_t ⊙ (a weighted mean of z_1 .. z_t) is bounded by 1; c_t is not.

    Example:
        >>> cell = SLSTMCell(1, 20, num_heads=4)
        >>> h, c, n, m = cell(torch.ones(16, 1))        # (16, 20) each
    """

    num_gates = 4
    forget_gate = 1
    reference_init = "uniform3"  # the LSTM's, U(-sqrt(3/H), sqrt(3/H))

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, num_heads: int = 1, device=None,
                 dtype=None, *, init: str = "torch", forget_bias: float | None = None):
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_heads", num_heads)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} must be a multiple of num_heads={num_heads}")
        self.num_heads = num_heads
        super().__init__(input_size, hidden_size, bias, device, dtype, recurrent_size=hidden_size // num_heads,
                         init=init, forget_bias=forget_bias)
        self._built()

    @property
    def state_sizes(self) -> tuple[int, int, int, int]:
        return (self.hidden_size,) * 4  # h, c, n, m

    def input_projection(self, x: Tensor, weights=None) -> Tensor:
        """W x + b_ih + b_hh: (..., I) -> (..., 4H)."""
        w = self if weights is None else weights
        bias = None if w.bias_ih is None else w.bias_ih + w.bias_hh
        return F.linear(x, w.weight_ih, bias)

    def _step_views(self, w: Weights) -> dict[str, Tensor]:
        """W_hh as the step's einsum reads it: (4, NH, D, D), gate, head, unit, input unit."""
        size = self.hidden_size // self.num_heads
        return {"weight_hh_heads": w.weight_hh.view(4, self.num_heads, size, size)}

    def step(self, x_proj: Tensor, state: State, noise: Noise | None = None, weights=None) -> State:
        w = self.own_weights() if weights is None else weights
        h, c, n, m = state  # (B, H) each
        heads, size = self.num_heads, self.hidden_size // self.num_heads
        r = torch.einsum("bkj,gkuj->bgku", h.unflatten(-1, (heads, size)),  # (B, NH, D)
                         w.weight_hh_heads)  # (4, NH, D, D) -> (B, 4, NH, D)
        i_tilde, f_tilde, z_tilde, o_tilde = (x_proj + r.flatten(1)).chunk(4, dim=-1)  # (B, H) each
        log_f = F.logsigmoid(f_tilde)
        z = torch.tanh(z_tilde)
        o = torch.sigmoid(o_tilde)
        m_next = torch.where(n == 0, i_tilde, torch.maximum(log_f + m, i_tilde))
        i = torch.exp(i_tilde - m_next)  # i'_t
        # f'_t <= 1 wherever n_{t-1} > 0. On the first step (m_t = ĩ_t) it is f_t e^(m_{t-1} - ĩ_t), which overflows
        # where ĩ_t is far below 0, and inf * c_{t-1} = inf * 0 is NaN: capped there at e^(log(max float) / 2)
        f = torch.exp(torch.clamp(log_f + m - m_next, max=_half_log_max(m.dtype)))  # f'_t
        c_next = f * c + i * z
        n_next = f * n + i
        h_next = o * c_next / n_next
        return h_next, c_next, n_next, m_next

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", num_heads={self.num_heads}" if self.num_heads > 1 else "")

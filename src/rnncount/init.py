"""Initialisation schemes for the cells' parameters.

    torch       every weight and bias ~ U(-k, k), k = 1/sqrt(H)        (torch.nn's default)
    reference   the counting reference's choice for each cell:
                  LSTM: every weight and bias ~ U(-k, k), k = sqrt(3/H)
                  GRU, RNN: nn.Linear's default for each map, k = 1/sqrt(fan_in)
                  (fan_in = input_size for W_ih, b_ih; the recurrent width for W_hh, b_hh)
    orthogonal  torch's default, then each gate's block of W_hh made orthogonal
    identity    torch's default, then each gate's block of W_hh the identity and every bias 0
                (the IRNN of Le et al. 2015: a ReLU RNN that starts out adding its inputs up)

`forget_bias` (LSTM only) then sets the forget gate's total bias, b_if + b_hf, to that value
(b_if = value, b_hf = 0), as Jozefowicz et al. 2015 and Keras' unit_forget_bias do.

Variants' parameters come after torch.nn's, so the same seed gives a variant the plain cell's
weights: peephole weights (weight_ci, weight_cf, weight_co) ~ U(-k, k) with the scheme's LSTM bound
(sqrt(3/H) for reference, 1/sqrt(H) otherwise); layer-norm gains (ln_gain_*) start at 1 and shifts
(ln_bias_*) at 0, so a layer-normalised cell starts as plain normalisation (Ba et al. 2016).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SCHEMES = ("torch", "reference", "orthogonal", "identity")


def initialize_(cell: nn.Module, scheme: str = "torch", forget_bias: float | None = None,
                weights: dict[str, Tensor] | None = None) -> None:
    """Initialise a cell's parameters in place (see the module docstring for the schemes).

    weights: the cell's parameters by its own names (weight_ih, ...), in the cell's order; by default
    its own. A layer, which owns its cells' parameters under torch.nn's names, passes them here.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    weights = dict(cell.named_parameters()) if weights is None else weights
    if not weights:
        return  # a layer's cell: its parameters live on the layer, which initialises them
    hidden = cell.hidden_size
    torch_names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")  # torch.nn's parameters
    own = [(name, p) for name, p in weights.items() if name in torch_names]
    uniform3 = scheme == "reference" and cell.reference_init == "uniform3"
    with torch.no_grad():
        if uniform3:
            k = _uniform3_bound(hidden)
            for _, p in own:
                p.uniform_(-k, k)
        elif scheme == "reference":
            recurrent_width = weights["weight_hh"].size(1)
            fan_in = {"weight_ih": cell.input_size, "bias_ih": cell.input_size, "weight_hh": recurrent_width,
                      "bias_hh": recurrent_width, "weight_hr": hidden}
            for name, p in own:
                k = _bound(fan_in[name])
                p.uniform_(-k, k)
        else:
            k = _bound(hidden)
            for _, p in own:
                p.uniform_(-k, k)
        if scheme == "orthogonal":
            for block in weights["weight_hh"].split(hidden, dim=0):  # (H, H_in) per gate
                nn.init.orthogonal_(block)
        # the variants' parameters last, so that a variant starts from the plain cell's weights (same seed)
        k = _uniform3_bound(hidden) if uniform3 else _bound(hidden)
        for name, p in weights.items():
            if name.startswith("ln_gain"):
                p.fill_(1.0)
            elif name.startswith("ln_bias"):
                p.zero_()
            elif name not in torch_names:  # peephole weights
                p.uniform_(-k, k)
        if scheme == "identity":
            for block in weights["weight_hh"].split(hidden, dim=0):  # (H, H_in) per gate
                nn.init.eye_(block)
            for name in ("bias_ih", "bias_hh"):
                if weights.get(name) is not None:
                    weights[name].zero_()
        if forget_bias is not None:
            if cell.forget_gate is None:
                raise ValueError(f"forget_bias applies to LSTM cells only, not {type(cell).__name__}")
            if weights.get("bias_ih") is None:
                raise ValueError("forget_bias needs bias=True")
            gate = slice(cell.forget_gate * hidden, (cell.forget_gate + 1) * hidden)
            weights["bias_ih"][gate] = forget_bias
            weights["bias_hh"][gate] = 0.0


def _bound(fan: int) -> float:
    """1/sqrt(fan), torch.nn's uniform bound; 0 for an empty fan (torch.nn's cells allow size 0)."""
    return 1.0 / math.sqrt(fan) if fan > 0 else 0.0


def _uniform3_bound(hidden: int) -> float:
    """sqrt(3/H), the counting reference's LSTM bound."""
    return math.sqrt(3.0 / hidden) if hidden > 0 else 0.0

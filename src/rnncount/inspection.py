"""What a trained counter's units do over one sequence, and which unit tracks the running count.

    trace = run_trace(model, "0110100")        # every unit's h_t (and c_t for the LSTM), the count
    best = best_unit(trace)                    # the unit whose state correlates best with the count

The correlation is Pearson's r between a unit's state over the steps, s_1 .. s_T, and the running
count n_t = x_1 + ... + x_t, computed in float64; the best unit is the one with the largest |r|
(a unit may count downwards). It is undefined when the count never changes (all 0s) or the unit is
constant; such units are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .data import encode
from .layers import LSTM, SLSTM


@dataclass
class Trace:
    """One sequence through a counter: every step of the last layer."""

    sequence: str
    count: Tensor  # (T,) the running number of 1s
    hidden: Tensor  # (T, H) h_t
    cell: Tensor | None  # (T, H) c_t (LSTM, sLSTM), else None
    prediction: Tensor  # (T,) the head's count after each step


@dataclass
class BestUnit:
    state: str  # "h" or "c"
    unit: int
    correlation: float  # Pearson's r, in [-1, 1]


@torch.no_grad()
def run_trace(model: nn.Module, sequence: str) -> Trace:
    """Run `model` (a Counter) over one sequence of 0s and 1s, keeping every step's states."""
    inputs = encode(sequence).unsqueeze(0).to(next(model.parameters()).device)  # (1, T, 1)
    was_training = model.training
    model.eval()
    if isinstance(model.rnn, (LSTM, SLSTM)):  # the sLSTM's c_t is the stabilised one, c_t exp(-m_t)
        hidden, _, cell = model.rnn(inputs, return_cell_states=True)  # (1, T, H) each
        cell = cell[0].cpu()
    else:
        hidden, _ = model.rnn(inputs)
        cell = None
    prediction = model(inputs, every_step=True)[0]  # (T,)
    model.train(was_training)
    return Trace(sequence, inputs[0, :, 0].cumsum(0).cpu(), hidden[0].cpu(), cell, prediction.cpu())


def correlations(states: Tensor, count: Tensor) -> Tensor:
    """Pearson's r of each column of states (T, H) with count (T,), in float64; NaN where undefined."""
    s = states.double() - states.double().mean(0)  # (T, H)
    n = count.double() - count.double().mean()  # (T,)
    denominator = s.norm(dim=0) * n.norm()
    return torch.where(denominator > 0, (n @ s) / denominator, torch.full_like(denominator, float("nan")))


def best_unit(trace: Trace) -> BestUnit | None:
    """The unit (of h, or of c for the LSTM) whose state correlates best with the count; None if none can."""
    best = None
    for name, states in (("h", trace.hidden), ("c", trace.cell)):
        if states is None:
            continue
        for unit, r in enumerate(correlations(states, trace.count).tolist()):
            if r == r and (best is None or abs(r) > abs(best.correlation)):  # r == r: not NaN
                best = BestUnit(name, unit, r)
    return best

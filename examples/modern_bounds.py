"""What a trained minGRU or minLSTM counter can output at any length, read off its weights (docs/modern-cells.md).

    python examples/modern_bounds.py runs/modern/generalize/mingru-seed0/model.pt [...]

Its gates see x_t only, and x_t is 0 or 1: every unit does one of two affine maps per step,
h -> a^0 h + b^0 after a 0 and h -> a^1 h + b^1 after a 1 (cell.coefficients). Printed per model:
- a^0, a^1 (over the units: min and max): how much of h a step keeps;
- with a < 1 (minGRU, normalised minLSTM) h stays in the interval spanned by h_0 = 0 and each map's fixed
  point b / (1 - a), so the prediction w · h_T + b_head lies in an interval fixed by the weights: the largest
  count the model can ever output, at any length;
- with a = 1 (the unnormalised minLSTM with forget bias 20: sigmoid(20) is 1.0 in float32) h_T = n_0 b^0 + n_1 b^1,
  so the prediction is b_head + n_0 (w · b^0) + n_1 (w · b^1): exact iff w · b^0 = 0 and w · b^1 = 1; what
  each 0 and each 1 add, and the error that makes after 500 zeros and 500 ones.
"""

import sys

import torch

from rnncount.checkpoint import load_model


@torch.no_grad()
def describe(path: str) -> str:
    model, payload = load_model(path)
    cell = model.rnn.cells[0]
    if not hasattr(cell, "coefficients") or model.rnn.num_layers != 1:
        return f"{path}: not a one-layer minGRU or minLSTM"
    weights = model.rnn.cell_weights(0)  # the layer holds its cells' weights
    a, b = cell.coefficients(*cell.gate_inputs(torch.tensor([[0.0], [1.0]]), weights))  # (2, H): rows x = 0, x = 1
    w, bias = model.head.weight[0], model.head.bias[0]
    line = (f"{path} ({payload['model_config']['cell']}): a^0 in [{a[0].min():.6f}, {a[0].max():.6f}], "
            f"a^1 in [{a[1].min():.6f}, {a[1].max():.6f}]")
    if bool((a == 1).all()):
        per_zero, per_one = (w @ b[0]).item(), (w @ b[1]).item()
        return (line + f"; a = 1 exactly: each 0 adds {per_zero:.3g}, each 1 adds {per_one:.6f} to the count; "
                f"after 500 zeros and 500 ones the error is {500 * per_zero + 500 * (per_one - 1):.3g}")
    fixed = b / (1 - a)  # (2, H): where each map would take h if applied forever
    low = torch.minimum(fixed.min(0).values, torch.zeros_like(w))
    high = torch.maximum(fixed.max(0).values, torch.zeros_like(w))
    reach = torch.stack([w * low, w * high])  # (2, H): each unit's contribution at either end
    smallest, largest = bias + reach.min(0).values.sum(), bias + reach.max(0).values.sum()
    return line + f"; outputs bounded to [{smallest:.2f}, {largest:.2f}] at every length"


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(describe(argument))

"""Where a trained counter's error at long lengths comes from: each step's increment, in float32 and float64.

    python examples/count_precision.py runs/count10k/generalize/lstm-seed0/model.pt [more models...]

For each model: the norm of W_hh; the head's output on all-1s and all-0s sequences, its increment
per step (ŷ_t - ŷ_(t-1)) averaged over the steps 1-20 (what training saw), 20-1,000,
1,000-10,000 and 10,000-100,000, minus the true increment (1 for a 1, 0 for a 0), in float32 and in float64 (the
same weights, so the difference between the two is float32's rounding alone); and the accuracy and
MAE at length 10,000 on 200 fresh sequences in both precisions.

In float32 a forget gate of sigmoid(20 + ...) is exactly 1.0; in float64 it is 1 - 2e-9, which
would leak c * 2e-9 of the cell state every step (1e-5 per step once c is 5,000) and blur the
comparison. So the float64 copy gets the forget gate float32 computes: where every forget gate of
the float32 model is exactly 1 for both inputs, its forget bias is raised by 1,000 (sigmoid = 1.0).
"""

import argparse
import copy

import torch

from rnncount.checkpoint import load_model
from rnncount.generalize import chunk_states, generalization

MARKS = (1, 20, 1000, 10_000, 100_000)


def outputs_at_marks(model, bit: int) -> list[float]:
    """The head's output after MARKS[i] steps of a constant sequence of `bit` (float64 sums of each segment)."""
    dtype = next(model.parameters()).dtype
    outputs, state, done = [], None, 0
    for mark in MARKS:
        inputs = torch.full((1, mark - done, 1), float(bit), dtype=dtype)
        for _, state in chunk_states(model.rnn, inputs, chunk=1000, state=state):
            pass
        done = mark
        read = state[1] if model.config.readout == "c" else state[0]
        outputs.append(model.head(read[-1]).item())
    return outputs


def forget_gate_is_one(model) -> bool:
    """True if the float32 model's forget gates are all exactly 1.0 at the first step, for a 0 and for a 1."""
    hidden = model.rnn.hidden_size
    for bit in (0.0, 1.0):
        gates = (model.rnn.weight_ih_l0[:, 0] * bit + model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0).detach()
        if not (torch.sigmoid(gates[hidden:2 * hidden]) == 1.0).all():
            return False
    return True


def in_float64(model):
    """A float64 copy; its forget gates pinned to 1 where float32's are exactly 1 (see the docstring)."""
    copied = copy.deepcopy(model).double()
    if forget_gate_is_one(model):
        with torch.no_grad():
            hidden = copied.rnn.hidden_size
            copied.rnn.bias_ih_l0[hidden:2 * hidden] += 1000.0
    return copied


def spread_of_increments(model, bit: int) -> float:
    """sum_j |w_j delta_j|: how much the units' increments for `bit` cancel in the head (1 and 0 at best).

    delta_j is c_j after one step from the zero state (with W_hh near 0 every step adds the same);
    float32 rounds each c_j to its own grid, so the rounding error grows with this sum.
    """
    copied = in_float64(model)
    _, (_, c) = copied.rnn(torch.full((1, 1, 1), float(bit), dtype=torch.float64))
    return (copied.head.weight[0] * c[-1, 0]).abs().sum().item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| model | norm of W_hh | dtype | increment error for a 1, steps 1-20 / 20-1k / 1k-10k / 10k-100k "
          "| for a 0, the same | sum_j abs(w_j delta_j) for a 1 / a 0 "
          "| accuracy at 10,000 | MAE at 10,000 |")
    print("|---|---|---|---|---|---|---|---|")
    for path in args.models:
        model, _ = load_model(path)
        model.eval()
        norm = torch.linalg.matrix_norm(model.rnn.weight_hh_l0.detach()).item()
        spread = " / ".join(f"{spread_of_increments(model, bit):.3g}" for bit in (1, 0)) if (
            model.config.readout == "c") else ""
        for name, version in (("float32", model), ("float64", in_float64(model))):
            errors = []
            for bit in (1, 0):
                out = outputs_at_marks(version, bit)
                errors.append(" / ".join(f"{(out[i + 1] - out[i]) / (MARKS[i + 1] - MARKS[i]) - bit:+.2e}"
                                         for i in range(len(MARKS) - 1)))
            row = generalization(version, [10_000], samples=args.samples)[0]
            if name == "float64":
                name += ", f = 1" if forget_gate_is_one(model) else ""
            print(f"| {path} | {norm:.2e} | {name} | {errors[0]} | {errors[1]} | {spread} | "
                  f"{row['accuracy']:.3f} | {row['mae']:.4f} |")


if __name__ == "__main__":
    main()

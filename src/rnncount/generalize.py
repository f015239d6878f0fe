"""Counting beyond the training length: accuracy at many lengths, and the recipes that make it hold.

    rows = generalization(model, [20, 40, 100, 200, 1000])   # one dict per length: accuracy, MAE, loss
    counts = count_in_chunks(model, inputs)                  # model(inputs), in memory that does not grow with T

Each length gets fresh data from the reference distribution (rnncount.data), drawn from its own
generator seeded with `seed`, so every model is scored on the same sequences. The scoring keeps
no per-step states: the layer runs CHUNK steps at a time and hands on only its state, so lengths
of 100,000 fit in memory (the sequences themselves are held a block at a time, a byte per element).

A recipe is a named bundle of ModelConfig and TrainConfig settings, per cell; flags typed on the
command line override it. `reference` is the reference's experiment, unchanged. `generalize` is
the best found here for counting far past the training length (see README, "Counting far beyond
the training length"); the others are its ingredients one at a time, kept for the comparison.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import counting_blocks
from .model import ModelConfig, family
from .train import TrainConfig, _progress

CHUNK = 256  # time steps the layer runs at once when scoring: its scan keeps each step's state of a chunk only

DEFAULT_LENGTHS = (20, 40, 100, 200, 1000)

# What every cell gets from a recipe (model and training settings), then what one cell gets on top.
_LONG = dict(min_length=1, step_loss=1.0, lr=3e-3, lr_end=1e-6, epochs=10)
RECIPES: dict[str, dict[str, dict]] = {
    "reference": {"all": {}},
    "varlen": {"all": dict(min_length=1)},  # variable training lengths alone
    "generalize": {
        "all": _LONG,
        "lstm": dict(readout="c", forget_bias=20.0, recurrent_decay=3.0),
        "rnn": dict(nonlinearity="relu", init="identity"),
        "slstm": dict(readout="c", forget_bias=20.0, recurrent_decay=3.0),  # the LSTM's, for the same reasons
        "minlstm": dict(forget_bias=20.0),  # f = 1: unnormalised, h adds i ⊙ h̃ at every step
    },
    # generalize's LSTM with W_hh's decay 100 instead of 3: exact at 10,000 (docs/counting-far.md)
    "far": {"all": _LONG, "lstm": dict(readout="c", forget_bias=20.0, recurrent_decay=100.0)},
}
RECIPE_HELP = {
    "reference": "the reference's experiment, unchanged",
    "varlen": "training lengths drawn from [1, length]",
    "generalize": "variable lengths, the running count's loss at every step, lr 3e-3 decayed to 1e-6 over 10 "
                  "epochs; LSTM: readout from c, forget bias 20 (f rounds to 1), recurrent weight decay; "
                  "RNN: ReLU, identity recurrence (IRNN); sLSTM: as the LSTM; minLSTM: forget bias 20",
    "far": "generalize with the LSTM's recurrent weight decay at 100: W_hh ends near 0 and every step adds a "
           "constant, exact at length 10,000",
}


def recipe_settings(recipe: str, cell: str) -> dict:
    """The settings a recipe gives a cell (a variant gets its family's), as ModelConfig and TrainConfig names."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    return {**RECIPES[recipe].get("all", {}), **RECIPES[recipe].get(family(cell), {})}


def split_settings(settings: dict) -> tuple[dict, dict]:
    """{name: value} -> (ModelConfig's, TrainConfig's)."""
    model_names, train_names = {f.name for f in fields(ModelConfig)}, {f.name for f in fields(TrainConfig)}
    unknown = set(settings) - model_names - train_names
    if unknown:
        raise ValueError(f"unknown settings {', '.join(sorted(unknown))}")
    return ({k: v for k, v in settings.items() if k in model_names},
            {k: v for k, v in settings.items() if k in train_names})


def generalization(model: nn.Module, lengths=DEFAULT_LENGTHS, samples: int = 1000, seed: int = 12345,
                   device: torch.device | str = "cpu", chunk: int = CHUNK, progress: bool = False) -> list[dict]:
    """Loss, exact-count accuracy and MAE at each length: [{"length", "samples", "loss", "accuracy", "mae"}].

    The same numbers as train.evaluate on counting_data(samples, length, seeded generator), in
    memory bounded by one block of sequences' bits and `chunk` steps of states. progress=True shows
    a tqdm bar over all the steps to run (hidden off a terminal).
    """
    was_training = model.training
    model.eval()
    blocks = {length: max(1, min(1000, max(200, 200_000 // length))) for length in lengths}  # sequences at once
    bar = _progress(None, "generalize", progress, total=sum(samples * length for length in lengths), unit="step",
                    unit_scale=True)  # counts sequence-steps
    rows = []
    for length in lengths:
        totals = torch.zeros(3, dtype=torch.float64)  # squared error, correct, absolute error
        for bits, counts in counting_blocks(samples, length, torch.Generator().manual_seed(seed), blocks[length]):
            counts = counts.to(device)
            predictions = count_in_chunks(model, bits.to(device), chunk=chunk,
                                          on_chunk=None if bar is None else lambda steps: bar.update(steps * len(bits)))
            totals += torch.stack([F.mse_loss(predictions, counts, reduction="sum"),
                                   (predictions.round() == counts).sum(),
                                   (predictions - counts).abs().sum()]).double().cpu()
        squared, correct, absolute = (totals / samples).tolist()
        rows.append({"length": length, "samples": samples, "loss": squared, "accuracy": correct, "mae": absolute})
    if bar is not None:
        bar.close()
    model.train(was_training)
    return rows


@torch.no_grad()
def count_in_chunks(model: nn.Module, inputs: Tensor, lengths: Tensor | None = None, chunk: int = CHUNK,
                    on_chunk=None) -> Tensor:
    """A Counter's predicted counts, model(inputs, lengths), with the layer run `chunk` steps at a time.

    inputs (B, T) or (B, T, 1), 0/1 of any dtype; lengths (B,) or None when all are T -> (B,).
    Only the layer's state passes from one chunk to the next, so memory does not grow with T.
    on_chunk(steps), if given, is called after each chunk (for a progress bar).
    """
    done, state = 0, None
    for end, state in chunk_states(model.rnn, inputs, lengths, chunk):
        if on_chunk is not None:
            on_chunk(end - done)
        done = end
    read = state[1] if model.config.readout == "c" else state[0]  # (L, B, H): h_T or c_T of every layer
    return model.head(read[-1]).squeeze(-1)  # last layer's: (B, H) -> (B,)


def chunk_states(layer: nn.Module, inputs: Tensor, lengths: Tensor | None = None, chunk: int = CHUNK,
                 state: tuple[Tensor, ...] | None = None) -> Iterator[tuple[int, tuple[Tensor, ...]]]:
    """(steps run so far, the layer's state there) after each chunk: (h_n,) or (h_n, c_n), each (L, B, H).

    A sequence that has ended (lengths) keeps its state through the chunks after its end. `state`
    (as yielded) continues from there instead of from zeros.
    """
    if inputs.dim() == 2:
        inputs = inputs.unsqueeze(-1)  # (B, T) -> (B, T, 1)
    dtype = next(layer.parameters()).dtype
    steps = inputs.size(1)
    for start in range(0, steps, chunk):
        piece = inputs[:, start:start + chunk].to(dtype)  # (B, t, 1)
        hx = None if state is None else (state if len(state) > 1 else state[0])
        if lengths is None:
            _, new = layer(piece, hx)
        else:
            left = (lengths.to(inputs.device) - start)  # (B,) steps of each sequence from here on
            _, new = layer(piece, hx, lengths=left.clamp(1, piece.size(1)).cpu())
        new = new if isinstance(new, tuple) else (new,)
        if lengths is not None and state is not None:
            ended = (left <= 0)[None, :, None]  # (1, B, 1)
            new = tuple(torch.where(ended, old, n) for old, n in zip(state, new))
        state = new
        yield start + piece.size(1), state


def generalization_table(results: dict[str, list[dict]]) -> str:
    """Markdown: one row per length, accuracy and MAE for each model (results maps a label to its rows)."""
    labels = list(results)
    lengths = list(dict.fromkeys(row["length"] for rows in results.values() for row in rows))
    head = "| length | " + " | ".join(f"{label} accuracy | {label} MAE" for label in labels) + " |"
    lines = [head, "|---" * (2 * len(labels) + 1) + "|"]
    for length in lengths:
        cells = []
        for label in labels:
            row = next((r for r in results[label] if r["length"] == length), None)
            cells += [f"{row['accuracy']:.3f}", f"{row['mae']:.3f}"] if row else ["", ""]
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

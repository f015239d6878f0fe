"""Counting beyond the training length: accuracy at many lengths, and the recipes that make it hold.

    rows = generalization(model, [20, 40, 100, 200, 1000])   # one dict per length: accuracy, MAE, loss

Each length gets fresh data from the reference distribution (rnncount.data), drawn from its own
generator seeded with `seed`, so every model is scored on the same sequences.

A recipe is a named bundle of ModelConfig and TrainConfig settings, per cell; flags typed on the
command line override it. `reference` is the reference's experiment, unchanged. `generalize` is
the best found here for counting far past the training length (see README, "Counting far beyond
the training length"); the others are its ingredients one at a time, kept for the comparison.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from .data import counting_data
from .model import ModelConfig, family
from .train import TrainConfig, evaluate

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
}
RECIPE_HELP = {
    "reference": "the reference's experiment, unchanged",
    "varlen": "training lengths drawn from [1, length]",
    "generalize": "variable lengths, the running count's loss at every step, lr 3e-3 decayed to 1e-6 over 10 "
                  "epochs; LSTM: readout from c, forget bias 20 (f rounds to 1), recurrent weight decay; "
                  "RNN: ReLU, identity recurrence (IRNN); sLSTM: as the LSTM; minLSTM: forget bias 20",
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
                   device: torch.device | str = "cpu") -> list[dict]:
    """Loss, exact-count accuracy and MAE at each length: [{"length", "samples", "loss", "accuracy", "mae"}]."""
    rows = []
    for length in lengths:
        data = counting_data(samples, length, torch.Generator().manual_seed(seed)).to(device)
        batch = max(1, min(1000, 200_000 // length))  # the scan keeps every step's state: bound its memory
        rows.append({"length": length, "samples": samples, **evaluate(model, data, batch_size=batch)})
    return rows


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

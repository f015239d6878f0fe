"""Recipes: named bundles of ModelConfig and TrainConfig settings, per cell.

    settings = recipe_settings("generalize", "lstm")   # {"min_length": 1, "readout": "c", ...}
    model, train = split_settings(settings)           # ModelConfig's names, TrainConfig's names

A recipe is a named bundle of ModelConfig and TrainConfig settings, per cell; flags typed on the
command line override it. `reference` is the reference's experiment, unchanged. `generalize` is
the best found here for counting far past the training length (see docs/generalization.md); the
others are its ingredients one at a time, kept for the comparison.
"""

from __future__ import annotations

from dataclasses import fields

from .model import ModelConfig, family
from .train import TrainConfig

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

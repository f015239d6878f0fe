"""Recipes: what each gives each cell, that typed flags override them, and what the far recipe does to W_hh."""

import pytest
import torch

from rnncount.cli import build_parser, configs_from
from rnncount.model import ModelConfig
from rnncount.recipes import RECIPES, recipe_settings, split_settings
from rnncount.train import TrainConfig, Trainer


def test_the_reference_recipe_is_the_defaults():
    assert all(not recipe_settings("reference", cell) for cell in ("lstm", "gru", "rnn"))
    assert set(RECIPES) >= {"reference", "generalize"}
    for argv in (["train"], ["train", "--recipe", "reference"]):
        model, train = configs_from(build_parser().parse_args(argv), "lstm")
        assert model == ModelConfig() and train == TrainConfig()


def test_a_variant_gets_its_familys_recipe():
    assert recipe_settings("generalize", "peephole-lstm") == recipe_settings("generalize", "lstm")
    assert recipe_settings("generalize", "layernorm-gru") == recipe_settings("generalize", "gru")
    assert recipe_settings("generalize", "peephole-lstm")["readout"] == "c"


def test_recipe_far_is_generalize_with_a_stronger_recurrent_decay_for_the_lstm_only():
    far, general = recipe_settings("far", "lstm"), recipe_settings("generalize", "lstm")
    assert far["recurrent_decay"] > general["recurrent_decay"]
    assert {k: v for k, v in far.items() if k != "recurrent_decay"} == {
        k: v for k, v in general.items() if k != "recurrent_decay"}
    assert "far" not in RECIPES["generalize"] and RECIPES["generalize"]["lstm"]["recurrent_decay"] == 3.0


def test_recipe_far_leaves_w_hh_near_zero():
    """Two epochs of 40 batches: W_hh's norm ends more than 20 times below generalize's, from the same start."""
    norms = {}
    for recipe in ("generalize", "far"):
        model, train = split_settings(recipe_settings(recipe, "lstm"))
        config = TrainConfig(**{**train, "train_samples": 640, "test_samples": 16, "epochs": 2})
        trainer = Trainer(ModelConfig(**model, hidden_size=6), config)
        list(trainer.epochs())
        norms[recipe] = torch.linalg.matrix_norm(trainer.model.rnn.weight_hh_l0.detach()).item()
    assert norms["far"] < norms["generalize"] / 20


def test_split_settings_sorts_names_into_the_two_configs_and_refuses_others():
    model, train = split_settings({"readout": "c", "lr": 0.01, "hidden_size": 3})
    assert model == {"readout": "c", "hidden_size": 3} and train == {"lr": 0.01}
    with pytest.raises(ValueError, match="unknown settings colour"):
        split_settings({"colour": "red"})
    with pytest.raises(ValueError, match="unknown recipe 'magic'"):
        recipe_settings("magic", "lstm")


def test_typed_flags_override_the_recipe():
    model, train = configs_from(build_parser().parse_args(["train", "--recipe", "generalize", "--lr", "0.5"]), "lstm")
    assert train.lr == 0.5 and train.lr_end == recipe_settings("generalize", "lstm")["lr_end"]
    assert model.readout == "c"

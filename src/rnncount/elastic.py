"""Elastic runs: under `torchrun --max-restarts N`, a restarted group resumes its run by itself.

When a process dies, torchrun stops the others and starts the whole group again with the same command line
and TORCHELASTIC_RESTART_COUNT one higher. `rnncount train --out DIR` then finds the model file rank 0 wrote
after the last complete epoch (atomically: a kill during a save leaves the one before) and goes on from
there: the data drawn again from the seed, the weights, optimizer and random states as that epoch left
them, so the result equals a run that was never interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from .checkpoint import CheckpointError, read_checkpoint
from .distributed import World
from .model import ModelConfig
from .train import TrainConfig, Trainer, load_state


def restart_count() -> int:
    """How many times torchrun has restarted this group (0 on its first start, and outside torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def resume_restarted(out: Path | None, model_config: ModelConfig, train_config: TrainConfig,
                     device: torch.device, world: World) -> Trainer | None:
    """On a restarted group: the Trainer saved in out/model.pt, if that is this run's; else None (start afresh).

    Rank 0 reads the file and sends its contents to every rank, so that all resume from the same epoch.
    """
    if restart_count() == 0:
        return None
    if out is None:  # the folder's name was the first start's time
        if world.is_main:
            print("rnncount train: restarted by torchrun without --out, so there is nothing to resume: "
                  "starting again", file=sys.stderr)
        return None
    state = world.agree(_saved_state(out / "model.pt", model_config, train_config) if world.is_main else None)
    if state is None:
        return None
    trainer = Trainer(model_config, train_config, device=device, world=world)
    load_state(trainer, state)
    if world.is_main:
        print(f"rnncount train: restarted by torchrun (restart {restart_count()}), resumed {out} from epoch "
              f"{len(trainer.history)} of {train_config.epochs}", file=sys.stderr)
    return trainer


def _saved_state(path: Path, model_config: ModelConfig, train_config: TrainConfig) -> dict | None:
    """The model file's contents if it is a checkpoint of a run with these settings, else None."""
    try:
        state = read_checkpoint(path)
    except CheckpointError:  # none yet (killed before the first epoch ended), or not a model file
        return None
    same = (state.get("model_config") == model_config.to_dict()
            and state.get("train_config") == train_config.to_dict())
    return state if same and "optimizer" in state else None

"""Model files: written atomically, read with torch.load(weights_only=True) and checked.

A model file (model.pt) is a dict of tensors and plain values only:
    format, version            "rnncount-counter", 1
    model_config, train_config  the dataclasses as dicts
    model, optimizer, rng       the Trainer's state (weights, Adam, random states: CUDA's too, trained on a GPU)
    epoch, metrics              epochs done and their metrics
    rank_rng                    under torchrun, every rank's torch random state, where recurrent dropout and
                                zoneout draw their masks (each rank the global batch's; "rng" holds rank 0's)
No code is unpickled on loading: weights_only=True refuses any pickle that would run some.
This module is the file format alone: training that writes these files after every epoch, and the
Trainer rebuilt from one (load_trainer), live in rnncount.train.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .files import write_atomically, write_json_atomically
from .model import Counter, saved_config

if TYPE_CHECKING:  # what the files are written from; rnncount.train reads them back into one (load_trainer)
    from .train import Trainer

FORMAT, VERSION = "rnncount-counter", 1


class CheckpointError(ValueError):
    """A model file that is missing, unreadable, not rnncount's, or of another configuration."""


def _save(path: Path, payload: dict) -> None:
    """A model file: the format marker and versions, then `payload`, written atomically."""
    stamped = {"format": FORMAT, "version": VERSION, "torch_version": str(torch.__version__), **payload}
    write_atomically(path, lambda file: torch.save(stamped, file))


def save_checkpoint(path: Path, trainer: "Trainer", rank_rng: list[torch.Tensor] | None = None) -> None:
    _save(path, {"model_config": trainer.model_config.to_dict(), "train_config": trainer.train_config.to_dict(),
                 **trainer.state_dict(), **({"rank_rng": rank_rng} if rank_rng is not None else {})})


def save_model(path: Path, model: Counter, note: str = "") -> None:
    """A model file for a model that was not trained here (rnncount.handmade): weights and config, no
    optimizer or metrics, so predict, evaluate, generalize and inspect read it and --resume refuses it."""
    _save(path, {"model_config": model.config.to_dict(), "model": model.state_dict(), "epoch": 0, "metrics": [],
                 "note": note})


def save_metrics(path: Path, trainer: "Trainer") -> None:
    """metrics.json: {"config": {...}, "epochs": [{"epoch": 1, "train_loss": ..., ...}, ...]}."""
    report = {"config": {**trainer.model_config.to_dict(), **trainer.train_config.to_dict()},
              "epochs": [m.to_dict() for m in trainer.history]}
    write_json_atomically(path, report)


def read_checkpoint(path: Path) -> dict:
    """Load and check a model file; raises CheckpointError with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a model file (try {path / 'model.pt'})")
    try:
        with warnings.catch_warnings():  # torch warns of pickles it may not read before it fails on one: ours says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt zip, truncated, random bytes, or a pickle that carries code
        raise CheckpointError(f"{path} is not a readable model file ({_load_failure(error)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnncount model file (no '{FORMAT}' format marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has model file version {payload.get('version')!r}; "
                              f"this rnncount reads version {VERSION}")
    return payload


def load_model(path: Path) -> tuple[Counter, dict]:
    """The trained Counter in a model file (eval mode) and the file's contents."""
    def build(payload: dict) -> tuple[Counter, dict]:
        from .train import TrainConfig  # imported here: rnncount.train imports this module
        if payload.get("train_config") is not None:  # a trained model's settings, checked as a run checks them
            TrainConfig(**payload["train_config"])  # (commands read its length, recipe and threads)
        model = Counter(saved_config(payload["model_config"]))
        model.load_state_dict(payload["model"])
        return model.eval(), payload
    return rebuild(path, build)


def rebuild(path: Path, build):
    """build(payload) for the checked model file at path; a payload that does not build is a CheckpointError."""
    payload = read_checkpoint(path)
    try:
        return build(payload)
    except CheckpointError:  # build's own verdict, already one line
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:  # missing keys, a list where
        # a dict belongs, wrong shapes or options
        raise CheckpointError(f"{path} does not fit its own configuration or this rnncount version "
                              f"({_first_line(error)})") from None


def _load_failure(error: BaseException) -> str:
    """torch.load's long message, cut to its reason (weights-only loading's own verdict where it gave one)."""
    if isinstance(error, KeyError):  # the unpickler's table of opcodes has no entry for the file's first bytes
        return "neither a zip archive nor a pickle: not a file torch.save wrote"
    if not isinstance(error, pickle.UnpicklingError):
        return _first_line(error)
    details = [line.strip().rpartition("WeightsUnpickler error:")[2].strip() for line in str(error).splitlines()[1:]]
    details = [d for d in details if d and not d.startswith(("Please file", "Check the documentation"))]
    verdict = "refused by weights-only loading, nothing in it was run"
    return verdict + (": " + details[0].split(". ")[0] if details else "")


def _first_line(error: BaseException, limit: int = 160) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""Training and evaluation of a Counter: MSE loss, Adam, accuracy = rounded output equals the count.

    trainer = Trainer(ModelConfig(cell="lstm"), TrainConfig(seed=0))
    for metrics in trainer.epochs():          # one EpochMetrics per epoch
        print(format_epoch(metrics, trainer.train_config.epochs))

A seed fixes everything: the data (its own generator), the initial weights (torch.manual_seed)
and the shuffling (its own generator); the same seed on the same machine gives the same losses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import checkpoint
from ._checks import check_nonnegative, check_nonnegative_int, check_positive, check_positive_int, check_seed
from .data import CountingData, counting_data
from .distributed import World
from .fast import eager
from .model import Counter, ModelConfig, saved_config


@dataclass
class TrainConfig:
    """The experiment's settings; the defaults are the reference's."""

    length: int = 20
    min_length: int | None = None  # variable training lengths in [min_length, length]
    train_samples: int = 10_000
    test_samples: int = 1_000
    batch_size: int = 16
    epochs: int = 10
    lr: float = 1e-3
    seed: int = 0
    clip_grad_norm: float | None = None  # rescale gradients whose total norm exceeds this
    # Beyond the reference (see rnncount.generalize); the defaults leave the reference's training as it is.
    step_loss: float = 0.0  # weight of the running count's MSE at every step, added to the final count's MSE
    lr_end: float | None = None  # cosine decay of the learning rate from lr to lr_end over all epochs
    curriculum: int = 0  # epochs over which the longest training sequence grows from min_length to length
    recurrent_decay: float = 0.0  # shrink the recurrent weights W_hh by lr * this after every step (decoupled)
    recipe: str = "reference"  # the name of the recipe these settings started from (rnncount.recipes)

    def __post_init__(self):
        for name in ("length", "train_samples", "test_samples", "batch_size", "epochs"):
            check_positive_int(name, getattr(self, name))
        if self.min_length is not None:
            check_positive_int("min_length", self.min_length)
            if self.min_length > self.length:
                raise ValueError(f"min_length must be <= length={self.length}, got {self.min_length}")
        check_positive("lr", self.lr)
        if self.clip_grad_norm is not None:
            check_positive("clip_grad_norm", self.clip_grad_norm)
        check_seed("seed", self.seed)
        check_nonnegative("step_loss", self.step_loss)
        check_nonnegative("recurrent_decay", self.recurrent_decay)
        if self.lr_end is not None and not 0 < self.lr_end <= self.lr:
            raise ValueError(f"lr_end must be a number in (0, lr={self.lr}], got {self.lr_end}")
        check_nonnegative_int("curriculum", self.curriculum)
        if self.curriculum and self.min_length is None:
            raise ValueError("curriculum needs variable training lengths: set min_length")

    def to_dict(self) -> dict:
        return asdict(self)


class NonFiniteError(ArithmeticError):
    """The loss or the gradients stopped being finite numbers: training diverged."""


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    test_mae: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def make_datasets(config: TrainConfig) -> tuple[CountingData, CountingData]:
    """The training and the test set, drawn one after the other from a generator seeded with config.seed."""
    generator = torch.Generator().manual_seed(config.seed)
    train = counting_data(config.train_samples, config.length, generator, config.min_length)
    test = counting_data(config.test_samples, config.length, generator, config.min_length)
    return train, test


@torch.no_grad()
def evaluate(model: nn.Module, data: CountingData, batch_size: int = 1000, world: World | None = None
             ) -> dict[str, float]:
    """Mean squared error, accuracy (rounded prediction == count) and mean absolute error over `data`.

    With several processes (`world`), each evaluates its share and the sums are added up.
    """
    world = world or World()
    was_training = model.training
    model.eval()
    device = data.inputs.device
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # squared error, correct, absolute error
    for index in world.share(torch.arange(len(data))).split(batch_size):
        inputs, counts, lengths = data.batch(index.to(device))
        predictions = model(inputs, lengths)
        totals += torch.stack([F.mse_loss(predictions, counts, reduction="sum"),
                               (predictions.round() == counts).sum(), (predictions - counts).abs().sum()]).double()
    model.train(was_training)
    squared, correct, absolute = (world.sum(totals) / len(data)).tolist()
    return {"loss": squared, "accuracy": correct, "mae": absolute}


class Trainer:
    """Trains one Counter; holds everything a checkpoint needs to resume exactly."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig,
                 data: tuple[CountingData, CountingData] | None = None, device: torch.device | str = "cpu",
                 world: World | None = None, compile: bool = False):
        self.model_config, self.train_config = model_config, train_config
        self.device, self.world = torch.device(device), world or World()
        train, test = data if data is not None else make_datasets(train_config)
        self.train_data, self.test_data = train.to(self.device), test.to(self.device)
        torch.manual_seed(train_config.seed)  # the initial weights
        self.model = Counter(model_config).to(self.device)
        self.model.rnn.compile_steps(compile)  # training steps through rnncount.fast
        self.network = self.world.wrap(self.model, self.device)  # what trains: the model, or DDP around it
        # foreach: one call per step for all parameters; on a CPU it computes bit for bit what the default
        # (one tensor at a time) computes, a little faster (fused=True is faster still but rounds differently)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr, foreach=True)
        self.shuffle = torch.Generator().manual_seed(train_config.seed)
        self.history: list[EpochMetrics] = []

    def epochs(self, progress: bool = False) -> Iterator[EpochMetrics]:
        """Train the remaining epochs, yielding each one's metrics as it ends."""
        while len(self.history) < self.train_config.epochs:
            yield self.train_epoch(progress)

    def train_epoch(self, progress: bool = False) -> EpochMetrics:
        config, data, world = self.train_config, self.train_data, self.world
        start = time.perf_counter()
        self.network.train()
        epoch = len(self.history) + 1
        order = torch.randperm(len(data), generator=self.shuffle)
        if epoch <= config.curriculum:  # only the sequences up to this epoch's longest length
            longest = config.min_length + math.ceil((config.length - config.min_length) * epoch / config.curriculum)
            order = order[data.lengths[order] <= longest]
        batches = order.split(config.batch_size)
        seen = max(len(order), 1)
        # Per batch only tensors are kept (no sync, no extra op): the squared errors, the predictions, and the loss
        # and gradient norms for the finiteness check, all read once after the epoch (see _check_finite).
        squares, predicted, targets, checks = [], [], [], []
        for number, index in enumerate(_progress(batches, f"Epoch {epoch}/{config.epochs}", progress), 1):
            share = world.share(index)  # this process's part of the global batch
            inputs, counts, lengths = data.batch(share.to(self.device))
            if config.lr_end is not None:
                self._set_lr((epoch - 1 + (number - 1) / len(batches)) / config.epochs)
            with _masks_of_the_global_batch(self.model, world, len(index)):
                if config.step_loss:
                    predictions, step_squared = _every_step(self.network, inputs, lengths)
                else:
                    predictions = self.network(inputs, lengths)
            squared = F.mse_loss(predictions, counts, reduction="sum")
            loss = squared / (len(index) / world.size)  # DDP averages over ranks: the global batch's MSE
            if config.step_loss:
                loss = loss + config.step_loss * step_squared / (len(index) / world.size)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip_grad_norm is not None:
                norms = [self._clip_gradients()]
            else:  # read by the finiteness check alone: each gradient's norm, one call, no total
                norms = torch._foreach_norm([p.grad for p in self.model.parameters() if p.grad is not None])
            checks.append((loss.detach(), norms))
            self.optimizer.step()
            if config.recurrent_decay:
                self._decay_recurrent_weights()
            squares.append(squared.detach())
            predicted.append(predictions.detach())
            targets.append(counts)
        _check_finite(checks, epoch)
        # the batches' squared errors added up in float64 one after another (cumsum on the CPU is sequential),
        # the sum the per-batch accumulation of earlier versions made, to the last bit
        squared = torch.stack(squares).cpu().double().cumsum(0)[-1] if squares else torch.zeros((), dtype=torch.float64)
        correct = (torch.cat(predicted).round() == torch.cat(targets)).sum() if predicted else torch.zeros(())
        totals = torch.stack([squared.to(self.device), correct.to(self.device, torch.float64)])
        squared, correct = (world.sum(totals) / seen).tolist()
        with eager(self.model.rnn):  # one test pass: compiling it would cost more than it saves
            test = evaluate(self.model, self.test_data, world=world)
        metrics = EpochMetrics(epoch, squared, correct, test["loss"], test["accuracy"], test["mae"],
                               time.perf_counter() - start)
        self.history.append(metrics)
        return metrics

    @torch.no_grad()
    def _decay_recurrent_weights(self) -> None:
        """W_hh <- (1 - lr * recurrent_decay) W_hh (decoupled weight decay, Loshchilov & Hutter 2019).

        A counter needs no recurrence but its own cell's self-loop: the less the gates see of h, the
        less they change as the count outgrows the lengths seen in training.
        """
        shrink = 1 - self.optimizer.param_groups[0]["lr"] * self.train_config.recurrent_decay
        for name, weight in self.model.rnn.named_parameters():
            if name.startswith("weight_hh_l"):  # every layer and direction's W_hh
                weight.mul_(max(shrink, 0.0))

    def _set_lr(self, progress: float) -> None:
        """Cosine decay: lr at progress 0 (the first batch), lr_end at 1 (after the last)."""
        config = self.train_config
        lr = config.lr_end + (config.lr - config.lr_end) * (1 + math.cos(math.pi * progress)) / 2
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _clip_gradients(self) -> Tensor:
        """The gradients' total norm, after rescaling them to at most clip_grad_norm if that is set."""
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        limit = self.train_config.clip_grad_norm
        if limit is not None:
            return torch.nn.utils.clip_grad_norm_(parameters, limit)
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in parameters]))

    def state_dict(self) -> dict:
        """Weights, optimizer, random states and metrics so far: all a resume needs."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"shuffle": self.shuffle.get_state(), "torch": torch.get_rng_state(),  # CUDA's: a GPU's masks
                    **({"cuda": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {})},
            "epoch": len(self.history),
            "metrics": [m.to_dict() for m in self.history],
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])  # tensors saved on any device land on self.device
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.shuffle.set_state(state["rng"]["shuffle"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.device.type == "cuda":  # saved on a GPU, resumed on one
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.history = [EpochMetrics(**m) for m in state["metrics"]]


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """optimizer.load_state_dict(state), the optimizer keeping its own implementation (foreach, fused).

    torch takes those flags from the saved param_groups too: a stacked run's member (fused Adam) resumed alone
    would train on fused, and a solo run's state would turn a stack's fused Adam into foreach. The runner
    decides how Adam computes (rnncount.stacked), not the file.
    """
    implementation = [{key: group[key] for key in ("foreach", "fused") if key in group}
                      for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, implementation):
        group.update(kept)


# ---- a run on disk: training that saves after every epoch, and the Trainer read back (rnncount.checkpoint) ------

def train_with_checkpoints(trainer: Trainer, out: Path, on_epoch=None, progress: bool = False) -> None:
    """Train the remaining epochs, writing model.pt and metrics.json after each; rank 0 alone writes.

    on_epoch(metrics) is called (on rank 0) after each epoch's files are written. If training
    diverges, the NonFiniteError says which epoch the model file still holds.
    """
    main_rank = trainer.world.is_main
    if main_rank and trainer.history:  # resumed: metrics.json catches up with model.pt, which a kill between
        checkpoint.save_metrics(out / "metrics.json", trainer)  # their two writes leaves one epoch ahead
    try:
        for metrics in trainer.epochs(progress=progress and main_rank):
            rank_rng = trainer.world.gather(torch.get_rng_state())  # every rank's masks go on as they were
            if main_rank:
                checkpoint.save_checkpoint(out / "model.pt", trainer, rank_rng)
                checkpoint.save_metrics(out / "metrics.json", trainer)
                if on_epoch is not None:
                    on_epoch(metrics)
    except NonFiniteError as error:
        kept = (f"{out / 'model.pt'} keeps epoch {len(trainer.history)}" if trainer.history
                else "no epoch had finished, so nothing was saved")
        raise NonFiniteError(f"{error}; {kept} (try a lower --lr or --clip-grad-norm)") from None


@contextmanager
def _masks_of_the_global_batch(model: nn.Module, world: World, batch: int):
    """Under torchrun, each cell draws the random masks of the whole global batch of `batch` sequences, as one
    process draws them, and keeps its rank's rows (World.share's): every rank's RNG goes through the same draws,
    and the run equals one process's. Without masks, or in one process, nothing changes."""
    cells = [] if world.size == 1 else [cell for cell in model.rnn.cells if cell.recurrent_dropout or cell.zoneout]
    if not cells:
        yield
        return
    rows = world.share(torch.arange(batch))  # this rank's sequences of the global batch

    def rank_rows(draw):
        def draw_share(steps, batch_shape, like):
            noise = draw(steps, (batch,), like)
            return None if noise is None else noise.sequences(rows)
        return draw_share
    with drawing_noise(cells, [rank_rows(cell.draw_noise) for cell in cells]):
        yield


@contextmanager
def drawing_noise(cells, draws):
    """Inside the block each cell's draw_noise is the matching function of draws, an instance attribute that shadows
    the method: how a torchrun rank takes its rows of the global batch's masks, and a stack (rnncount.stacked) hands
    each member the masks drawn for it."""
    cells = list(cells)
    for cell, draw in zip(cells, draws, strict=True):
        cell.draw_noise = draw
    try:
        yield
    finally:
        for cell in cells:
            del cell.draw_noise


def load_trainer(path: Path, device: torch.device | str = "cpu", world: World | None = None) -> Trainer:
    """Rebuild the Trainer saved in a model file, ready to resume (its data is drawn again from the seed)."""
    def build(payload: dict) -> Trainer:
        if not payload.get("train_config"):  # e.g. the handmade LSTM: weights without a training to continue
            raise checkpoint.CheckpointError(f"{path} was not trained by rnncount train, so it cannot be resumed "
                                             f"({payload.get('note') or 'it has no training settings'})")
        trainer = Trainer(saved_config(payload["model_config"]), TrainConfig(**payload["train_config"]),
                          device=device, world=world)
        load_state(trainer, payload)
        return trainer
    return checkpoint.rebuild(path, build)


def load_state(trainer: Trainer, payload: dict) -> None:
    """A model file's state into the trainer, each torchrun rank taking its own random state where the file has them."""
    trainer.load_state_dict(payload)
    states = payload.get("rank_rng")
    if states is not None and len(states) == trainer.world.size:
        torch.set_rng_state(states[trainer.world.rank])


def _check_finite(checks: list[tuple[Tensor, list[Tensor]]], epoch: int) -> None:
    """NonFiniteError naming the first batch whose loss or gradients were not finite: one read for the epoch.

    Training goes on to the epoch's end after such a batch (its weights then hold NaNs, which are never saved:
    the model file keeps the last finished epoch), so that no batch waits for a device-to-host copy.
    """
    if not checks:
        return
    losses = torch.stack([loss for loss, _ in checks])  # (batches,)
    norms = torch.stack([norm for _, batch in checks for norm in batch]).view(len(checks), -1)  # (batches, norms)
    finite = torch.isfinite(losses) & torch.isfinite(norms).all(dim=1)
    if bool(finite.all()):
        return
    number = int((~finite).nonzero()[0, 0])
    where = f"epoch {epoch}, batch {number + 1} of {len(checks)}"
    if not torch.isfinite(losses[number]):
        raise NonFiniteError(f"training diverged: the loss is {losses[number].item()} at {where}")
    total = torch.linalg.vector_norm(norms[number])
    raise NonFiniteError(f"training diverged: the gradients' norm is {total.item()} at {where}")


def _every_step(network: nn.Module, inputs: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
    """The final predictions (B,) and the summed per-sequence MSE of the running count over each one's steps.

    A counter that is right after every prefix must add exactly 1 for a 1 and 0 for a 0, whatever it
    has counted so far: the loss favours exact counters over ones fitted to the final count alone.
    """
    steps = network(inputs, lengths, every_step=True)  # (B, T), the count predicted after each step
    running = inputs.squeeze(-1).cumsum(dim=1)  # (B, T), the true count after each step
    length = inputs.size(1)
    if lengths is None:
        inside = torch.ones_like(running, dtype=torch.bool)
        last = steps[:, -1]
        per_sequence = torch.full((inputs.size(0),), float(length), device=inputs.device)
    else:
        lengths = lengths.to(inputs.device)
        inside = torch.arange(length, device=inputs.device)[None, :] < lengths[:, None]  # (B, T)
        last = steps.gather(1, (lengths - 1)[:, None]).squeeze(1)
        per_sequence = lengths.to(steps.dtype)
    errors = ((steps - running) ** 2 * inside).sum(dim=1) / per_sequence  # (B,), each sequence's mean
    return last, errors.sum()


def first_perfect_epoch(epochs: list[dict]) -> int | None:
    """The first epoch (in metrics dicts) whose test accuracy is 1.0, or None."""
    return next((e["epoch"] for e in epochs if e["test_accuracy"] == 1.0), None)


def format_epoch(metrics: EpochMetrics, epochs: int) -> str:
    """The reference's three lines for one epoch."""
    return (f"Epoch {metrics.epoch}/{epochs}\n"
            f"Train Loss: {metrics.train_loss:.4f}; Accuracy: {metrics.train_accuracy:.4f}\n"
            f"Test Loss: {metrics.test_loss:.4f}; Accuracy: {metrics.test_accuracy:.4f}")


def _progress(batches, description: str, enabled: bool, **options):
    """A tqdm bar over the batches when asked for and tqdm is installed; it hides itself off a terminal.

    Not asked for, or no tqdm: the batches themselves. batches=None gives a bar to update() by hand (or None);
    options go to tqdm (unit, total, ...).
    """
    if not enabled:
        return batches
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return batches
    return tqdm(batches, desc=description, leave=False, disable=None, **{"unit": "batch", **options})

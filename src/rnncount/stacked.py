"""Many models as one: K runs of the same shape (seeds) trained as one stacked computation.

    members = [Member.new(model_config, replace(train_config, seed=s), out / f"seed{s}") for s in seeds]
    for epoch, outcomes in fit_stacked(members):      # one (member, metrics or error) per member per epoch
        ...

At the reference size (batch 16, hidden 20) a training step is per-op overhead, not arithmetic: an
LSTM step is ~3 MFLOP but hundreds of tiny ops. Doing K models' work in each op divides that overhead
by K. How: `torch.func.stack_module_state` stacks the members' parameters into one tensor per name,
(K, *shape), and `vmap(functional_call(template, ...))` runs the ordinary Counter, i.e. the cells' own
`step` from cells.py, over the model dimension; the backward pass is plain autograd over the batched
ops vmap emitted. One Adam over the stacked tensors is K independent Adams (Adam is elementwise).

Why vmap and not parameters with a leading model dimension written into the cells: vmap runs the one
readable cell, its variants and any new cell unchanged, where a model dimension would take every cell's
`step` rewritten for it, a second form of every gate equation. It is not free: at the reference size
(benchmarks/stacked.py, target "vmap": 10 LSTMs, forward and backward, one thread) vmap over the cells'
code costs about 1.6x a hand-written leading-dimension LSTM, the forward pass 2x (each op's batching rule,
and the layer's per-call work under vmap), the backward about 1.3x (docs/stacked.md, "Where a stacked
epoch's time goes").

Each member is a complete run, a plain `Trainer` holding exactly what a solo run with its seed holds:
its data, its initial weights and its shuffling are drawn by `Trainer.__init__` as for `rnncount train
--seed S`, and its random masks (recurrent dropout, zoneout) from its own copy of torch's global RNG
state, in the order a solo run draws them. After every epoch the stacked weights and Adam state are
written back into each member's Trainer, which saves its own model.pt and metrics.json with
rnncount.checkpoint, so every command (predict, evaluate, generalize, inspect, train --resume) reads
a member's files as a solo run's. A member equals its solo run up to float rounding: vmap turns a
member's matmuls into batched ones (addmm -> baddbmm), which round differently in the last bit, and
over many steps the runs drift apart by that much (see docs/stacked.md for the tolerance).

A member whose loss or gradients stop being finite is reported with the batch where it happened
(found on the device, no sync per batch), keeps the model.pt of its last finished epoch (as a solo run
would), and leaves the stack; the others go on, their numbers unchanged by it (members never mix).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap
from torch.utils._pytree import tree_map

from ._checks import check_fits_in_memory
from .checkpoint import save_checkpoint, save_metrics
from .fast import CompiledOrEager, eager
from .model import PARALLEL, ModelConfig, family
from .train import (EpochMetrics, TrainConfig, Trainer, _every_step, _progress, drawing_noise, load_optimizer_state,
                    load_trainer)

# The most models one stack holds: at the reference size a member needs about 1 MiB of activations and
# state, so memory is not the bound; past ~64 the per-op overhead is already amortised and a typo
# (--seeds 0-100000) would only allocate data for nothing.
MAX_MEMBERS = 256


def check_stackable(config: TrainConfig) -> None:
    """ValueError if runs with this config cannot share every batch's shape (a curriculum filters per seed)."""
    if config.curriculum:
        raise ValueError("--curriculum filters each seed's data by length, so seeds' batches differ in size and "
                         "cannot be stacked; train the seeds one at a time")


@dataclass
class Member:
    """One run of a stack: its Trainer (data, weights, Adam, shuffling, metrics), its folder, its RNG state."""

    trainer: Trainer
    out: Path
    rng: Tensor  # torch's global CPU RNG state as this run alone would have it (random masks)
    cuda_rng: Tensor | None = None  # the same for the CUDA generator, when training on a GPU
    error: str | None = None  # why it stopped early (training diverged), else None
    label: str = ""

    @classmethod
    def new(cls, model_config: ModelConfig, train_config: TrainConfig, out: Path, data=None,
            device: torch.device | str = "cpu") -> Member:
        trainer = Trainer(model_config, train_config, data, device=device)  # seeds torch, draws the weights
        return cls(trainer, Path(out), torch.get_rng_state(), _cuda_rng(trainer.device),
                   label=f"seed {train_config.seed}")

    @classmethod
    def resume(cls, out: Path, device: torch.device | str = "cpu") -> Member:
        trainer = load_trainer(Path(out) / "model.pt", device)  # sets torch's RNG to the saved state
        # metrics.json catches up with model.pt, which a kill between a member's two writes leaves one epoch ahead
        save_metrics(Path(out) / "metrics.json", trainer)
        return cls(trainer, Path(out), torch.get_rng_state(), _cuda_rng(trainer.device),
                   label=f"seed {trainer.train_config.seed}")

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.trainer.history) >= self.trainer.train_config.epochs

    def save(self) -> None:
        """model.pt and metrics.json, as `rnncount train` writes them (the RNG state is this member's)."""
        with _rng(self):
            save_checkpoint(self.out / "model.pt", self.trainer)
        save_metrics(self.out / "metrics.json", self.trainer)


def _cuda_rng(device: torch.device) -> Tensor | None:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


@contextmanager
def _rng(member: Member):
    """torch's global RNG set to the member's state inside the block; the member keeps where it got to."""
    saved = torch.get_rng_state()
    saved_cuda = _cuda_rng(member.trainer.device)
    torch.set_rng_state(member.rng)
    if member.cuda_rng is not None:
        torch.cuda.set_rng_state(member.cuda_rng, member.trainer.device)
    try:
        yield
    finally:
        member.rng = torch.get_rng_state()
        torch.set_rng_state(saved)
        if saved_cuda is not None:
            member.cuda_rng = torch.cuda.get_rng_state(member.trainer.device)
            torch.cuda.set_rng_state(saved_cuda, member.trainer.device)


def _given_noise(model, noises):
    """A block inside which each cell's draw_noise returns the masks given (drawn before, per member)."""
    return drawing_noise(model.rnn.cells, [lambda steps, batch_shape, like, noise=noise: noise for noise in noises])


def _without_input_asserts() -> dict[str, bool]:
    """Inductor options that drop the generated code's checks of each graph input's sizes, strides and alignment.

    With dynamic=False dynamo's guards already check every input's size and stride before the compiled graphs
    run, and the backward's inputs are what the forward made; the checks repeat that, ~130 calls a batch for a
    stack of LSTMs (1-6% of a compiled stack's epoch, docs/stacked.md). Only the options this torch has.
    """
    import torch._inductor
    known = torch._inductor.list_options()
    return {name: False for name in ("size_asserts", "alignment_asserts") if name in known}


def check_same_settings(members: list[Member]) -> None:
    """ValueError unless every member has the first one's settings, but for the seed."""
    first = members[0].trainer
    for member in members[1:]:
        trainer = member.trainer
        if trainer.model_config != first.model_config or _without_seed(trainer.train_config) != _without_seed(
                first.train_config):
            raise ValueError(f"stacked runs must share every setting but the seed: {member.out} has other settings "
                             f"than {members[0].out}")


class StackedTrainer:
    """Trains its members (same ModelConfig, same TrainConfig but the seed, same epochs done) as one computation.

    train_epoch() runs one epoch of every member and returns, per member, its EpochMetrics or the error
    that stopped it; the members' Trainers hold the result (weights, Adam state, history) afterwards.
    """

    def __init__(self, members: list[Member], compile: bool = False):
        if not members:
            raise ValueError("a stack needs at least one member")
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"at most {MAX_MEMBERS} models in one stack, got {len(members)}")
        check_same_settings(members)
        first = members[0].trainer
        for member in members:
            trainer = member.trainer
            if len(trainer.history) != len(first.history):
                raise ValueError("stacked runs must have finished the same number of epochs")
            if trainer.world.size > 1:
                raise ValueError("stacked runs train in one process (not under torchrun)")
        check_stackable(first.train_config)
        self.members, self.config, self.device = members, first.train_config, first.device
        self.template = copy.deepcopy(first.model)  # the module vmap runs; its own weights are never read
        # fast.scan's compiled chunk cannot run under vmap (dynamo refuses functorch's wrapped tensors), so with
        # compile the whole vmapped forward is compiled instead, every step of it unrolled. Not for the parallel
        # cells (minGRU, minLSTM): their scan works in place on views, which dynamo cannot trace under vmap, and
        # it already runs each op over the whole sequence; their stack stays eager.
        self.template.rnn.compile_steps(False)
        # Nor for random masks (recurrent dropout, zoneout): _given_noise swaps each cell's draw_noise for the
        # drawn masks, which dynamo cannot trace; a solo run's compiled path keeps them to the eager loop too.
        self._random = any(c.recurrent_dropout or c.zoneout for c in self.template.rnn.cells)
        compiled = compile and family(first.model_config.cell) not in PARALLEL and not self._random
        # where compiling fails, one line on stderr and the stack runs eagerly from then on, as the solo paths do
        self._forward = CompiledOrEager(self._forward_eager, "the stack runs eagerly", dynamic=False,
                                        options=_without_input_asserts()) if compiled else self._forward_eager
        self.params, _ = stack_module_state([m.trainer.model for m in members])  # name -> (K, *shape) leaf
        # fused: one kernel for every parameter's update (3x faster than one tensor at a time here); it rounds
        # differently from the solo run's foreach Adam, well inside the float-rounding tolerance members keep anyway
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=self.config.lr,
                                          fused=self.device.type in ("cpu", "cuda"))
        self._stack_optimizer_state()
        self._data = {name: _stack_data([getattr(m.trainer, name) for m in members]) for name in
                      ("train_data", "test_data")}

    def __len__(self) -> int:
        return len(self.members)

    # ---- the stacked computation ---------------------------------------------------------------

    def _forward_eager(self, inputs: Tensor, lengths: Tensor | None, noises, every_step: bool):
        """Every member's predictions (K, B), and with every_step its summed per-step squared error (K,)."""
        template = self.template

        def one(params, x, n, noise):  # one member: the plain Counter with these weights
            def network(*args, **kwargs):
                return functional_call(template, params, args, kwargs)
            with _given_noise(template, noise) if noise is not None else _nothing():
                return _every_step(network, x, n) if every_step else network(x, n)
        noise_dims = None if noises is None else tree_map(lambda t: None if t is None else 0, noises)
        return vmap(one, in_dims=(0, 0, None if lengths is None else 0, noise_dims))(
            self.params, inputs, lengths, noises)

    def _draw_noises(self, steps: int, batch: int, like: Tensor):
        """Each member's masks for one forward pass, drawn from its own RNG as a solo run draws them; stacked."""
        if not self._random:
            return None
        per_member = []
        for member in self.members:
            with _rng(member):
                per_member.append([cell.draw_noise(steps, (batch,), like) for cell in self.template.rnn.cells])
        return tree_map(lambda *parts: None if parts[0] is None else torch.stack(parts), *per_member)

    def train_epoch(self, progress: bool = False) -> list[EpochMetrics | str]:
        config, data = self.config, self._data["train_data"]
        start = time.perf_counter()
        self.template.train()
        count, epoch = len(self.members), len(self.members[0].trainer.history) + 1
        # each member's shuffle, drawn from its own generator exactly as Trainer.train_epoch draws it
        orders = torch.stack([torch.randperm(data.size, generator=m.trainer.shuffle) for m in self.members])
        rows = torch.arange(count)[:, None]
        batches = orders.split(config.batch_size, dim=1)  # (K, b) each
        totals = torch.zeros(count, 2, dtype=torch.float64, device=self.device)  # squared error, correct
        first_bad = torch.zeros(count, dtype=torch.long, device=self.device)  # batch number, 0: none yet
        bad_value = torch.zeros(count, device=self.device)
        for number, index in enumerate(_progress(batches, f"Epoch {epoch}/{config.epochs}", progress), 1):
            inputs, counts, lengths = data.batch(rows, index, self.device)  # (K, b, T, 1), (K, b), (K, b) | None
            size = index.size(1)
            if config.lr_end is not None:
                self._set_lr((epoch - 1 + (number - 1) / len(batches)) / config.epochs)
            noises = self._draw_noises(inputs.size(2), size, inputs)
            if config.step_loss:
                predictions, step_squared = self._forward(inputs, lengths, noises, every_step=True)
            else:
                predictions = self._forward(inputs, lengths, noises, every_step=False)
            squared = ((predictions - counts) ** 2).sum(dim=1)  # (K,)
            losses = squared / size
            if config.step_loss:
                losses = losses + config.step_loss * step_squared / size
            self.optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # member k's gradients are those of its own loss alone
            norms = self._clip_gradients()  # (K,)
            bad = ~(torch.isfinite(losses.detach()) & torch.isfinite(norms))
            newly = bad & (first_bad == 0)
            first_bad = torch.where(newly, number, first_bad)
            bad_value = torch.where(newly, torch.where(torch.isfinite(losses.detach()), norms, losses.detach()),
                                    bad_value)
            self.optimizer.step()  # a diverged member's NaNs stay in its own slices
            if config.recurrent_decay:
                self._decay_recurrent_weights()
            totals += torch.stack([squared.detach(), (predictions.detach().round() == counts).sum(dim=1)], 1).double()
        train = (totals / max(data.size, 1)).tolist()
        test = self.evaluate()
        seconds = (time.perf_counter() - start) / count  # each member's share of the stacked epoch
        results: list[EpochMetrics | str] = []
        for k, (member, bad_batch, value) in enumerate(zip(self.members, first_bad.tolist(), bad_value.tolist())):
            if bad_batch:
                results.append(f"training diverged: the loss or the gradients' norm is {value} at epoch {epoch}, "
                               f"batch {bad_batch} of {len(batches)}")
                continue
            metrics = EpochMetrics(epoch, *train[k], *test[k], seconds)
            results.append(metrics)
        self._write_back(results)
        return results

    @torch.no_grad()
    def evaluate(self, batch_size: int = 1000) -> list[tuple[float, float, float]]:
        """Every member's (loss, accuracy, MAE) on its own test set, as rnncount.train.evaluate computes them."""
        data = self._data["test_data"]
        self.template.eval()
        totals = torch.zeros(len(self.members), 3, dtype=torch.float64, device=self.device)
        rows = torch.arange(len(self.members))[:, None]
        with eager(self.template.rnn):  # one test pass: compiling it would cost more than it saves
            for index in torch.arange(data.size).expand(len(self.members), -1).split(batch_size, dim=1):
                inputs, counts, lengths = data.batch(rows, index, self.device)
                predictions = self._forward_eager(inputs, lengths, None, every_step=False)  # (K, b)
                error = predictions - counts
                totals += torch.stack([(error ** 2).sum(1), (predictions.round() == counts).sum(1),
                                       error.abs().sum(1)], 1).double()
        self.template.train()
        return [tuple(row) for row in (totals / data.size).tolist()]

    # ---- what train.Trainer does, per member ---------------------------------------------------------

    def _clip_gradients(self) -> Tensor:
        """Each member's total gradient norm (K,), after rescaling its gradients to at most clip_grad_norm."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads]),
                                         dim=0)  # (K,)
        limit = self.config.clip_grad_norm
        if limit is not None:  # as torch.nn.utils.clip_grad_norm_, per member
            scale = (limit / (norms + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
        return norms

    @torch.no_grad()
    def _decay_recurrent_weights(self) -> None:
        """Trainer._decay_recurrent_weights on every member's W_hh at once."""
        shrink = 1 - self.optimizer.param_groups[0]["lr"] * self.config.recurrent_decay
        for name, weight in self.params.items():
            if name.startswith("rnn.weight_hh_l"):
                weight.mul_(max(shrink, 0.0))

    def _set_lr(self, progress: float) -> None:
        Trainer._set_lr(self, progress)  # the same cosine, on the stacked optimizer

    @property
    def train_config(self) -> TrainConfig:  # what Trainer._set_lr reads
        return self.config

    # ---- between the stack and its members ---------------------------------------------------------

    def _stack_optimizer_state(self) -> None:
        """The members' Adam states (after a resume), stacked like their weights; nothing to do when fresh."""
        states = [m.trainer.optimizer.state_dict() for m in self.members]
        if not states[0]["state"]:
            return
        stacked = {}
        for index, first in states[0]["state"].items():
            stacked[index] = {"step": first["step"].clone()}
            for key in ("exp_avg", "exp_avg_sq"):
                stacked[index][key] = torch.stack([s["state"][index][key] for s in states]).to(self.device)
        load_optimizer_state(self.optimizer, {"state": stacked,
                                              "param_groups": copy.deepcopy(states[0]["param_groups"])})

    @torch.no_grad()
    def _write_back(self, results: list) -> None:
        """Each member's slice of the weights and Adam state into its own Trainer, and its epoch's metrics."""
        stacked = self.optimizer.state_dict()
        for k, (member, result) in enumerate(zip(self.members, results)):
            if isinstance(result, str):  # diverged: keeps its last finished epoch, as a solo run's model.pt does
                member.error = result
                continue
            for name, parameter in member.trainer.model.named_parameters():
                parameter.copy_(self.params[name][k])
            state = {index: {"step": s["step"].clone(), "exp_avg": s["exp_avg"][k].clone(),
                             "exp_avg_sq": s["exp_avg_sq"][k].clone()} for index, s in stacked["state"].items()}
            load_optimizer_state(member.trainer.optimizer, {"state": state,
                                                            "param_groups": copy.deepcopy(stacked["param_groups"])})
            member.trainer.history.append(result)


def _without_seed(config: TrainConfig) -> dict:
    return {k: v for k, v in config.to_dict().items() if k != "seed"}


@dataclass
class _StackedData:
    """The members' datasets, stacked: inputs (K, N, T, 1), counts (K, N), lengths (K, N) or None if all full."""

    inputs: Tensor
    counts: Tensor
    lengths: Tensor | None
    size: int = field(init=False)

    def __post_init__(self):
        self.size = self.inputs.size(1)

    def batch(self, rows: Tensor, index: Tensor, device) -> tuple[Tensor, Tensor, Tensor | None]:
        """Each member's samples `index[k]` (K, b): one gather for all members."""
        index = index.to(device)
        rows = rows.to(device)
        lengths = None if self.lengths is None else self.lengths[rows, index]
        return self.inputs[rows, index], self.counts[rows, index], lengths


def _stack_data(datasets) -> _StackedData:
    device = datasets[0].inputs.device
    fixed = all(d.fixed_length for d in datasets)
    return _StackedData(torch.stack([d.inputs for d in datasets]), torch.stack([d.counts for d in datasets]),
                        None if fixed else torch.stack([d.lengths for d in datasets]).to(device))


@contextmanager
def _nothing():
    yield


def fit_stacked(members: list[Member], compile: bool = False, progress: bool = False
                ) -> Iterator[tuple[int, list[tuple[Member, EpochMetrics | str]]]]:
    """Train every member to its epochs, stacked, saving each member's files after every epoch.

    Yields (epoch, [(member, its metrics or the error that stopped it)]) as each epoch ends. Members that
    have done fewer epochs (a stacked run killed between two members' saves) train first until they catch up.
    """
    while True:
        active = [m for m in members if not m.done]
        if not active:
            return
        done = min(len(m.trainer.history) for m in active)
        group = [m for m in active if len(m.trainer.history) == done]
        ahead = [len(m.trainer.history) for m in active if len(m.trainer.history) > done]
        until = min(ahead + [group[0].trainer.train_config.epochs])
        stack = StackedTrainer(group, compile)
        while stack.members and done < until:
            results = stack.train_epoch(progress)
            done += 1
            for member, result in zip(stack.members, results):
                if not isinstance(result, str):
                    member.save()
            yield done, list(zip(stack.members, results))
            remaining = [m for m in stack.members if m.error is None]
            if len(remaining) < len(stack.members):  # diverged members leave the stack; the others go on
                if not remaining:
                    break
                stack = StackedTrainer(remaining, compile)


# ---- building stacks of seeds (what rnncount.runs trains for `rnncount train/compare --seeds`) ------------

def estimated_bytes(model_config: ModelConfig, train_config: TrainConfig, count: int) -> int:
    """A generous estimate of what `count` stacked members need: each one's data twice (its Trainer's and the
    stack's copy), a training step's kept activations (every step's gates and states, forward and backward), and
    its parameters four times (weights, gradients, Adam's two moments; at most 4 gates of H units, each reading
    at most 2H inputs and the state)."""
    data = (train_config.train_samples + train_config.test_samples) * train_config.length * (4 + 8)
    test_batch = min(train_config.test_samples, 1000)
    batch = min(train_config.batch_size, train_config.train_samples)  # a batch holds at most every sample
    steps = max(batch, test_batch) * train_config.length * model_config.num_layers
    hidden = model_config.hidden_size
    activations = steps * hidden * 4 * 16
    parameters = model_config.num_layers * 4 * hidden * (3 * hidden + 2) * 4 * 4
    return count * (2 * data + activations + parameters)


def check_memory(model_config: ModelConfig, train_config: TrainConfig, count: int = 1) -> None:
    """ValueError if `count` stacked members (or one run) would need more than half the memory free now (Linux;
    elsewhere no check), before anything is allocated."""
    what, advice = ((f"{count} stacked models of this size need", "train fewer seeds at once") if count > 1 else
                    ("a run of this size needs", "choose smaller sizes (--hidden-size, --num-layers, "
                                                 "--train-samples, --test-samples, --length, --batch-size)"))
    check_fits_in_memory(estimated_bytes(model_config, train_config, count), what, advice)


def format_members_epoch(epoch: int, epochs: int, outcomes: list[tuple[Member, EpochMetrics | str]],
                         prefix: str = "") -> str:
    """The reference's epoch lines, one line per member: 'seed 3: Train Loss: ...; Test Loss: ...'."""
    lines = [f"{prefix}Epoch {epoch}/{epochs}"]
    for member, result in outcomes:
        if isinstance(result, str):
            kept = len(member.trainer.history)
            lines.append(f"{prefix}{member.label}: {result}; its model.pt keeps epoch {kept} and it leaves the stack"
                         if kept else f"{prefix}{member.label}: {result}; nothing of it was saved")
        else:
            lines.append(f"{prefix}{member.label}: Train Loss: {result.train_loss:.4f}; Accuracy: "
                         f"{result.train_accuracy:.4f}; Test Loss: {result.test_loss:.4f}; Accuracy: "
                         f"{result.test_accuracy:.4f}")
    return "\n".join(lines)


def new_members(model_config: ModelConfig, train_config: TrainConfig, seeds: list[int], out: Path, data_for=None,
                device: torch.device | str = "cpu") -> list[Member]:
    """One fresh member per seed, in out/seedS/; data_for(seed) may give the (train, test) data to share."""
    if len(set(seeds)) != len(seeds):  # two members would share one folder
        raise ValueError(f"each seed at most once (two members would share a folder), got {seeds}")
    members = []
    for seed in seeds:
        folder = Path(out) / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        config = replace(train_config, seed=seed)
        members.append(Member.new(model_config, config, folder, None if data_for is None else data_for(seed), device))
    return members


def member_folders(out: Path) -> dict[int, Path]:
    """seed -> out/seedS for every folder seed<digits> holding a model.pt: the saved members of a stacked run."""
    return {int(match[1]): p.parent for p in Path(out).glob("seed*/model.pt")
            if (match := re.fullmatch(r"seed(\d+)", p.parent.name))}


def resumed_members(out: Path, device: torch.device | str = "cpu", epochs: int | None = None) -> list[Member]:
    """The members of a stacked run saved in out/seedS/model.pt (a folder `train --seeds` wrote), to resume.

    Checked before anything trains: each folder holds the run of its own seed, and the runs share their settings.
    Other folders there (seed1.bak, a copy) are not members."""
    seeds = member_folders(out)
    members = [Member.resume(seeds[seed], device) for seed in sorted(seeds)]
    for seed, member in zip(sorted(seeds), members):
        if member.trainer.train_config.seed != seed:
            raise ValueError(f"{member.out} holds the run of seed {member.trainer.train_config.seed}, "
                             f"not of seed {seed}")
    for member in members:
        if epochs is not None:
            if epochs < len(member.trainer.history):
                raise ValueError(f"--epochs {epochs} is fewer than the {len(member.trainer.history)} {member.label} "
                                 "already did")
            member.trainer.train_config.epochs = epochs
    if members:
        check_same_settings(members)
    return members

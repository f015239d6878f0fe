"""Running runs: one, several in worker processes, under torchrun, resumed, stacked (seeds), a sweep's grid.

What to train comes as config objects (ModelConfig, TrainConfig, sweep.Run), how to run it as RunOptions;
nothing here reads a Namespace. The path of one run:

    train(model_config, train_config, options)   the folder checked (prepare_out), torchrun joined (start)
      -> train_in_world(trainer, out, options)   threads, compile, then fit: the epochs, a checkpoint after each
      -> train.train_with_checkpoints            OUT/model.pt and OUT/metrics.json (rnncount.checkpoint)

Epoch lines stream as they come (echo); what ends a command, its table and files, is rnncount.report's.
Workers (compare's cells, sweep's stacks) are spawned processes, one pool of them (in_processes); each runs
with the threads one run has alone, so a run's numbers do not depend on how many ran beside it.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import torch

from . import report, stacked, sweep
from ._checks import check_fits_in_memory, check_positive_int, check_seeds
from .distributed import World, join_world, resolve_device
from .elastic import resume_restarted
from .files import is_unfinished_write, write_json_atomically
from .generalize import DEFAULT_SAMPLES, generalization, memory_needed
from .model import PARALLEL, ModelConfig, family
from .train import NonFiniteError, TrainConfig, Trainer, format_epoch, load_trainer, make_datasets, \
    train_with_checkpoints


class UsageError(Exception):
    """A mistake in what the user asked for; reported in one line, exit code 2."""


def say(text: str) -> None:
    """A progress line, on its way at once (a worker's lines interleave with the others')."""
    print(text, flush=True)


@dataclass
class RunOptions:
    """How runs are run (not what they learn): where their files go, on what, in how many processes."""

    out: Path | None = None  # the output folder; None: runs/COMMAND-TIME
    force: bool = False  # write into a non-empty out, replacing its files
    device: str = "auto"  # rnncount.distributed.resolve_device's names
    threads: int | None = None  # CPU threads; None: default_threads's choice for the run
    compile: bool = False  # the cells' steps through torch.compile (rnncount.fast)
    jobs: int | None = None  # worker processes (compare: cells at once; sweep: stacks at once); None: cpu_jobs
    seeds: list[int] | None = None  # train these seeds stacked (rnncount.stacked)
    test_lengths: list[int] | None = None  # compare: also score each cell at these lengths

    def __post_init__(self):
        if self.jobs is not None:
            check_positive_int("jobs", self.jobs)
        if self.threads is not None:
            check_positive_int("threads", self.threads)
        if self.seeds is not None:
            self.seeds = check_seeds(self.seeds, stacked.MAX_MEMBERS)
        for length in self.test_lengths or []:
            check_positive_int("test_lengths", length)


# ---- where and how ------------------------------------------------------------------------------------------

def start(device: str) -> tuple[World, torch.device]:
    """Join torchrun's processes if launched by it, and pick the device."""
    try:
        return join_world(device)
    except ValueError as error:
        raise UsageError(f"--device: {error}") from None


def check_device(name: str) -> torch.device:
    """The device a --device name stands for here, or a UsageError saying why there is none."""
    try:
        return resolve_device(name)
    except ValueError as error:
        raise UsageError(f"--device: {error}") from None


def make_folder(out: Path) -> Path:
    """The folder created (with its parents), or a UsageError saying why it cannot be."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot write to --out {out}: {error.strerror or error}") from None
    return out


_held: list[int] = []  # the folders this process writes to, locked (hold) until the command ends (release)


def hold(out: Path) -> None:
    """Lock the folder for this process (fcntl.flock; the system drops it when the process ends, however it ends),
    so that a second rnncount writing to the same folder at the same time is refused rather than both overwriting
    each other's files. Where there is no flock (Windows), nothing is locked."""
    try:
        import fcntl
    except ImportError:
        return
    if not Path(out).is_dir():  # nothing to hold (a resume of a folder that is not there says so itself)
        return
    descriptor = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise UsageError(f"--out {out} is being written by another rnncount run; wait for it to end or choose "
                         "another folder") from None
    _held.append(descriptor)


def release() -> None:
    """Unlock every folder this process holds (the end of a command; cli.main)."""
    while _held:
        os.close(_held.pop())


def default_out(command: str) -> Path:
    """runs/COMMAND-TIME, with -2, -3, ... if a run started in the same second took that name."""
    stem = Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, number = stem, 1
    while out.exists():
        number += 1
        out = stem.with_name(f"{stem.name}-{number}")
    return out


def prepare_out(options: RunOptions, command: str) -> Path:
    """The output folder: new or empty (or force), created, writable, and held by this run (hold). A file a kill left
    half-written (a torchrun restart after a kill during the first save finds one) does not count as content."""
    out = options.out or default_out(command)
    if out.is_dir() and any(not is_unfinished_write(p) for p in out.iterdir()) and not options.force:
        raise UsageError(f"--out {out} exists and is not empty; choose another folder or pass --force")
    make_folder(out)
    hold(out)
    check_writable(out, out)
    return out


def check_writable(folder: Path, out: Path) -> None:
    """A file can be created in folder (tried: permissions, a read-only file system), else a UsageError naming
    --out as the user typed it."""
    try:
        probe = folder / ".rnncount-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write to --out {out}: {error.strerror or error}") from None


def prepare_out_once(options: RunOptions, command: str, world: World) -> Path:
    """prepare_out on rank 0; every rank learns whether it worked."""
    out, error = None, None
    if world.is_main:
        try:
            out = prepare_out(options, command)
        except UsageError as failure:
            error = str(failure)
    error = world.agree(error)
    if error:
        raise UsageError(error)
    return out or Path(os.devnull)  # ranks other than 0 write nothing


def default_threads(cell: str, hidden_size: int, alone: bool = True, models: int = 1) -> int | None:
    """The CPU threads a run of this work takes unless told (--threads); None: torch's default.

    - every usable CPU for minGRU and minLSTM, and for a stack of several models (`--seeds`), in a process of
      their own (alone): their ops are large enough to split, a parallel scan's over the whole sequence (T x B x H
      values), a stack's over K models at once, and torch splits them across threads elementwise or one output
      at a time, so the numbers are the same to the last bit at any thread count (tests/test_runs.py). At T=1000
      a minGRU or minLSTM epoch takes ~0.8-0.9x the time on two threads, a stack of 10 LSTMs 0.8-0.9x
      (docs/modern-cells.md, docs/stacked.md); at T=20 a single model's ops are too small to be split.
      A run beside others (a worker process of compare, a rank under torchrun: alone=False) takes one thread.
    - one thread for the other cells up to hidden size 64 (small matmuls: a second costs more in sync than it
      gains);
    - above: torch's default.
    """
    parallel = family(cell) in PARALLEL
    if alone and (parallel or models > 1):
        return usable_cpus()
    if hidden_size <= 64 or parallel:
        return 1
    return None


def set_threads(threads: int | None, cell: str, hidden_size: int, alone: bool = True, models: int = 1
                ) -> None:
    """Set the CPU threads a run trains (or a saved model runs) with: `threads` if given, else default_threads."""
    count = threads if threads is not None else default_threads(cell, hidden_size, alone, models)
    if count is not None:
        torch.set_num_threads(count)


def usable_cpus() -> int:
    """The CPUs this process may run on (taskset and containers narrow os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_jobs(options: RunOptions, hidden_size: int, tasks: int, device: torch.device, world: World) -> int:
    """How many runs at once in worker processes: options.jobs if given (checked), else as many of the tasks as
    the usable CPUs hold, each run with the threads it has alone (set_threads; hidden sizes above 64 take all
    the CPUs, so those run one at a time). One (this process) on a GPU or under torchrun."""
    if options.jobs is None:
        if world.size > 1 or device.type != "cpu":
            return 1
        threads = options.threads or (1 if hidden_size <= 64 else usable_cpus())
        return max(1, min(tasks, usable_cpus() // threads))
    if options.jobs > 1 and (world.size > 1 or device.type != "cpu"):
        raise UsageError("--jobs trains runs in parallel CPU processes; under torchrun or on a GPU leave it at 1")
    return options.jobs


def start_worker() -> None:
    """A worker process's initializer: Ctrl-C is left to the parent, which stops the workers (in_processes);
    one thread (small matmuls; the processes share the cores) until the run it is given sets its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    keep_freed_memory()
    from torch import _dynamo  # noqa: F401 - every task's Adam imports it (torch.optim); here, so that it is frozen below
    freeze_objects()


def freeze_objects() -> None:
    """gc.freeze(): every object alive now stays out of the garbage collector's passes for the rest of the process.

    torch with torch._dynamo imported is about 300,000 tracked objects, and the collection at interpreter exit walks
    them all: ~0.8 s per process on a 2-core VM, which a compare pays for each worker and again for itself. Called
    where a process is about to end, and in each worker after its imports (which live as long as it does); what a
    task makes afterwards is collected as usual.
    """
    gc.freeze()


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for the next tensors rather than hand it back to the system at once.

    By default glibc gives every allocation above a threshold (128 KiB, rising with what is freed) pages of its
    own and returns them when the tensor is freed, and trims the free top of its heap: the next tensor of
    that size faults its pages in again, one at a time. A training step over long sequences frees and
    allocates dozens of such tensors (a (T, B, H) float tensor is 1.3 MB at T=1000, B=16, H=20); on this
    2-core VM the faults took a third of a minGRU step and half of a minLSTM step (docs/speed.md). Only
    where the C library is glibc (mallopt); elsewhere nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no mallopt here (macOS, Windows)
        return
    mmap_threshold, trim_threshold = -3, -1  # glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD
    mallopt(mmap_threshold, 32 << 20)  # blocks up to 32 MiB (glibc's largest threshold) come from the heap
    mallopt(trim_threshold, 1 << 30)  # and the heap keeps up to 1 GiB free for reuse


def in_processes(function: Callable, tasks: dict, jobs: int) -> Iterator[tuple]:
    """function(*arguments) for every (key, arguments) of tasks, `jobs` at a time in spawned processes (one thread
    each, unless a task sets its own); yields (key, result) as each ends.

    A worker's exception is raised here. That, Ctrl-C, or the caller stopping early ends the pool at once: no
    task starts after it and the running ones are stopped (a run's files are written atomically: a stopped run
    keeps its last finished epoch), rather than every queued run training to its end first.
    """
    pool = ProcessPoolExecutor(max_workers=max(min(jobs, len(tasks)), 1), mp_context=get_context("spawn"),
                               initializer=start_worker)
    try:
        futures = {pool.submit(function, *arguments): key for key, arguments in tasks.items()}
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:
        for process in list((pool._processes or {}).values()):  # the executor has no public way before Python 3.14
            process.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


# ---- one run ------------------------------------------------------------------------------------------------

def fit(trainer: Trainer, out: Path, prefix: str = "") -> None:
    """Train the remaining epochs; rank 0 prints the reference's lines and saves a checkpoint after each.

    With a prefix (a worker process among others, e.g. "[gru] ") each line starts with it, and no progress bar
    is drawn (several would fight over the terminal).
    """
    epochs = trainer.train_config.epochs
    train_with_checkpoints(trainer, out, lambda metrics: say(
        "\n".join(prefix + line for line in format_epoch(metrics, epochs).splitlines())), progress=not prefix)


def train_in_world(trainer: Trainer, out: Path, options: RunOptions, prefix: str = "") -> None:
    """Threads and compile as the options say, then fit: what every rank of a run does with its Trainer."""
    config, alone = trainer.model_config, not prefix and trainer.world.size == 1  # no other run, no other rank
    set_threads(options.threads, config.cell, config.hidden_size, alone)
    trainer.model.rnn.compile_steps(options.compile)
    fit(trainer, out, prefix)


def train(model_config: ModelConfig, train_config: TrainConfig, options: RunOptions) -> Path | None:
    """One run into a new folder, alone or under torchrun; the folder (None on ranks other than 0)."""
    world, device = start(options.device)
    fits(model_config, train_config)
    out, trainer = options.out, resume_restarted(options.out, model_config, train_config, device, world)
    if trainer is None:  # not restarted by torchrun, or nothing of this run's to resume
        out = prepare_out_once(options, "train", world)
        trainer = Trainer(model_config, train_config, device=device, world=world)
    train_in_world(trainer, out, options)
    return out if world.is_main else None


def fits(model_config: ModelConfig, train_config: TrainConfig, test_lengths=None) -> None:
    """UsageError if one run of this size (and its scoring at test_lengths, as compare scores) would need more than
    half the free memory, before anything is allocated (stacked.check_memory, scoring_fits)."""
    try:
        stacked.check_memory(model_config, train_config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    scoring_fits(test_lengths or [], DEFAULT_SAMPLES)


def scoring_fits(lengths, samples: int, at_once: bool = False) -> None:
    """UsageError if scoring `samples` sequences at each of these lengths would need more than half the free memory:
    generalize holds one block of sequences at a time (memory_needed), evaluate (at_once) all of them and their
    float copy."""
    need = samples * max(lengths, default=0) * 16 if at_once else memory_needed(lengths, samples)
    try:
        check_fits_in_memory(need, f"scoring {samples} sequences of length {max(lengths, default=0)} needs",
                             "choose shorter lengths or fewer samples")
    except ValueError as error:
        raise UsageError(str(error)) from None


def check_resume_folder(folder: Path) -> None:
    """--resume names a run's folder; a file is a UsageError saying so (for a run's model.pt, with its folder), and so
    is a folder where no epoch has finished (a run stopped in its first epoch)."""
    if folder.is_file():
        if folder.name == "model.pt":
            raise UsageError(f"--resume takes the run's folder, not a file: --resume {folder.parent} "
                             "continues the run saved there")
        raise UsageError(f"--resume takes a run's folder (the --out of its train), not a file: {folder}")
    if folder.is_dir() and not (folder / "model.pt").exists() and not stacked.member_folders(folder):
        raise UsageError(f"{folder / 'model.pt'} does not exist: no epoch of a run in {folder} has finished, so there "
                         "is nothing to resume; start the run again, with --force to reuse the folder")


def resume(folder: Path, options: RunOptions, epochs: int | None = None) -> Path | None:
    """Continue the run saved in folder (up to `epochs`, or its own), alone or under torchrun."""
    world, device = start(options.device)
    if world.is_main:
        hold(folder)
    trainer = load_trainer(folder / "model.pt", device, world)
    if epochs is not None:
        if epochs < len(trainer.history):
            raise UsageError(f"--epochs {epochs} is fewer than the {len(trainer.history)} already done")
        trainer.train_config.epochs = epochs
    if world.is_main:
        say(f"Resuming {folder} after epoch {len(trainer.history)} of {trainer.train_config.epochs}")
    train_in_world(trainer, folder, options)
    return folder if world.is_main else None


# ---- compare: several cells on the same data -----------------------------------------------------------------

@dataclass
class Comparison:
    """What compare ran: each cell's epochs (metrics dicts), its scores at test_lengths, its settings."""

    histories: dict[str, list[dict]]
    lengths: dict[str, list[dict]]
    settings: dict[str, dict]
    out: Path


def compare(configs: dict[str, tuple[ModelConfig, TrainConfig]], options: RunOptions) -> Comparison | None:
    """Each cell trained on the same data into out/CELL, several at once in processes (cpu_jobs) or one after
    another; None on ranks other than 0."""
    world, device = start(options.device)
    jobs = cpu_jobs(options, max(m.hidden_size for m, _ in configs.values()), len(configs), device, world)
    for model_config, train_config in configs.values():
        fits(model_config, train_config, options.test_lengths)
    out = prepare_out_once(options, "compare", world)
    data = make_datasets(next(iter(configs.values()))[1])  # the same for every cell (a recipe may change the rest)
    if jobs > 1:
        done = dict(in_processes(compare_one, {
            cell: (cell, *configs[cell], data, out, options, torch.device("cpu"), World(), f"[{cell}] ")
            for cell in configs}, jobs))
        outcomes = {cell: done[cell] for cell in configs}
    else:
        outcomes = {cell: compare_one(cell, *configs[cell], data, out, options, device, world) for cell in configs}
    if not world.is_main:
        return None
    return Comparison({cell: history for cell, (history, _) in outcomes.items()},
                      {cell: rows for cell, (_, rows) in outcomes.items() if rows is not None},
                      {cell: {**model.to_dict(), **training.to_dict()} for cell, (model, training) in configs.items()},
                      out)


def compare_one(cell: str, model_config: ModelConfig, train_config: TrainConfig, data, out: Path,
                options: RunOptions, device: torch.device, world: World, prefix: str = ""
                ) -> tuple[list[dict], list | None]:
    """Train one cell of a comparison into out/CELL; returns its epochs' metrics and its scores at test_lengths."""
    if world.is_main:
        (out / cell).mkdir(exist_ok=True)
    if not prefix and world.is_main:  # one after another in this process
        say(f"== {cell} ==")
    trainer = Trainer(model_config, train_config, data, device=device, world=world)
    train_in_world(trainer, out / cell, options, prefix)
    rows = None
    if options.test_lengths and world.is_main:
        rows = generalization(trainer.model, options.test_lengths, device=device)
    return [m.to_dict() for m in trainer.history], rows


# ---- stacked seeds: train/compare --seeds ------------------------------------------------------------------

@dataclass
class Stacks:
    """What a --seeds run ran: each cell's members (stacked.Member), the wall time of each stack, the folder, and
    the configuration metrics.json keeps."""

    members: dict[str, list[stacked.Member]]
    seconds: dict[str, float]
    out: Path
    config: dict

    @property
    def failed(self) -> bool:
        return any(m.error for members in self.members.values() for m in members)


def seeds(configs: dict[str, tuple[ModelConfig, TrainConfig]], options: RunOptions, command: str) -> Stacks:
    """Each cell's options.seeds trained as one stack; compare gives every cell of a seed that seed's data."""
    world, device = start(options.device)
    refuse_world(world)
    jobs = cpu_jobs(options, max(m.hidden_size for m, _ in configs.values()), len(configs), device, world)
    members: dict[str, list[stacked.Member]] = {}
    try:
        for model_config, train_config in configs.values():
            stacked.check_stackable(train_config)
            # jobs stacks train at once: each of them may take the largest's memory
            stacked.check_memory(model_config, train_config, len(options.seeds) * min(jobs, len(configs)))
        out = prepare_out(options, command)
        shared = next(iter(configs.values()))[1]  # compare: every cell of a seed on that seed's data, as solo does

        def data_for(seed):
            return make_datasets(replace(shared, seed=seed)) if command == "compare" else None
        for cell, (model_config, train_config) in configs.items():
            folder = out / cell if command == "compare" else out
            members[cell] = stacked.new_members(model_config, train_config, options.seeds, folder, data_for, device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return train_stacks(members, out, options, jobs)


def resume_seeds(folder: Path, options: RunOptions, epochs: int | None = None) -> Stacks:
    """Continue the seeds a --seeds run saved in folder/seed*/."""
    world, device = start(options.device)
    refuse_world(world)
    hold(folder)
    try:
        members = stacked.resumed_members(folder, device, epochs)
    except ValueError as error:
        raise UsageError(str(error)) from None
    say(f"Resuming the {len(members)} seeds in {folder} after epoch "
        f"{min(len(m.trainer.history) for m in members)} of {members[0].trainer.train_config.epochs}")
    return train_stacks({members[0].trainer.model_config.cell: members}, folder, options, 1)


def refuse_world(world: World) -> None:
    if world.size > 1:
        raise UsageError("--seeds trains the seeds stacked in one process; run it without torchrun")


def train_stacks(members: dict[str, list[stacked.Member]], out: Path, options: RunOptions, jobs: int) -> Stacks:
    """Each cell's stack, `jobs` at once in processes (the members travel there and back) or one after another."""
    if jobs > 1:
        done = dict(in_processes(train_stack, {cell: (stack, options, f"[{cell}] ") for cell, stack in members.items()},
                                 jobs))
        members = {cell: done[cell][0] for cell in members}
        seconds = {cell: done[cell][1] for cell in members}
    else:
        seconds = {}
        for cell, stack in members.items():
            if len(members) > 1:
                say(f"== {cell}: seeds {', '.join(str(m.trainer.train_config.seed) for m in stack)} ==")
            seconds[cell] = train_stack(stack, options)[1]
    first, stack = next(iter(members.values()))[0].trainer, next(iter(members.values()))
    config = {**first.model_config.to_dict(), "cells": list(members), **first.train_config.to_dict(),
              "seeds": [m.trainer.train_config.seed for m in stack]}
    return Stacks(members, seconds, out, config)


def train_stack(members: list[stacked.Member], options: RunOptions, prefix: str = ""
                ) -> tuple[list[stacked.Member], float]:
    """One cell's stack trained with the threads and compile the options say; the members and the wall time."""
    config = members[0].trainer.model_config
    set_threads(options.threads, config.cell, config.hidden_size, alone=not prefix, models=len(members))
    return members, run_members(members, options.compile, prefix)


def run_members(members: list[stacked.Member], compile: bool = False, prefix: str = "", echo=say) -> float:
    """Train the members stacked (stacked.fit_stacked), echoing each epoch's lines; returns the wall time in s."""
    start_time = time.perf_counter()
    epochs = members[0].trainer.train_config.epochs if members else 0
    for epoch, outcomes in stacked.fit_stacked(members, compile):
        echo(stacked.format_members_epoch(epoch, epochs, outcomes, prefix))
    return time.perf_counter() - start_time


# ---- sweep: a grid of runs in worker processes ------------------------------------------------------------

def sweep_grid(runs: list[sweep.Run], settings: dict, options: RunOptions) -> tuple[list[dict], Path]:
    """Train the grid's unfinished runs (resuming those begun), those of a shape stacked, options.jobs stacks at
    once in worker processes (None: one per usable CPU; a sweep's runs take one thread each), or on a GPU one
    stack after another in this process; a line per run as it ends. Returns the summary rows
    (rnncount.sweep.summarize) and the folder."""
    device = check_device(options.device)
    on_cpu = device.type == "cpu"
    if not on_cpu and (options.jobs or 1) > 1:
        raise UsageError(f"--jobs trains runs in parallel CPU processes; on {device} leave it at 1, "
                         "or pass --device cpu")
    jobs = (options.jobs or usable_cpus()) if on_cpu else 1
    for run in runs:
        fits(run.model, run.train)
    out = prepare_sweep_out(options, settings)
    todo = [run for run in runs if sweep.finished(run, out) is None]
    groups = sweep.shape_groups(todo)
    where = f"in {min(jobs, max(len(groups), 1))} processes" if on_cpu else f"one after another on {device}"
    say(f"{len(runs)} runs: {len(runs) - len(todo)} finished earlier, training {len(todo)} "
        f"as {len(groups)} stacks of seeds {where}")
    ended = 0
    if not groups:
        return sweep.summarize(runs, out), out
    tasks = {i: (group, out, device, options.compile) for i, group in enumerate(groups)}
    results = (in_processes(train_stacked, tasks, jobs) if on_cpu
               else ((i, train_stacked(*task)) for i, task in tasks.items()))
    for index, outcomes in results:
        for run, outcome in zip(groups[index], outcomes):
            ended += 1
            epochs = None if outcome["error"] else sweep.finished(run, out)["epochs"]
            say(f"[{ended}/{len(todo)}] {report.run_ended(run.name, outcome, epochs)}")
    return sweep.summarize(runs, out), out


def prepare_sweep_out(options: RunOptions, settings: dict) -> Path:
    """A sweep's folder may hold an earlier start of the same sweep (then it resumes), nothing else."""
    out = options.out or default_out("sweep")
    recorded = out / "sweep.json"
    if recorded.is_file():
        try:
            earlier = json.loads(recorded.read_text())
        except ValueError:
            earlier = None
        if not isinstance(earlier, dict) and not options.force:
            raise UsageError(f"--out {out} holds a sweep.json that is not a sweep's record; choose another folder "
                             "or pass --force")
        if earlier != settings and not options.force:
            changed = ", ".join(sorted(k for k in settings.keys() | earlier.keys()
                                       if settings.get(k) != earlier.get(k)))
            raise UsageError(f"--out {out} holds a sweep with other settings ({changed}); choose another folder")
        if earlier == settings:  # the same sweep again: it resumes
            hold(out)
            return out
    out = prepare_out(replace(options, out=out), "sweep")
    write_json_atomically(recorded, settings)
    return out


def resumable(run: sweep.Run, out: Path) -> bool:
    """Whether the run's folder holds a start of this very run (its model file, and a metrics.json with its settings);
    anything else there (an earlier sweep's run with other settings, under --force) is trained over from scratch."""
    return (out / run.name / "model.pt").exists() and sweep.recorded(run, out) is not None


def train_one(run: sweep.Run, out: Path, device: torch.device | str = "cpu", compile: bool = False) -> dict:
    """Train (or resume) one run of a grid in this process, one thread; returns its outcome."""
    torch.set_num_threads(1)
    folder = out / run.name
    folder.mkdir(parents=True, exist_ok=True)
    if resumable(run, out):  # killed part-way earlier: continue from its last epoch
        trainer = load_trainer(folder / "model.pt", device)
    else:
        trainer = Trainer(run.model, run.train, device=device)
    trainer.model.rnn.compile_steps(compile)
    try:
        train_with_checkpoints(trainer, folder)
    except NonFiniteError as error:
        return {"name": run.name, "error": str(error)}
    return {"name": run.name, "error": None}


def train_stacked(runs: list[sweep.Run], out: Path, device: torch.device | str = "cpu", compile: bool = False
                  ) -> list[dict]:
    """Train (or resume) runs that differ only in the seed as one stack (rnncount.stacked); their outcomes.

    Runs that cannot share a stack (a curriculum) train one after another instead."""
    torch.set_num_threads(1)
    try:
        stacked.check_stackable(runs[0].train)
    except ValueError:
        return [train_one(run, out, device, compile) for run in runs]
    members = []
    for run in runs:
        folder = out / run.name
        folder.mkdir(parents=True, exist_ok=True)
        if resumable(run, out):  # killed part-way earlier: continue from its last epoch
            members.append(stacked.Member.resume(folder, device))
        else:
            members.append(stacked.Member.new(run.model, run.train, folder, device=device))
    for _ in stacked.fit_stacked(members, compile):
        pass
    return [{"name": run.name, "error": member.error} for run, member in zip(runs, members)]

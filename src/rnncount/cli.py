"""The command line: rnncount train | compare | sweep | predict | evaluate | generalize | handmade | inspect.

Flow: arguments -> ModelConfig + TrainConfig -> Trainer -> model.pt, metrics.json -> report.
Every user error ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from multiprocessing import get_context
from pathlib import Path

import torch

from . import __version__, generalize, stacked, sweep
from .checkpoint import CheckpointError, load_model, load_trainer, train_with_checkpoints
from .data import counting_data, encode
from .distributed import World, join_world, leave_world, resolve_device
from .elastic import resume_restarted
from .files import write_json_atomically, write_text_atomically
from .init import SCHEMES
from .model import CELLS, PARALLEL, READOUTS, ModelConfig, family
from .train import NonFiniteError, TrainConfig, Trainer, evaluate, first_perfect_epoch, format_epoch, make_datasets


class UsageError(Exception):
    """A mistake in what the user asked for; reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line too
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parsed(text: str, kind: type, noun: str):
    """text as an int or a float, or argparse's one-line error naming what was expected."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = parsed(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed_int(text: str) -> int:
    value = parsed(text, int, "a whole number")
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {value}")
    return value


def finite_float(text: str) -> float:
    value = parsed(text, float, "a number")
    if not abs(value) < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = parsed(text, float, "a number")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def probability(text: str) -> float:
    value = parsed(text, float, "a number")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def cell_list(text: str) -> list[str]:
    cells = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        raise argparse.ArgumentTypeError(
            f"unknown cell {', '.join(unknown) or repr(text)}; choose from {', '.join(CELLS)}")
    if len(set(cells)) != len(cells):
        raise argparse.ArgumentTypeError(f"a cell is named twice in {text!r}")
    return cells


DEVICE_HELP = "auto (CUDA when present), cpu, cuda, cuda:N or mps (auto)"


def int_list(text: str) -> list[int]:
    values = [positive_int(part) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}")
    return list(dict.fromkeys(values))


def seed_list(text: str) -> list[int]:
    """'0-4', '0,2,5' or mixes ('0-2,7') -> distinct seeds, at most stacked.MAX_MEMBERS of them."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise argparse.ArgumentTypeError(f"expected seeds like 0-4 or 0,2,5, got {text!r}")
        if part.startswith("-"):
            raise argparse.ArgumentTypeError(f"seeds must be >= 0, got {part!r}")
        first, dash, last = part.partition("-")
        low, high = seed_int(first), seed_int(last) if dash else seed_int(first)
        if high < low:
            raise argparse.ArgumentTypeError(f"empty range {part!r}")
        if len(seeds) + high - low + 1 > stacked.MAX_MEMBERS:
            raise argparse.ArgumentTypeError(f"more than {stacked.MAX_MEMBERS} seeds in {text!r}; one stack holds "
                                             f"at most {stacked.MAX_MEMBERS} models")
        seeds += range(low, high + 1)
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"seed {repeated[0]} is named twice in {text!r}")
    return seeds


SEEDS_HELP = ("train these seeds as one stacked computation (rnncount.stacked), e.g. 0-4, 0,2,5 or 0-2,7; each "
              "seed a complete run in OUT/%sseedS/ (model.pt, metrics.json); prints min / median / max over them")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnncount", description="Recurrent cells from scratch, trained to count the 1s in "
                                                 "binary sequences.")
    parser.add_argument("--version", action="version", version=f"rnncount {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Training flags default to None so that the ones a user typed can be told apart (for --resume).
    training = Parser(add_help=False)
    group = training.add_argument_group("model and training (defaults: the reference's)")
    group.add_argument("--hidden-size", type=positive_int, help="hidden units (20)")
    group.add_argument("--num-layers", type=positive_int, help="stacked layers (1)")
    group.add_argument("--reset-after", action="store_true", default=None,
                       help="GRU in torch.nn.GRU's reset-after form (default: the reference's reset-before)")
    group.add_argument("--init", choices=SCHEMES, help="initialisation (reference)")
    group.add_argument("--num-heads", type=positive_int, help="sLSTM: heads of its block-diagonal recurrent "
                                                              "matrices; a divisor of --hidden-size (1)")
    group.add_argument("--recurrent-dropout", type=probability, metavar="P",
                       help="drop h_{t-1} in the recurrent matmuls, one mask per sequence (0)")
    group.add_argument("--zoneout", type=probability, metavar="P",
                       help="each unit of h (and c) keeps its previous value with probability P (0)")
    group.add_argument("--length", type=positive_int, help="sequence length (20)")
    group.add_argument("--min-length", type=positive_int, help="train on lengths drawn from [min-length, length]")
    group.add_argument("--train-samples", type=positive_int, help="training sequences (10000)")
    group.add_argument("--test-samples", type=positive_int, help="test sequences (1000)")
    group.add_argument("--batch-size", type=positive_int, help="batch size (16)")
    group.add_argument("--epochs", type=positive_int, help="epochs (10)")
    group.add_argument("--lr", type=positive_float, help="Adam's learning rate (1e-3)")
    group.add_argument("--seed", type=seed_int, help="seed for data, weights and shuffling (0)")
    group.add_argument("--clip-grad-norm", type=positive_float, metavar="X",
                       help="rescale gradients whose total norm exceeds X (off)")
    group.add_argument("--device", default="auto", help=DEVICE_HELP)
    beyond = training.add_argument_group("counting beyond the training length (see README)")
    beyond.add_argument("--recipe", choices=list(generalize.RECIPES),
                        help="a bundle of the settings below, per cell; typed flags override it (reference). "
                             + "; ".join(f"{name}: {text}" for name, text in generalize.RECIPE_HELP.items()))
    beyond.add_argument("--readout", choices=READOUTS, help="the head reads h_T, or the LSTM's cell state c_T (h)")
    beyond.add_argument("--forget-bias", type=finite_float, metavar="B", help="LSTM forget-gate bias at init (the "
                                                                               "--init scheme's)")
    beyond.add_argument("--nonlinearity", choices=("tanh", "relu"), help="the RNN's activation (tanh)")
    beyond.add_argument("--step-loss", type=nonnegative_float, metavar="W",
                        help="add W times the running count's MSE at every step to the loss (0)")
    beyond.add_argument("--lr-end", type=positive_float, metavar="LR",
                        help="decay the learning rate along a cosine to LR over the epochs (off)")
    beyond.add_argument("--curriculum", type=int, metavar="N", help="over the first N epochs, grow the longest "
                                                                    "training length from --min-length (0)")
    beyond.add_argument("--recurrent-decay", type=nonnegative_float, metavar="D",
                        help="shrink W_hh by lr*D after every step, decoupled weight decay (0)")
    output = training.add_argument_group("output")
    output.add_argument("--out", type=Path, help="output folder (default: runs/COMMAND-TIME)")
    output.add_argument("--force", action="store_true", help="write into a non-empty --out, replacing its files")
    output.add_argument("--threads", type=positive_int,
                        help="CPU threads (default: 1 for hidden sizes up to 64, where one is fastest)")
    output.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="run the cells' steps through torch.compile, 20 steps per compiled chunk (off: "
                             "a cold compile costs more than it saves at the reference size)")

    train = commands.add_parser("train", parents=[training], help="train one cell and save it",
                                description="Train a counter and save DIR/model.pt and DIR/metrics.json.")
    train.add_argument("--cell", choices=CELLS, help="the recurrent cell (lstm)")
    train.add_argument("--resume", type=Path, metavar="DIR",
                       help="continue the run saved in DIR (its model.pt, or a --seeds run's DIR/seed*/) up to --epochs")
    train.add_argument("--seeds", type=seed_list, help=SEEDS_HELP % "")

    compare = commands.add_parser("compare", parents=[training], help="train several cells on the same data",
                                  description="Train each cell on the same data and seed; print one table, "
                                              "save a learning-curve plot and the metrics.")
    compare.add_argument("--cells", type=cell_list, default=["lstm", "gru", "rnn"],
                         help=f"comma-separated, from {', '.join(CELLS)} (lstm,gru,rnn)")
    compare.add_argument("--test-lengths", type=int_list, metavar="L,L,...",
                         help="also score each trained cell at these lengths (e.g. 40,100,1000)")
    compare.add_argument("--jobs", type=positive_int, default=1,
                         help="train this many cells at once, each in its own process with one thread; their "
                              "epoch lines come prefixed with the cell (1: one cell after another)")
    compare.add_argument("--seeds", type=seed_list, help=SEEDS_HELP % "CELL/")

    sweep = commands.add_parser("sweep", parents=[training], help="a grid of runs in parallel processes",
                                description="Train every combination of cells, hidden sizes, lengths and seeds in "
                                            "--jobs processes (one thread each). Rerunning with the same --out "
                                            "skips finished runs and resumes unfinished ones.")
    sweep.add_argument("--cells", type=cell_list, default=["lstm", "gru"], help="comma-separated (lstm,gru)")
    sweep.add_argument("--seeds", type=seed_list, default=[0],
                       help="e.g. 0-9 or 0,3,7 (0); runs that differ only in the seed train stacked, in one process")
    sweep.add_argument("--hidden-sizes", type=int_list, help="e.g. 10,20,40 (--hidden-size)")
    sweep.add_argument("--lengths", type=int_list, help="e.g. 20,50 (--length)")
    sweep.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help="worker processes (CPUs)")

    predict = commands.add_parser("predict", help="count the 1s in sequences with a trained model")
    predict.add_argument("--model", type=Path, required=True, help="a model.pt written by train")
    predict.add_argument("--device", default="auto", help=DEVICE_HELP)
    predict.add_argument("sequences", nargs="+", metavar="SEQUENCE", help="e.g. 0110100; '-' reads one per line "
                                                                         "from stdin")

    evaluate_ = commands.add_parser("evaluate", help="loss, accuracy and MAE on fresh data")
    evaluate_.add_argument("--model", type=Path, required=True, help="a model.pt written by train")
    evaluate_.add_argument("--length", type=positive_int, help="sequence length (the model's training length)")
    evaluate_.add_argument("--samples", type=positive_int, default=1000, help="sequences (1000)")
    evaluate_.add_argument("--seed", type=seed_int, default=12345, help="seed of the fresh data (12345)")
    evaluate_.add_argument("--device", default="auto", help=DEVICE_HELP)

    lengths_help = f"comma-separated ({','.join(map(str, generalize.DEFAULT_LENGTHS))})"
    generalize_ = commands.add_parser("generalize", help="accuracy and MAE at many lengths: a table, JSON, a plot",
                                      description="Score a trained model on fresh data at each length; print the "
                                                  "table, save generalization.json, .md and .png.")
    generalize_.add_argument("--model", type=Path, required=True, help="a model.pt written by train")
    generalize_.add_argument("--lengths", type=int_list, default=list(generalize.DEFAULT_LENGTHS), help=lengths_help)
    generalize_.add_argument("--samples", type=positive_int, default=1000, help="sequences per length (1000)")
    generalize_.add_argument("--seed", type=seed_int, default=12345, help="seed of the fresh data (12345)")
    generalize_.add_argument("--out", type=Path, help="folder for the files (the model's)")
    generalize_.add_argument("--device", default="auto", help=DEVICE_HELP)

    handmade = commands.add_parser("handmade", help="an LSTM set by hand to count exactly, to any length",
                                   description="Build the hand-set counting LSTM (rnncount.handmade), score it at "
                                               "each length, and save it as a model file with --out.")
    handmade.add_argument("--lengths", type=int_list, default=[20, 1000, 10000], help="comma-separated (20,1000,10000)")
    handmade.add_argument("--samples", type=positive_int, default=100, help="sequences per length (100)")
    handmade.add_argument("--seed", type=seed_int, default=12345, help="seed of the fresh data (12345)")
    handmade.add_argument("--out", type=Path, help="save DIR/model.pt, for predict, generalize and inspect")
    handmade.add_argument("--force", action="store_true", help="replace DIR/model.pt")

    inspect = commands.add_parser("inspect", help="every unit's h_t and c_t over one sequence, as a PNG",
                                  description="Run a model over one sequence; plot every unit's h_t and c_t "
                                              "(heatmaps and lines), mark the unit that tracks the running count "
                                              "best and print that correlation.")
    inspect.add_argument("--model", type=Path, required=True, help="a model.pt written by train or handmade")
    inspect.add_argument("--out", type=Path, help="the PNG to write (DIR/inspect.png beside the model)")
    inspect.add_argument("--device", default="auto", help=DEVICE_HELP)
    inspect.add_argument("sequence", metavar="SEQUENCE", help="e.g. 0110100; '-' reads it from stdin")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    echo = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 reports what every rank meets
    try:
        return {"train": run_train, "compare": run_compare, "sweep": run_sweep, "predict": run_predict,
                "evaluate": run_evaluate, "generalize": run_generalize, "handmade": run_handmade,
                "inspect": run_inspect}[args.command](args)
    except (UsageError, CheckpointError) as error:
        if echo:
            print(f"rnncount {args.command}: error: {error}", file=sys.stderr)
        return 2
    except NonFiniteError as error:
        if echo:
            print(f"rnncount {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rnncount {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as error:  # a full disk, a folder that vanished: what happened, in one line
        print(f"rnncount {args.command}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if os.environ.get("RNNCOUNT_DEBUG"):
            raise
        print(f"rnncount {args.command}: internal error: {type(error).__name__}: {error} "
              "(set RNNCOUNT_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    finally:
        leave_world()


# ---- configuration ------------------------------------------------------------------------------

def configs_from(args: argparse.Namespace, cell: str) -> tuple[ModelConfig, TrainConfig]:
    """The typed flags over the recipe's settings for this cell, over the reference defaults."""
    def given(cls) -> dict:
        return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    try:
        model, train = generalize.split_settings(generalize.recipe_settings(args.recipe or "reference", cell))
        configs = (ModelConfig(**{**model, **given(ModelConfig), "cell": cell}),
                   TrainConfig(**{**train, **given(TrainConfig)}))
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    if configs[1].recurrent_decay and family(cell) in PARALLEL:
        raise UsageError(f"--recurrent-decay: the {cell} has no recurrent weights W_hh to decay")
    return configs


def set_threads(args: argparse.Namespace, hidden_size: int) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif hidden_size <= 64:  # small matmuls: a second thread costs more in sync than it gains
        torch.set_num_threads(1)


def set_compile(args: argparse.Namespace, trainer: Trainer) -> None:
    """--compile: the cells' training steps through rnncount.fast."""
    trainer.model.rnn.compile_steps(args.compile)


def prepare_out(args: argparse.Namespace, command: str) -> Path:
    """The output folder: new or empty (or --force), created, and writable."""
    out = args.out or Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise UsageError(f"--out {out} exists and is not empty; choose another folder or pass --force")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".rnncount-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write to --out {out}: {error.strerror or error}") from None
    return out


# ---- commands -----------------------------------------------------------------------------------

def start(args: argparse.Namespace) -> tuple[World, torch.device]:
    """Join torchrun's processes if launched by it, and pick the device."""
    try:
        return join_world(args.device)
    except ValueError as error:
        raise UsageError(f"--device: {error}") from None


def prepare_out_once(args: argparse.Namespace, command: str, world: World) -> Path:
    """prepare_out on rank 0; every rank learns whether it worked."""
    out, error = None, None
    if world.is_main:
        try:
            out = prepare_out(args, command)
        except UsageError as failure:
            error = str(failure)
    error = world.agree(error)
    if error:
        raise UsageError(error)
    return out or Path(os.devnull)  # ranks other than 0 write nothing


def run_train(args: argparse.Namespace) -> int:
    world, device = start(args)
    if args.seeds is not None or (args.resume is not None and not (args.resume / "model.pt").exists()
                                  and any(args.resume.glob("seed*/model.pt"))):
        return run_seeds(args, [args.cell or "lstm"], "train", world, device)
    if args.resume is not None:
        trainer, out = resume(args, device, world)
    else:
        model_config, train_config = configs_from(args, args.cell or "lstm")
        out, trainer = args.out, resume_restarted(args.out, model_config, train_config, device, world)
        if trainer is None:  # not restarted by torchrun, or nothing of this run's to resume
            out = prepare_out_once(args, "train", world)
            trainer = Trainer(model_config, train_config, device=device, world=world)
    set_threads(args, trainer.model_config.hidden_size)
    set_compile(args, trainer)
    fit(trainer, out)
    if world.is_main:
        print(f"Saved the model to {out / 'model.pt'} and the metrics to {out / 'metrics.json'}")
    return 0


def resume_typed(args: argparse.Namespace) -> None:
    """--resume takes no settings but --epochs: a UsageError naming the others typed."""
    names = dict.fromkeys([*(f.name for f in fields(ModelConfig)), *(f.name for f in fields(TrainConfig)), "out"])
    typed = [f"--{name.replace('_', '-')}" for name in names
             if name != "epochs" and getattr(args, name, None) is not None]
    if typed:
        raise UsageError(f"--resume continues the saved run with its own settings; drop {', '.join(typed)}")


def resume(args: argparse.Namespace, device: torch.device, world: World) -> tuple[Trainer, Path]:
    resume_typed(args)
    out = args.resume
    trainer = load_trainer(out / "model.pt", device, world)
    if args.epochs is not None:
        if args.epochs < len(trainer.history):
            raise UsageError(f"--epochs {args.epochs} is fewer than the {len(trainer.history)} already done")
        trainer.train_config.epochs = args.epochs
    if world.is_main:
        print(f"Resuming {out} after epoch {len(trainer.history)} of {trainer.train_config.epochs}")
    return trainer, out


def fit(trainer: Trainer, out: Path, prefix: str = "") -> None:
    """Train the remaining epochs; rank 0 prints the reference's lines and saves a checkpoint after each.

    With a prefix (a worker process among others, e.g. "[gru] ") each line starts with it, and no progress bar
    is drawn (several would fight over the terminal).
    """
    epochs = trainer.train_config.epochs
    train_with_checkpoints(trainer, out, lambda metrics: print(
        "\n".join(prefix + line for line in format_epoch(metrics, epochs).splitlines()), flush=True),
        progress=not prefix)


def run_compare(args: argparse.Namespace) -> int:
    configs = {cell: configs_from(args, cell) for cell in args.cells}
    world, device = start(args)
    if args.seeds is not None:
        return run_seeds(args, args.cells, "compare", world, device)
    if args.jobs > 1 and (world.size > 1 or device.type != "cpu"):
        raise UsageError("--jobs trains cells in parallel CPU processes; under torchrun or on a GPU leave it at 1")
    out = prepare_out_once(args, "compare", world)
    train_config = configs[args.cells[0]][1]
    data = make_datasets(train_config)  # the same data for every cell (a recipe may change the rest per cell)
    if args.jobs > 1:
        outcomes = compare_in_processes(args, configs, data, out)
    else:
        outcomes = {cell: compare_one(args, cell, *configs[cell], data, out, device, world) for cell in args.cells}
    if world.is_main:
        settings = {cell: {**model.to_dict(), **training.to_dict()} for cell, (model, training) in configs.items()}
        report_comparison({cell: history for cell, (history, _) in outcomes.items()}, out, settings,
                          {cell: rows for cell, (_, rows) in outcomes.items() if rows is not None})
    return 0


def run_seeds(args: argparse.Namespace, cells: list[str], command: str, world: World, device: torch.device) -> int:
    """train/compare --seeds (and train --resume of such a run): each cell's seeds trained stacked, one table."""
    if world.size > 1:
        raise UsageError("--seeds trains the seeds stacked in one process; run it without torchrun")
    if args.seed is not None and args.seeds is not None:
        raise UsageError("--seed and --seeds: give one of them")
    if getattr(args, "resume", None) is not None and args.seeds is not None:
        raise UsageError("--resume continues the seeds saved in its folder; drop --seeds")
    if getattr(args, "jobs", 1) > 1:
        raise UsageError("--jobs with --seeds: the seeds of a cell already share one process; leave --jobs at 1")
    runs: dict[str, list] = {}
    try:
        if args.seeds is None:  # train --resume DIR of a stacked run
            resume_typed(args)
            out = args.resume
            members = stacked.resumed_members(out, device, args.epochs)
            runs[members[0].trainer.model_config.cell] = members
            print(f"Resuming the {len(members)} seeds in {out} after epoch "
                  f"{min(len(m.trainer.history) for m in members)} of {members[0].trainer.train_config.epochs}")
        else:
            configs = {cell: configs_from(args, cell) for cell in cells}
            for model_config, train_config in configs.values():
                stacked.check_stackable(train_config)
                stacked.check_memory(model_config, train_config, len(args.seeds))
            out = prepare_out(args, command)
            shared = configs[cells[0]][1]  # compare: every cell of a seed on that seed's data, as solo compare does
            def data_for(seed):
                return make_datasets(replace(shared, seed=seed)) if command == "compare" else None
            for cell in cells:
                model_config, train_config = configs[cell]
                folder = out / cell if command == "compare" else out
                runs[cell] = stacked.new_members(model_config, train_config, args.seeds, folder, data_for, device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    seconds = {}
    for cell, members in runs.items():
        set_threads(args, members[0].trainer.model_config.hidden_size)
        if len(runs) > 1:
            print(f"== {cell}: seeds {', '.join(str(m.trainer.train_config.seed) for m in members)} ==", flush=True)
        seconds[cell] = stacked.run_members(members, args.compile, echo=lambda text: print(text, flush=True))
    first = next(iter(runs.values()))[0].trainer
    stacked.report_seeds(runs, seconds, out, {**first.model_config.to_dict(), "cells": list(runs),
                                              **first.train_config.to_dict(),
                                              "seeds": [m.trainer.train_config.seed for m in next(iter(runs.values()))]})
    return 1 if any(m.error for members in runs.values() for m in members) else 0


def compare_one(args: argparse.Namespace, cell: str, model_config: ModelConfig, train_config: TrainConfig, data,
                out: Path, device: torch.device, world: World, prefix: str = "") -> tuple[list[dict], list | None]:
    """Train one cell of a comparison into out/CELL; returns its epochs' metrics and its scores at --test-lengths."""
    if world.is_main:
        (out / cell).mkdir(exist_ok=True)
    if not prefix:  # one after another in this process (a worker process has its one thread already)
        if world.is_main:
            print(f"== {cell} ==", flush=True)
        set_threads(args, model_config.hidden_size)
    trainer = Trainer(model_config, train_config, data, device=device, world=world)
    set_compile(args, trainer)
    fit(trainer, out / cell, prefix)
    rows = None
    if args.test_lengths and world.is_main:
        rows = generalize.generalization(trainer.model, args.test_lengths, device=device)
    return [m.to_dict() for m in trainer.history], rows


def compare_in_processes(args: argparse.Namespace, configs: dict, data, out: Path) -> dict:
    """compare_one for every cell, --jobs at a time in spawned processes of one thread each, in the cells' order."""
    jobs = min(args.jobs, len(configs))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=sweep.one_thread) as pool:
        futures = {cell: pool.submit(compare_one, args, cell, *configs[cell], data, out, torch.device("cpu"),
                                     World(), f"[{cell}] ") for cell in configs}
        return {cell: future.result() for cell, future in futures.items()}


def report_comparison(histories: dict[str, list[dict]], out: Path, settings: dict[str, dict],
                      lengths: dict[str, list[dict]] | None = None) -> None:
    """Print the table (with each cell's accuracy at other lengths, if scored); save it, the metrics and the
    learning curves. settings: each cell's configuration; metrics.json keeps it per cell, and under "config"
    the cells and what all of them share (a recipe gives each cell its own readout, forget bias, ...)."""
    table = comparison_table(histories)
    for index, row in enumerate(next(iter(lengths.values())) if lengths else []):
        table += f"\n| accuracy at length {row['length']} | " + " | ".join(
            f"{lengths[cell][index]['accuracy']:.3f}" for cell in histories) + " |"
    print(table)
    first = next(iter(settings.values()))
    shared = {k: v for k, v in first.items() if all(s.get(k) == v for s in settings.values())}
    report = {"config": {"cells": list(histories), **shared},
              "cells": {cell: {"config": settings[cell], "epochs": epochs,
                               **({"lengths": lengths[cell]} if lengths else {})} for cell, epochs in histories.items()}}
    write_json_atomically(out / "metrics.json", report)
    write_text_atomically(out / "summary.md", table + "\n")
    saved = f"the table to {out / 'summary.md'}, the metrics to {out / 'metrics.json'}"
    try:
        from .plots import save_learning_curves
        save_learning_curves(histories, out / "learning_curves.png")
        saved += f", the plot to {out / 'learning_curves.png'}"
    except RuntimeError as error:  # matplotlib missing: everything else is saved
        print(f"rnncount compare: no plot: {error}", file=sys.stderr)
    print(f"Saved {saved}, and each model to {out}/CELL/model.pt")


def run_sweep(args: argparse.Namespace) -> int:
    if args.recipe not in (None, "reference") and len(args.cells) > 1:
        raise UsageError("--recipe in a sweep takes one cell (its settings differ per cell): run a sweep per cell")
    model_config, train_config = configs_from(args, args.cells[0])
    runs = sweep.grid(model_config, train_config, args.cells, args.hidden_sizes or [model_config.hidden_size],
                      args.lengths or [train_config.length], args.seeds)
    settings = {**model_config.to_dict(), **train_config.to_dict()}
    for axis in ("cell", "hidden_size", "length", "seed"):
        settings.pop(axis)
    out = prepare_sweep_out(args, settings)
    todo = [run for run in runs if sweep.finished(run, out) is None]
    stacks = len(sweep.shape_groups(todo))
    print(f"{len(runs)} runs: {len(runs) - len(todo)} finished earlier, training {len(todo)} "
          f"as {stacks} stacks of seeds in {min(args.jobs, max(stacks, 1))} processes", flush=True)
    for number, (run, outcome) in enumerate(sweep.execute(runs, out, args.jobs), 1):
        print(f"[{number}/{len(todo)}] {sweep.describe(run, outcome, out)}", flush=True)
    rows = sweep.summarize(runs, out)
    table = sweep.as_table(rows)
    print(table)
    write_text_atomically(out / "summary.csv", sweep.as_csv(rows))
    write_text_atomically(out / "summary.md", table + "\n")
    print(f"Saved the summary to {out / 'summary.csv'} and {out / 'summary.md'}, each run to {out}/RUN/")
    return 0


def prepare_sweep_out(args: argparse.Namespace, settings: dict) -> Path:
    """A sweep's folder may hold an earlier start of the same sweep (then it resumes), nothing else."""
    out = args.out or Path("runs") / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    recorded = out / "sweep.json"
    if recorded.is_file():
        earlier = json.loads(recorded.read_text())
        if earlier != settings and not args.force:
            changed = ", ".join(sorted(k for k in settings.keys() | earlier.keys()
                                       if settings.get(k) != earlier.get(k)))
            raise UsageError(f"--out {out} holds a sweep with other settings ({changed}); choose another folder")
        if earlier == settings:
            return out
    out = prepare_out(args, "sweep")
    write_json_atomically(recorded, settings)
    return out


def comparison_table(histories: dict[str, list[dict]]) -> str:
    """Markdown: test accuracy per epoch per cell, first epoch at 100%, final test loss, time in all and per epoch."""
    cells = list(histories)
    rows = [f"| epoch | {' | '.join(cells)} |", "|---" * (len(cells) + 1) + "|"]
    for i in range(max(len(h) for h in histories.values())):
        rows.append(f"| {i + 1} | " + " | ".join(
            f"{histories[c][i]['test_accuracy']:.3f}" if i < len(histories[c]) else "" for c in cells) + " |")
    firsts = [str(first_perfect_epoch(histories[c]) or "never") for c in cells]
    rows.append("| first epoch at 100% | " + " | ".join(firsts) + " |")
    rows.append("| final test loss | " + " | ".join(f"{histories[c][-1]['test_loss']:.4f}" for c in cells) + " |")
    rows.append("| time (s) | " + " | ".join(f"{sum(e['seconds'] for e in histories[c]):.1f}" for c in cells) + " |")
    rows.append("| time per epoch (s) | " + " | ".join(
        f"{sum(e['seconds'] for e in histories[c]) / len(histories[c]):.1f}" for c in cells) + " |")
    return "\n".join(rows)


def read_sequences(items: list[str]) -> list[str]:
    sequences = []
    for item in items:
        if item == "-":
            lines = [line.strip() for line in sys.stdin]
            sequences += [line for line in lines if line]
        else:
            sequences.append(item)
    if not sequences:
        raise UsageError("no sequences given (stdin was empty)")
    return sequences


def model_on_device(args: argparse.Namespace):
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise UsageError(f"--device: {error}") from None
    model, payload = load_model(args.model)
    return model.to(device), payload, device


def training_lengths(payload: dict) -> tuple[int, int] | None:
    """The shortest and longest sequence a model file's model was trained on (None: not trained, e.g. handmade)."""
    config = payload.get("train_config")
    if not config:
        return None
    return config.get("min_length") or config["length"], config["length"]


def warn_outside_training(payload: dict, lengths: list[int]) -> None:
    """One line on stderr when some lengths lie outside the model's training lengths: it may count wrong there."""
    trained = training_lengths(payload)
    outside = sorted({n for n in lengths if trained and not trained[0] <= n <= trained[1]})
    if not outside:
        return
    span = f"{trained[0]}" if trained[0] == trained[1] else f"{trained[0]}-{trained[1]}"
    shown = ", ".join(map(str, outside[:5])) + (", ..." if len(outside) > 5 else "")
    recipe = (payload.get("train_config") or {}).get("recipe")
    advice = ("it was trained with --recipe generalize, which counts far past its training lengths (rnncount "
              "generalize measures how far)" if recipe == "generalize" else
              "its counts there may be wrong; a model trained with --recipe generalize counts far past them")
    noun = "length {} is" if len(outside) == 1 else "lengths {} are"
    print(f"rnncount: note: {noun.format(shown)} outside the lengths this model was trained on ({span}): {advice}",
          file=sys.stderr)


def run_predict(args: argparse.Namespace) -> int:
    model, payload, device = model_on_device(args)
    sequences = read_sequences(args.sequences)
    try:
        encoded = [encode(s) for s in sequences]  # each (T_i, 1)
    except ValueError as error:
        raise UsageError(str(error)) from None
    lengths = torch.tensor([len(s) for s in sequences])
    warn_outside_training(payload, lengths.tolist())
    inputs = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True)  # (N, T, 1)
    with torch.no_grad():
        predictions = model(inputs.to(device), lengths).tolist()
    for sequence, raw in zip(sequences, predictions):
        print(f"{sequence}  {round(raw)}  ({raw:.4f})")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    model, payload, device = model_on_device(args)
    length = args.length or (payload.get("train_config") or {}).get("length", 20)  # a handmade model has none
    warn_outside_training(payload, [length])
    data = counting_data(args.samples, length, torch.Generator().manual_seed(args.seed)).to(device)
    result = evaluate(model, data)
    print(f"Length {length}, {args.samples} samples (seed {args.seed}): Loss: {result['loss']:.4f}; "
          f"Accuracy: {result['accuracy']:.4f}; MAE: {result['mae']:.4f}")
    return 0


def run_generalize(args: argparse.Namespace) -> int:
    model, payload, device = model_on_device(args)
    out = args.out or args.model.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot write to --out {out}: {error.strerror or error}") from None
    if not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if payload["model_config"].get("hidden_size", 20) <= 64:  # small matmuls: one thread is fastest
        torch.set_num_threads(1)
    rows = generalize.generalization(model, args.lengths, args.samples, args.seed, device, progress=True)
    trained = payload.get("train_config", {}).get("length")
    label = f"{payload['model_config']['cell']} ({args.model})"
    table = ("| length | accuracy | MAE | loss |\n|---|---|---|---|\n"
             + "\n".join(f"| {r['length']} | {r['accuracy']:.3f} | {r['mae']:.3f} | {r['loss']:.4g} |" for r in rows))
    origin = f"trained on length {trained}" if trained else payload.get("note") or "not trained here"
    print(f"{label}, {origin}; {args.samples} samples per length (seed {args.seed})")
    print(table)
    report = {"model": str(args.model), "model_config": payload["model_config"],
              "train_config": payload.get("train_config"), "samples": args.samples, "seed": args.seed,
              "lengths": rows}
    write_json_atomically(out / "generalization.json", report)
    write_text_atomically(out / "generalization.md", table + "\n")
    saved = f"the table to {out / 'generalization.md'}, the results to {out / 'generalization.json'}"
    try:
        from .plots import save_generalization
        save_generalization({payload["model_config"]["cell"]: rows}, out / "generalization.png", trained)
        saved += f", the plot to {out / 'generalization.png'}"
    except RuntimeError as error:
        print(f"rnncount generalize: no plot: {error}", file=sys.stderr)
    print(f"Saved {saved}")
    return 0


def run_handmade(args: argparse.Namespace) -> int:
    from .checkpoint import save_model
    from .handmade import SATURATION, handmade_lstm
    model = handmade_lstm()
    if args.out is not None:
        path = args.out / "model.pt"
        if path.exists() and not args.force:
            raise UsageError(f"{path} exists; choose another --out or pass --force")
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"cannot write to --out {args.out}: {error.strerror or error}") from None
    print(f"One LSTM unit, W_hh = 0: i = f = sigmoid({SATURATION:g}) = 1, g = tanh({SATURATION:g} x) = x, "
          "c_t = c_(t-1) + x_t, count = c_T")
    rows = generalize.generalization(model, args.lengths, args.samples, args.seed)
    print("| length | accuracy | MAE |\n|---|---|---|")
    for row in rows:
        print(f"| {row['length']} | {row['accuracy']:.3f} | {row['mae']:.3g} |")
    if args.out is not None:
        save_model(args.out / "model.pt", model, note="set by hand (rnncount.handmade), not trained")
        print(f"Saved the model to {args.out / 'model.pt'}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from .inspection import best_unit, run_trace
    model, payload, _ = model_on_device(args)
    (sequence,) = read_sequences([args.sequence])[:1]
    try:
        trace = run_trace(model, sequence)
    except ValueError as error:
        raise UsageError(str(error)) from None
    out = args.out or args.model.parent / "inspect.png"
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the PNG's path")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write to --out {out}: folder {out.parent} does not exist")
    best = best_unit(trace)
    config = payload["model_config"]
    print(f"{config['cell']}, {config['hidden_size']} units, readout {config.get('readout', 'h')}: "
          f"predicts {trace.prediction[-1].item():.4f} for {trace.count[-1].item():.0f} 1s in {len(sequence)} steps")
    if best is None:
        print("No unit correlates with the running count here (the count or every unit is constant)")
    else:
        print(f"Best counting unit: {best.state}[{best.unit}], correlation with the running count "
              f"r = {best.correlation:.6f}")
    from .plots import save_inspection
    try:
        save_inspection(trace, best, out, title=f"{config['cell']} from {args.model}")
    except RuntimeError as error:
        raise UsageError(str(error)) from None
    print(f"Saved the picture to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

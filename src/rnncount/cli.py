"""The command line: rnncount train | compare | predict | evaluate.

Flow: arguments -> ModelConfig + TrainConfig -> Trainer -> model.pt, metrics.json -> report.
Every user error ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch

from . import __version__
from .checkpoint import CheckpointError, load_model, load_trainer, save_checkpoint, save_metrics
from .data import counting_data, encode
from .files import write_atomically
from .model import CELLS, ModelConfig
from .train import NonFiniteError, TrainConfig, Trainer, evaluate, format_epoch, make_datasets


class UsageError(Exception):
    """A mistake in what the user asked for; reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line too
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def cell_list(text: str) -> list[str]:
    cells = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        raise argparse.ArgumentTypeError(f"unknown cell {', '.join(unknown) or repr(text)}; choose from {', '.join(CELLS)}")
    if len(set(cells)) != len(cells):
        raise argparse.ArgumentTypeError(f"a cell is named twice in {text!r}")
    return cells


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
    group.add_argument("--init", choices=("reference", "torch", "orthogonal"), help="initialisation (reference)")
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
    output = training.add_argument_group("output")
    output.add_argument("--out", type=Path, help="output folder (default: runs/COMMAND-TIME)")
    output.add_argument("--force", action="store_true", help="write into a non-empty --out, replacing its files")
    output.add_argument("--threads", type=positive_int,
                        help="CPU threads (default: 1 for hidden sizes up to 64, where one is fastest)")
    output.add_argument("--compile", action=argparse.BooleanOptionalAction,
                        help="run the cells' steps through torch.compile (default: for runs of at least "
                             f"{AUTO_COMPILE_BATCHES} training batches, which repay the compile)")

    train = commands.add_parser("train", parents=[training], help="train one cell and save it",
                                description="Train a counter and save DIR/model.pt and DIR/metrics.json.")
    train.add_argument("--cell", choices=CELLS, help="the recurrent cell (lstm)")
    train.add_argument("--resume", type=Path, metavar="DIR",
                       help="continue the run saved in DIR (its model.pt) up to --epochs")

    compare = commands.add_parser("compare", parents=[training], help="train several cells on the same data",
                                  description="Train each cell on the same data and seed; print one table, "
                                              "save a learning-curve plot and the metrics.")
    compare.add_argument("--cells", type=cell_list, default=list(CELLS), help="comma-separated (lstm,gru,rnn)")

    predict = commands.add_parser("predict", help="count the 1s in sequences with a trained model")
    predict.add_argument("--model", type=Path, required=True, help="a model.pt written by train")
    predict.add_argument("sequences", nargs="+", metavar="SEQUENCE", help="e.g. 0110100; '-' reads one per line "
                                                                         "from stdin")

    evaluate_ = commands.add_parser("evaluate", help="loss, accuracy and MAE on fresh data")
    evaluate_.add_argument("--model", type=Path, required=True, help="a model.pt written by train")
    evaluate_.add_argument("--length", type=positive_int, help="sequence length (the model's training length)")
    evaluate_.add_argument("--samples", type=positive_int, default=1000, help="sequences (1000)")
    evaluate_.add_argument("--seed", type=seed_int, default=12345, help="seed of the fresh data (12345)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": run_train, "compare": run_compare, "predict": run_predict,
                "evaluate": run_evaluate}[args.command](args)
    except (UsageError, CheckpointError) as error:
        print(f"rnncount {args.command}: error: {error}", file=sys.stderr)
        return 2
    except NonFiniteError as error:
        print(f"rnncount {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rnncount {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a full disk, a folder that vanished: what happened, in one line
        print(f"rnncount {args.command}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if os.environ.get("RNNCOUNT_DEBUG"):
            raise
        print(f"rnncount {args.command}: internal error: {type(error).__name__}: {error} "
              "(set RNNCOUNT_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1


# ---- configuration ------------------------------------------------------------------------------

def configs_from(args: argparse.Namespace, cell: str) -> tuple[ModelConfig, TrainConfig]:
    """The typed flags over the reference defaults."""
    def given(cls) -> dict:
        return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    try:
        return ModelConfig(**{**given(ModelConfig), "cell": cell}), TrainConfig(**given(TrainConfig))
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None


def set_threads(args: argparse.Namespace, hidden_size: int) -> None:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif hidden_size <= 64:  # small matmuls: a second thread costs more in sync than it gains
        torch.set_num_threads(1)


AUTO_COMPILE_BATCHES = 2000  # below this, a compile (seconds, once) costs more than it saves


def set_compile(args: argparse.Namespace, trainer: Trainer) -> None:
    """--compile / --no-compile; by default, compile runs with enough training batches to repay it."""
    config = trainer.train_config
    batches = config.epochs * math.ceil(config.train_samples / config.batch_size)
    enabled = args.compile if args.compile is not None else batches >= AUTO_COMPILE_BATCHES
    trainer.model.rnn.compile_steps(enabled)


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

def run_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        trainer, out = resume(args)
    else:
        model_config, train_config = configs_from(args, args.cell or "lstm")
        out = prepare_out(args, "train")
        trainer = Trainer(model_config, train_config)
    set_threads(args, trainer.model_config.hidden_size)
    set_compile(args, trainer)
    fit(trainer, out)
    print(f"Saved the model to {out / 'model.pt'} and the metrics to {out / 'metrics.json'}")
    return 0


def resume(args: argparse.Namespace) -> tuple[Trainer, Path]:
    names = dict.fromkeys([*(f.name for f in fields(ModelConfig)), *(f.name for f in fields(TrainConfig)), "out"])
    typed = [f"--{name.replace('_', '-')}" for name in names
             if name != "epochs" and getattr(args, name, None) is not None]
    if typed:
        raise UsageError(f"--resume continues the saved run with its own settings; drop {', '.join(typed)}")
    out = args.resume
    trainer = load_trainer(out / "model.pt")
    if args.epochs is not None:
        if args.epochs < len(trainer.history):
            raise UsageError(f"--epochs {args.epochs} is fewer than the {len(trainer.history)} already done")
        trainer.train_config.epochs = args.epochs
    print(f"Resuming {out} after epoch {len(trainer.history)} of {trainer.train_config.epochs}")
    return trainer, out


def fit(trainer: Trainer, out: Path) -> None:
    """Train the remaining epochs, printing the reference's lines and saving a checkpoint after each."""
    epochs = trainer.train_config.epochs
    try:
        for metrics in trainer.epochs(progress=True):
            print(format_epoch(metrics, epochs), flush=True)
            save_checkpoint(out / "model.pt", trainer)
            save_metrics(out / "metrics.json", trainer)
    except NonFiniteError as error:
        kept = (f"{out / 'model.pt'} keeps epoch {len(trainer.history)}" if trainer.history
                else "no epoch had finished, so nothing was saved")
        raise NonFiniteError(f"{error}; {kept} (try a lower --lr or --clip-grad-norm)") from None


def run_compare(args: argparse.Namespace) -> int:
    configs = {cell: configs_from(args, cell) for cell in args.cells}
    out = prepare_out(args, "compare")
    train_config = configs[args.cells[0]][1]
    data = make_datasets(train_config)  # the same data for every cell
    histories = {}
    for cell, (model_config, _) in configs.items():
        print(f"== {cell} ==", flush=True)
        set_threads(args, model_config.hidden_size)
        (out / cell).mkdir(exist_ok=True)
        trainer = Trainer(model_config, train_config, data)
        set_compile(args, trainer)
        fit(trainer, out / cell)
        histories[cell] = [m.to_dict() for m in trainer.history]
    table = comparison_table(histories)
    print(table)
    report = {"config": {**configs[args.cells[0]][0].to_dict(), "cells": args.cells, **train_config.to_dict()},
              "cells": {cell: {"epochs": epochs} for cell, epochs in histories.items()}}
    write_atomically(out / "metrics.json", lambda f: f.write((json.dumps(report, indent=2) + "\n").encode()))
    write_atomically(out / "summary.md", lambda f: f.write((table + "\n").encode()))
    saved = f"the table to {out / 'summary.md'}, the metrics to {out / 'metrics.json'}"
    try:
        from .plots import save_learning_curves
        save_learning_curves(histories, out / "learning_curves.png")
        saved += f", the plot to {out / 'learning_curves.png'}"
    except RuntimeError as error:  # matplotlib missing: everything else is saved
        print(f"rnncount compare: no plot: {error}", file=sys.stderr)
    print(f"Saved {saved}, and each model to {out}/CELL/model.pt")
    return 0


def comparison_table(histories: dict[str, list[dict]]) -> str:
    """Markdown: test accuracy per epoch per cell, first epoch at 100%, final test loss, time."""
    cells = list(histories)
    rows = [f"| epoch | {' | '.join(cells)} |", "|---" * (len(cells) + 1) + "|"]
    for i in range(max(len(h) for h in histories.values())):
        rows.append(f"| {i + 1} | " + " | ".join(
            f"{histories[c][i]['test_accuracy']:.3f}" if i < len(histories[c]) else "" for c in cells) + " |")
    firsts = [next((str(e["epoch"]) for e in histories[c] if e["test_accuracy"] == 1.0), "never") for c in cells]
    rows.append("| first epoch at 100% | " + " | ".join(firsts) + " |")
    rows.append("| final test loss | " + " | ".join(f"{histories[c][-1]['test_loss']:.4f}" for c in cells) + " |")
    rows.append("| time (s) | " + " | ".join(f"{sum(e['seconds'] for e in histories[c]):.1f}" for c in cells) + " |")
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


def run_predict(args: argparse.Namespace) -> int:
    model, _ = load_model(args.model)
    sequences = read_sequences(args.sequences)
    try:
        encoded = [encode(s) for s in sequences]  # each (T_i, 1)
    except ValueError as error:
        raise UsageError(str(error)) from None
    lengths = torch.tensor([len(s) for s in sequences])
    inputs = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True)  # (N, T, 1)
    with torch.no_grad():
        predictions = model(inputs, lengths).tolist()
    for sequence, raw in zip(sequences, predictions):
        print(f"{sequence}  {round(raw)}  ({raw:.4f})")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    model, payload = load_model(args.model)
    length = args.length or payload["train_config"]["length"]
    data = counting_data(args.samples, length, torch.Generator().manual_seed(args.seed))
    result = evaluate(model, data)
    print(f"Length {length}, {args.samples} samples (seed {args.seed}): Loss: {result['loss']:.4f}; "
          f"Accuracy: {result['accuracy']:.4f}; MAE: {result['mae']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

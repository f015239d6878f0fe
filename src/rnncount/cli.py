"""The command line: rnncount train | compare | sweep | predict | evaluate | generalize | handmade | inspect.

Flow: arguments -> ModelConfig + TrainConfig (configs_from) and runs.RunOptions (options_from) -> rnncount.runs
(train, resume, compare, seeds, sweep_grid: model.pt, metrics.json) -> rnncount.report (tables, JSON, plots)
-> printed here. The commands on one saved model (predict, evaluate, generalize, handmade, inspect) call
rnncount.use, rnncount.generalize and rnncount.report. Nothing below this module sees the Namespace.
Every user error ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import fields
from pathlib import Path

from . import __version__, generalize, recipes, report, runs, stacked, sweep, use
from ._checks import (check_finite, check_nonnegative, check_positive, check_positive_int, check_probability,
                      check_seed, check_seed_count, check_seeds)
from .checkpoint import CheckpointError, save_model
from .distributed import leave_world, lost_a_peer
from .handmade import SATURATION, handmade_lstm
from .init import SCHEMES
from .model import CELLS, FORMS, PARALLEL, READOUTS, ModelConfig, family, without_other_forms
from .runs import UsageError
from .train import NonFiniteError, TrainConfig


def out_of_memory(error: BaseException) -> bool:
    """Python's MemoryError, torch's on a GPU, and the CPU allocator's RuntimeError ("can't allocate memory")."""
    return (isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"
            or (isinstance(error, RuntimeError) and "can't allocate memory" in str(error)))


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line too
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parsed(text: str, kind: type, noun: str):
    """text as an int or a float, or argparse's one-line error naming what was expected."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None


def checked(check, *args):
    """check(*args) of rnncount._checks, its complaint as argparse's one-line error."""
    try:
        return check(*args)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


LARGEST_INT = 2**31 - 1  # any count or size the command line takes (the memory estimate bounds them further)
MOST_WORKERS = 1024  # threads or worker processes: more than any machine runs usefully


def positive_int(text: str, most: int = LARGEST_INT) -> int:
    value = checked(check_positive_int, "", parsed(text, int, "a whole number"))
    if value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most}, got {text}")
    return value


def worker_count(text: str) -> int:
    """--threads, --jobs: a positive int up to MOST_WORKERS (each thread or process costs memory up front)."""
    return positive_int(text, MOST_WORKERS)


def seed_int(text: str) -> int:
    return checked(check_seed, "", parsed(text, int, "a whole number"))


def finite_float(text: str) -> float:
    return checked(check_finite, "", parsed(text, float, "a number"), text)


def nonnegative_float(text: str) -> float:
    return checked(check_nonnegative, "", parsed(text, float, "a number"), text)


def positive_float(text: str) -> float:
    return checked(check_positive, "", parsed(text, float, "a number"), text)


def probability(text: str) -> float:
    return checked(check_probability, "", parsed(text, float, "a number"), text)


def nonempty_path(text: str) -> Path:
    """A path argument (--out, --model, --resume); an empty one is refused (Path("") is the current folder, never
    what was meant)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    return Path(text)


def cell_list(text: str) -> list[str]:
    cells = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        raise argparse.ArgumentTypeError(
            f"unknown cell {', '.join(unknown) or repr(text)}; choose from {', '.join(CELLS)}")
    if len(set(cells)) != len(cells):
        raise argparse.ArgumentTypeError(f"a cell is named twice in {text!r}")
    return cells


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
        checked(check_seed_count, len(seeds) + high - low + 1, stacked.MAX_MEMBERS, text)  # before a huge range
        seeds += range(low, high + 1)
    return checked(check_seeds, seeds, stacked.MAX_MEMBERS, text)


def default(name: str) -> str:
    """A ModelConfig or TrainConfig field's default as the help shows it: 20, 0, 1e-3, reference."""
    value = next(f.default for cls in (ModelConfig, TrainConfig) for f in fields(cls) if f.name == name)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float) and abs(value) < 1e-2:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return str(value)


def listed(values) -> str:
    """A list default as the help shows it: lstm,gru."""
    return ",".join(map(str, values))


# Flags several commands share, each defined once (a function rather than a parent parser: each command's help
# lists its flags in the order they read best there).

def add_device(parser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps (auto)")


def add_model(parser, help: str = "a model.pt written by train") -> None:
    parser.add_argument("--model", type=nonempty_path, required=True, help=help)


def add_fresh_seed(parser) -> None:
    parser.add_argument("--seed", type=seed_int, default=12345, help="seed of the fresh data (%(default)s)")


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
    group.add_argument("--hidden-size", type=positive_int, help=f"hidden units ({default('hidden_size')})")
    group.add_argument("--num-layers", type=positive_int, help=f"stacked layers ({default('num_layers')})")
    group.add_argument("--reset-after", action="store_true", default=None,
                       help="GRU in torch.nn.GRU's reset-after form (default: the reference's reset-before)")
    group.add_argument("--init", choices=SCHEMES, help=f"initialisation ({default('init')})")
    group.add_argument("--num-heads", type=positive_int, help="sLSTM: heads of its block-diagonal recurrent "
                                                              "matrices; a divisor of --hidden-size "
                                                              f"({default('num_heads')})")
    group.add_argument("--recurrent-dropout", type=probability, metavar="P",
                       help="drop h_{t-1} in the recurrent matmuls, one mask per sequence "
                                                                   f"({default('recurrent_dropout')})")
    group.add_argument("--zoneout", type=probability, metavar="P",
                       help=f"each unit of h (and c) keeps its previous value with probability P "
                            f"({default('zoneout')})")
    group.add_argument("--length", type=positive_int, help=f"sequence length ({default('length')})")
    group.add_argument("--min-length", type=positive_int, help="train on lengths drawn from [min-length, length]")
    group.add_argument("--train-samples", type=positive_int,
                       help=f"training sequences ({default('train_samples')})")
    group.add_argument("--test-samples", type=positive_int, help=f"test sequences ({default('test_samples')})")
    group.add_argument("--batch-size", type=positive_int, help=f"batch size ({default('batch_size')})")
    group.add_argument("--epochs", type=positive_int, help=f"epochs ({default('epochs')})")
    group.add_argument("--lr", type=positive_float, help=f"Adam's learning rate ({default('lr')})")
    group.add_argument("--seed", type=seed_int, help=f"seed for data, weights and shuffling ({default('seed')})")
    group.add_argument("--clip-grad-norm", type=positive_float, metavar="X",
                       help="rescale gradients whose total norm exceeds X (off)")
    add_device(group)
    beyond = training.add_argument_group("counting beyond the training length (see docs/generalization.md)")
    beyond.add_argument("--recipe", choices=list(recipes.RECIPES),
                        help="a bundle of the settings below, per cell; typed flags override it "
                             f"({default('recipe')}). "
                             + "; ".join(f"{name}: {text}" for name, text in recipes.RECIPE_HELP.items()))
    beyond.add_argument("--readout", choices=READOUTS, help="the head reads h_T, or the LSTM's cell state c_T "
                                                            f"({default('readout')})")
    beyond.add_argument("--forget-bias", type=finite_float, metavar="B", help="LSTM forget-gate bias at init (the "
                                                                               "--init scheme's)")
    beyond.add_argument("--nonlinearity", choices=("tanh", "relu"),
                        help=f"the RNN's activation ({default('nonlinearity')})")
    beyond.add_argument("--step-loss", type=nonnegative_float, metavar="W",
                        help="add W times the running count's MSE at every step to the loss "
                             f"({default('step_loss')})")
    beyond.add_argument("--lr-end", type=positive_float, metavar="LR",
                        help="decay the learning rate along a cosine to LR over the epochs (off)")
    beyond.add_argument("--curriculum", type=int, metavar="N",
                        help="over the first N epochs, grow the longest training length from --min-length "
                             f"({default('curriculum')})")
    beyond.add_argument("--recurrent-decay", type=nonnegative_float, metavar="D",
                        help="shrink W_hh by lr*D after every step, decoupled weight decay "
                             f"({default('recurrent_decay')})")
    output = training.add_argument_group("output")
    output.add_argument("--out", type=nonempty_path, help="output folder (default: runs/COMMAND-TIME)")
    output.add_argument("--force", action="store_true", help="write into a non-empty --out, replacing its files")
    output.add_argument("--threads", type=worker_count,
                        help="CPU threads (default: every CPU for minGRU, minLSTM and --seeds stacks, the same "
                             "numbers at any count; otherwise 1 for hidden sizes up to 64, where one is fastest)")
    output.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="run the cells' steps through torch.compile, 20 steps per compiled chunk; minGRU "
                             "and minLSTM: their gates over the whole sequence (off: a cold compile costs more "
                             "than it saves at the reference size)")

    train = commands.add_parser("train", parents=[training], help="train one cell and save it",
                                description="Train a counter and save DIR/model.pt and DIR/metrics.json.")
    train.add_argument("--cell", choices=CELLS, help=f"the recurrent cell ({default('cell')})")
    train.add_argument("--resume", type=nonempty_path, metavar="DIR",
                       help="continue the run saved in DIR (its model.pt, or a --seeds run's DIR/seed*/) up to --epochs")
    train.add_argument("--seeds", type=seed_list, help=SEEDS_HELP % "")

    compare = commands.add_parser("compare", parents=[training], help="train several cells on the same data",
                                  description="Train each cell on the same data and seed; print one table, "
                                              "save a learning-curve plot and the metrics.")
    cells = ["lstm", "gru", "rnn"]
    compare.add_argument("--cells", type=cell_list, default=cells,
                         help=f"comma-separated, from {', '.join(CELLS)} ({listed(cells)})")
    compare.add_argument("--test-lengths", type=int_list, metavar="L,L,...",
                         help="also score each trained cell at these lengths (e.g. 40,100,1000)")
    compare.add_argument("--jobs", type=worker_count,
                         help="train this many cells at once, each in its own process, their epoch lines prefixed "
                              "with the cell; the numbers are the same either way (default: as many as the CPUs "
                              "hold, one thread per cell at hidden sizes up to 64; 1: one cell after another)")
    compare.add_argument("--seeds", type=seed_list, help=SEEDS_HELP % "CELL/")

    sweep = commands.add_parser("sweep", parents=[training], help="a grid of runs in parallel processes",
                                description="Train every combination of cells, hidden sizes, lengths and seeds in "
                                            "--jobs processes (one thread each; on a GPU, one stack of seeds after "
                                            "another in this process). Rerunning with the same --out skips "
                                            "finished runs and resumes unfinished ones.")
    cells, seeds = ["lstm", "gru"], [0]
    sweep.add_argument("--cells", type=cell_list, default=cells, help=f"comma-separated ({listed(cells)})")
    sweep.add_argument("--seeds", type=seed_list, default=seeds, help=f"e.g. 0-9 or 0,3,7 ({listed(seeds)}); runs "
                                                                      "that differ only in the seed train stacked, "
                                                                      "in one process")
    sweep.add_argument("--hidden-sizes", type=int_list, help="e.g. 10,20,40 (--hidden-size)")
    sweep.add_argument("--lengths", type=int_list, help="e.g. 20,50 (--length)")
    sweep.add_argument("--jobs", type=worker_count, help="worker processes on the CPU (default: one per CPU; "
                                                         "on a GPU: 1)")

    predict = commands.add_parser("predict", help="count the 1s in sequences with a trained model",
                                  description="Count the 1s in each sequence with a trained model; print the "
                                              "sequence, the count rounded and the model's raw output.")
    add_model(predict)
    add_device(predict)
    predict.add_argument("sequences", nargs="+", metavar="SEQUENCE", help="e.g. 0110100; '-' reads one per line "
                                                                         "from stdin")

    evaluate_ = commands.add_parser("evaluate", help="loss, accuracy and MAE on fresh data",
                                    description="Score a trained model on fresh sequences of one length: print "
                                                "the loss, the accuracy and the MAE.")
    add_model(evaluate_)
    evaluate_.add_argument("--length", type=positive_int, help="sequence length (the model's training length)")
    evaluate_.add_argument("--samples", type=positive_int, default=1000, help="sequences (%(default)s)")
    add_fresh_seed(evaluate_)
    add_device(evaluate_)

    generalize_ = commands.add_parser("generalize", help="accuracy and MAE at many lengths: a table, JSON, a plot",
                                      description="Score a trained model on fresh data at each length; print the "
                                                  "table, save generalization.json, .md and .png.")
    add_model(generalize_)
    lengths = list(generalize.DEFAULT_LENGTHS)
    generalize_.add_argument("--lengths", type=int_list, default=lengths, help=f"comma-separated ({listed(lengths)})")
    generalize_.add_argument("--samples", type=positive_int, default=1000, help="sequences per length (%(default)s)")
    add_fresh_seed(generalize_)
    generalize_.add_argument("--out", type=nonempty_path, help="folder for the files (the model's)")
    add_device(generalize_)

    handmade = commands.add_parser("handmade", help="an LSTM set by hand to count exactly, to any length",
                                   description="Build the hand-set counting LSTM (rnncount.handmade), score it at "
                                               "each length, and save it as a model file with --out.")
    lengths = [20, 1000, 10000]
    handmade.add_argument("--lengths", type=int_list, default=lengths, help=f"comma-separated ({listed(lengths)})")
    handmade.add_argument("--samples", type=positive_int, default=100, help="sequences per length (%(default)s)")
    add_fresh_seed(handmade)
    handmade.add_argument("--out", type=nonempty_path, help="save DIR/model.pt, for predict, generalize and inspect")
    handmade.add_argument("--force", action="store_true", help="write into a non-empty DIR, replacing its model.pt")

    inspect = commands.add_parser("inspect", help="every unit's h_t and c_t over one sequence, as a PNG",
                                  description="Run a model over one sequence; plot every unit's h_t and c_t "
                                              "(heatmaps and lines), mark the unit that tracks the running count "
                                              "best and print that correlation.")
    add_model(inspect, "a model.pt written by train or handmade")
    inspect.add_argument("--out", type=nonempty_path, help="the PNG to write (DIR/inspect.png beside the model)")
    add_device(inspect)
    inspect.add_argument("sequence", metavar="SEQUENCE", help="e.g. 0110100; '-' reads it from stdin")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs.keep_freed_memory()
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
        first_line = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        if lost_a_peer(error):  # under torchrun: not our bug, and torchrun --max-restarts starts the group again
            print(f"rnncount {args.command}: error: another process of this run stopped ({first_line})",
                  file=sys.stderr)
            return 1
        if out_of_memory(error):  # sizes past what the machine holds (the run's own estimate did not catch it)
            print(f"rnncount {args.command}: error: not enough memory for this ({first_line}); choose smaller sizes",
                  file=sys.stderr)
            return 2
        print(f"rnncount {args.command}: internal error: {type(error).__name__}: {first_line} "
              "(set RNNCOUNT_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1
    finally:
        runs.release()
        leave_world()


# ---- the Namespace into config objects -----------------------------------------------------------------

def check_forms(args: argparse.Namespace, cells: list[str]) -> None:
    """A form flag (--reset-after, --nonlinearity) given to several cells must have a cell of its family among them;
    else it would shape nothing (one cell alone: ModelConfig refuses it, saying which cell has it)."""
    for name, owner in FORMS.items():
        value = getattr(args, name, None)
        if len(cells) > 1 and value not in (None, False, "tanh") and all(family(c) != owner for c in cells):
            flag = f"--{name.replace('_', '-')}"
            raise UsageError(f"{flag} applies to the {owner.upper()} (and its variants) only, and none of "
                             f"{', '.join(cells)} is one")


def configs_from(args: argparse.Namespace, cell: str, several: bool = False) -> tuple[ModelConfig, TrainConfig]:
    """The typed flags over the recipe's settings for this cell, over the reference defaults. several: one cell of
    a comparison or sweep of several, where --reset-after and --nonlinearity shape the GRUs and the RNNs among them
    (`compare --reset-after`: torch.nn.GRU's form beside the LSTM); for one cell alone, a flag it lacks is refused."""
    def given(cls) -> dict:
        return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    flags = given(ModelConfig)
    if several:
        flags = without_other_forms(cell, flags)
    try:
        model, train = recipes.split_settings(recipes.recipe_settings(args.recipe or "reference", cell))
        configs = (ModelConfig(**{**model, **flags, "cell": cell}),
                   TrainConfig(**{**train, **given(TrainConfig)}))
    except (TypeError, ValueError) as error:
        raise UsageError(as_flags(str(error))) from None
    if configs[1].recurrent_decay and family(cell) in PARALLEL:
        raise UsageError(f"--recurrent-decay: the {cell} has no recurrent weights W_hh to decay")
    return configs


CONFIG_FIELDS = re.compile(r"\b(?P<name>%s)\b(?:=(?P<value>'[^']*'|[^\s,\])]+))?" % "|".join(
    sorted({f.name for cls in (ModelConfig, TrainConfig) for f in fields(cls)}, key=len, reverse=True)))


def as_flags(message: str) -> str:
    """A ModelConfig or TrainConfig error in the command line's words, each field named as its flag:
    'min_length must be <= length=20' -> '--min-length must be <= --length 20'."""
    def flag(match: re.Match) -> str:
        value = match["value"]
        return f"--{match['name'].replace('_', '-')}" + (f" {value.strip(chr(39))}" if value else "")
    return CONFIG_FIELDS.sub(flag, message)


def options_from(args: argparse.Namespace, **given) -> runs.RunOptions:
    """How to run, from the flags a command has (given: what the command sets itself)."""
    names = {f.name for f in fields(runs.RunOptions)} - set(given)
    return runs.RunOptions(**{name: getattr(args, name) for name in names if hasattr(args, name)}, **given)


def resume_typed(args: argparse.Namespace) -> None:
    """--resume takes no settings but --epochs: a UsageError naming the others typed."""
    names = dict.fromkeys([*(f.name for f in fields(ModelConfig)), *(f.name for f in fields(TrainConfig)), "out"])
    typed = [f"--{name.replace('_', '-')}" for name in names
             if name != "epochs" and getattr(args, name, None) is not None]
    if typed:
        raise UsageError(f"--resume continues the saved run with its own settings; drop {', '.join(typed)}")


def check_seeds_flags(args: argparse.Namespace) -> None:
    """--seeds (or the resume of a --seeds run) and the flags it cannot go with."""
    if args.seed is not None and args.seeds is not None:
        raise UsageError("--seed and --seeds: give one of them")
    if getattr(args, "resume", None) is not None and args.seeds is not None:
        raise UsageError("--resume continues the seeds saved in its folder; drop --seeds")


def show(printout: report.Printout) -> None:
    print(printout.text)
    for note in printout.notes:
        print(note, file=sys.stderr)


# ---- train, compare, sweep: configs to rnncount.runs, its results to rnncount.report --------------------------

def run_train(args: argparse.Namespace) -> int:
    resume = args.resume
    if resume is not None:
        runs.check_resume_folder(resume)
    if args.seeds is not None or (resume is not None and not (resume / "model.pt").exists()
                                  and stacked.member_folders(resume)):
        check_seeds_flags(args)
        if args.seeds is None:  # train --resume DIR of a stacked run
            resume_typed(args)
            return show_seeds(runs.resume_seeds(resume, options_from(args), args.epochs))
        return show_seeds(runs.seeds({args.cell or "lstm": configs_from(args, args.cell or "lstm")},
                                     options_from(args), "train"))
    if resume is not None:
        resume_typed(args)
        out = runs.resume(resume, options_from(args), args.epochs)
    else:
        out = runs.train(*configs_from(args, args.cell or "lstm"), options_from(args))
    if out is not None:  # rank 0
        print(f"Saved the model to {out / 'model.pt'} and the metrics to {out / 'metrics.json'}")
    return 0


def show_seeds(stacks: runs.Stacks) -> int:
    show(report.report_seeds(stacks.members, stacks.seconds, stacks.out, stacks.config))
    return 1 if stacks.failed else 0


def run_compare(args: argparse.Namespace) -> int:
    check_forms(args, args.cells)
    configs = {cell: configs_from(args, cell, several=len(args.cells) > 1) for cell in args.cells}
    if args.seeds is not None:
        check_seeds_flags(args)
        return show_seeds(runs.seeds(configs, options_from(args), "compare"))
    comparison = runs.compare(configs, options_from(args))
    if comparison is not None:  # rank 0
        show(report.report_comparison(comparison.histories, comparison.out, comparison.settings,
                                      comparison.lengths))
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    if args.recipe not in (None, "reference") and len(args.cells) > 1:
        raise UsageError("--recipe in a sweep takes one cell (its settings differ per cell): run a sweep per cell")
    check_forms(args, args.cells)
    configs = {cell: configs_from(args, cell, several=len(args.cells) > 1) for cell in args.cells}  # all checked
    model_config, train_config = configs[args.cells[0]]
    grid = sweep.grid(model_config, train_config, args.cells, args.hidden_sizes or [model_config.hidden_size],
                      args.lengths or [train_config.length], args.seeds)
    settings = {**model_config.to_dict(), **train_config.to_dict()}
    for axis in ("cell", "hidden_size", "length", "seed"):
        settings.pop(axis)
    rows, out = runs.sweep_grid(grid, settings, options_from(args, seeds=None))
    show(report.report_sweep(rows, out))
    return 0


# ---- predict, evaluate, generalize, handmade, inspect: one saved model ------------------------------------

def note(text: str | None) -> None:
    if text is not None:
        print(text, file=sys.stderr)


def counted(number: int, noun: str) -> str:
    """'1 step', '2 steps'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def run_predict(args: argparse.Namespace) -> int:
    model, payload, device = use.load_on_device(args.model, args.device)
    sequences = use.read_sequences(args.sequences, sys.stdin)
    encoded = use.encode_all(sequences)
    note(use.outside_training_note(payload, [len(s) for s in sequences]))
    counts = use.count(model, encoded, device)
    for sequence, raw in zip(sequences, counts):
        print(f"{sequence}  {use.rounded(raw)}  ({raw:.4f})")
    note(use.not_finite_note(counts))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    model, payload, device = use.load_on_device(args.model, args.device)
    length = use.evaluation_length(payload, args.length)
    runs.scoring_fits([length], args.samples, at_once=True)
    note(use.outside_training_note(payload, [length]))
    result = use.evaluate_at(model, length, args.samples, args.seed, device)
    print(f"Length {length}, {args.samples} samples (seed {args.seed}): Loss: {result['loss']:.4f}; "
          f"Accuracy: {result['accuracy']:.4f}; MAE: {result['mae']:.4f}")
    return 0


def run_generalize(args: argparse.Namespace) -> int:
    model, payload, device = use.load_on_device(args.model, args.device)
    runs.scoring_fits(args.lengths, args.samples)
    out = use.generalization_folder(args.out or args.model.parent)
    use.threads_for(payload)
    rows = generalize.generalization(model, args.lengths, args.samples, args.seed, device, progress=True)
    trained = (payload.get("train_config") or {}).get("length")
    origin = f"trained on length {trained}" if trained else payload.get("note") or "not trained here"
    print(f"{payload['model_config']['cell']} ({args.model}), {origin}; {args.samples} samples per length "
          f"(seed {args.seed})")
    show(report.report_generalization(rows, out, {
        "model": str(args.model), "model_config": payload["model_config"],
        "train_config": payload.get("train_config"), "samples": args.samples, "seed": args.seed},
        payload["model_config"]["cell"], trained))
    return 0


def run_handmade(args: argparse.Namespace) -> int:
    model = handmade_lstm()
    if args.out is not None:
        runs.prepare_out(options_from(args), "handmade")  # train's rule: new or empty, else --force
    print(f"One LSTM unit, W_hh = 0: i = f = sigmoid({SATURATION:g}) = 1, g = tanh({SATURATION:g} x) = x, "
          "c_t = c_(t-1) + x_t, count = c_T")
    rows = generalize.generalization(model, args.lengths, args.samples, args.seed)
    print(report.lengths_table(rows, loss=False, mae=".3g"))
    if args.out is not None:
        save_model(args.out / "model.pt", model, note="set by hand (rnncount.handmade), not trained")
        print(f"Saved the model to {args.out / 'model.pt'}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    model, payload, _ = use.load_on_device(args.model, args.device)
    sequence = use.read_one_sequence(args.sequence, sys.stdin)
    out = args.out or args.model.parent / "inspect.png"
    trace, best = use.inspect(model, sequence, out)
    config = payload["model_config"]
    print(f"{config['cell']}, {counted(config['hidden_size'], 'unit')}, readout {config.get('readout', 'h')}: "
          f"predicts {trace.prediction[-1].item():.4f} for {counted(int(trace.count[-1].item()), '1')} in "
          f"{counted(len(sequence), 'step')}")
    if best is None:
        print("No unit correlates with the running count here (the count or every unit is constant)")
    else:
        print(f"Best counting unit: {best.state}[{best.unit}], correlation with the running count "
              f"r = {best.correlation:.6f}")
    use.save_picture(trace, best, out, title=f"{config['cell']} from {args.model}")
    print(f"Saved the picture to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Using a saved model: load it onto a device, count sequences, evaluate it, check where the output goes.

    model, payload, device = load_on_device(Path("runs/lstm/model.pt"), "auto")
    counts = count(model, encode_all(["0110100", "1"]), device)      # raw counts, one per sequence

The command line's predict, evaluate, generalize, handmade and inspect call these with plain values
(paths, lists, ints, a device string) and print what they return; a user's mistake is a UsageError.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from .checkpoint import load_model
from .data import counting_data, encode
from .generalize import CHUNK, count_in_chunks
from .inspection import BestUnit, Trace, best_unit, run_trace
from .model import Counter
from .runs import UsageError, check_device, check_writable, make_folder, set_threads
from .train import evaluate


def read_sequences(items: list[str], stdin: Iterable[str]) -> list[str]:
    """The sequences given, '-' standing for stdin's non-empty lines."""
    sequences = []
    for item in items:
        if item == "-":
            lines = [line.strip() for line in stdin]
            sequences += [line for line in lines if line]
        else:
            sequences.append(item)
    if not sequences:
        raise UsageError("no sequences given (stdin was empty)")
    return sequences


def read_one_sequence(item: str, stdin: Iterable[str]) -> str:
    """The one sequence given, '-' standing for stdin's one non-empty line (more than one is refused)."""
    sequences = read_sequences([item], stdin)
    if len(sequences) > 1:
        raise UsageError(f"one sequence only, but stdin has {len(sequences)} lines; give the one to inspect")
    return sequences[0]


def load_on_device(path: Path, device: str) -> tuple[Counter, dict, torch.device]:
    """A model file's model on the named device (rnncount.distributed.resolve_device's names), and its payload."""
    device = check_device(device)
    model, payload = load_model(path)
    return model.to(device), payload, device


def training_lengths(payload: dict) -> tuple[int, int] | None:
    """The shortest and longest sequence a model file's model was trained on (None: not trained, e.g. handmade)."""
    config = payload.get("train_config")
    if not config:
        return None
    return config.get("min_length") or config["length"], config["length"]


def outside_training_note(payload: dict, lengths: list[int]) -> str | None:
    """A one-line note when some lengths lie outside the model's training lengths (it may count wrong there)."""
    trained = training_lengths(payload)
    outside = sorted({n for n in lengths if trained and not trained[0] <= n <= trained[1]})
    if not outside:
        return None
    span = f"{trained[0]}" if trained[0] == trained[1] else f"{trained[0]}-{trained[1]}"
    shown = ", ".join(map(str, outside[:5])) + (", ..." if len(outside) > 5 else "")
    recipe = (payload.get("train_config") or {}).get("recipe")
    advice = ("it was trained with --recipe generalize, which counts far past its training lengths (rnncount "
              "generalize measures how far)" if recipe == "generalize" else
              "its counts there may be wrong; a model trained with --recipe generalize counts far past them")
    noun = "length {} is" if len(outside) == 1 else "lengths {} are"
    return f"rnncount: note: {noun.format(shown)} outside the lengths this model was trained on ({span}): {advice}"


def rounded(raw: float) -> str:
    """A raw count as the whole number predict prints; nan or inf as such (a model whose weights are not finite)."""
    return str(round(raw)) if math.isfinite(raw) else str(raw)


def not_finite_note(counts: list[float]) -> str | None:
    """A one-line note when some counts are nan or inf (the model's weights, or their arithmetic, are not finite)."""
    bad = sum(not math.isfinite(c) for c in counts)
    if not bad:
        return None
    return (f"rnncount: note: the model's count is not a finite number for {bad} of {len(counts)} sequences; "
            "its weights may hold nan or inf")


def encode_all(sequences: list[str]) -> list[Tensor]:
    """Each sequence as a (T_i, 1) tensor of 0s and 1s; a character other than 0 and 1 is a UsageError."""
    try:
        return [encode(s) for s in sequences]
    except ValueError as error:
        raise UsageError(str(error)) from None


def count(model: Counter, encoded: list[Tensor], device: torch.device, budget: int = 1 << 28) -> list[float]:
    """The model's raw count for each sequence from encode_all, in its order.

    Sorted by length into batches that need at most `budget` bytes, each run a chunk of steps at a time
    (generalize.count_in_chunks): memory stays bounded whatever the lengths and however many sequences, where
    one batch padded to the longest would ask for its length times their number.
    """
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    counts = [0.0] * len(encoded)
    each = functools.cache(lambda steps: batch_bytes(model, steps))  # once per length, not once per sequence
    start = 0
    while start < len(order):
        end = start + 1  # one sequence at least, then more while the batch fits (order[end] is then the longest)
        while end < len(order) and (end + 1 - start) * each(len(encoded[order[end]])) <= budget:
            end += 1
        batch = order[start:end]
        inputs = torch.nn.utils.rnn.pad_sequence([encoded[i] for i in batch], batch_first=True)  # (N, T, 1)
        lengths = torch.tensor([len(encoded[i]) for i in batch])
        with torch.no_grad():
            for i, raw in zip(batch, count_in_chunks(model, inputs.to(device), lengths).tolist()):
                counts[i] = raw
        start = end
    return counts


def batch_bytes(model: Counter, steps: int) -> int:
    """A generous estimate of the bytes one sequence of a batch padded to `steps` takes in count_in_chunks: its
    padded input, and per step of a chunk every cell's gate pre-activations and states, twice over (float32)."""
    per_step = sum((cell.num_gates + len(cell.state_sizes)) * cell.hidden_size for cell in model.rnn.cells)
    return 4 * steps + 8 * min(steps, CHUNK) * per_step


def evaluation_length(payload: dict, length: int | None) -> int:
    """The length asked for, else the one the model was trained on (20 for a model not trained, e.g. handmade)."""
    return length or (payload.get("train_config") or {}).get("length", 20)


def evaluate_at(model: Counter, length: int, samples: int, seed: int, device: torch.device) -> dict:
    """Loss, accuracy and MAE on `samples` fresh sequences of one length, drawn from `seed`."""
    data = counting_data(samples, length, torch.Generator().manual_seed(seed)).to(device)
    return evaluate(model, data)


def generalization_folder(out: Path) -> Path:
    """The folder generalize writes its table and JSON to, created."""
    return make_folder(out)


def threads_for(payload: dict) -> None:
    """The thread count for running a saved model on the CPU, as for training it (rnncount.runs.set_threads)."""
    config = payload["model_config"]
    set_threads(None, config.get("cell", "lstm"), config.get("hidden_size", 20))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first 8 bytes of every PNG file


def is_png(path: Path) -> bool:
    """Whether the file at path starts as a PNG does (an unreadable one does not)."""
    try:
        with open(path, "rb") as file:
            return file.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def inspect(model: Counter, sequence: str, out: Path) -> tuple[Trace, BestUnit | None]:
    """One sequence's trace and its best counting unit, once out is known to be a PNG path that can be written."""
    check_picture_out(out)
    try:
        trace = run_trace(model, sequence)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return trace, best_unit(trace)


def check_picture_out(out: Path) -> None:
    """out can take inspect's PNG: not a folder, nor a file other than a PNG, in a folder that is there and
    writable; else a UsageError."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the PNG's path")
    if out.exists() and not is_png(out):  # a model.pt or metrics.json named by mistake: never replaced
        raise UsageError(f"--out {out} exists and is not a PNG; inspect replaces only a picture: give another path")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write to --out {out}: folder {out.parent} does not exist")
    check_writable(out.parent, out)


def save_picture(trace: Trace, best: BestUnit | None, out: Path, title: str) -> None:
    """The inspection picture (rnncount.plots) saved to out."""
    from .plots import save_inspection  # matplotlib: only when a picture is drawn
    try:
        save_inspection(trace, best, out, title=title)
    except RuntimeError as error:
        raise UsageError(str(error)) from None

"""Counting beyond the training length: accuracy and MAE at many lengths, in memory that does not grow with them.

    rows = generalization(model, [20, 40, 100, 200, 1000])   # one dict per length: accuracy, MAE, loss
    counts = count_in_chunks(model, inputs)                  # model(inputs), in memory that does not grow with T

Each length gets fresh data from the reference distribution (rnncount.data), drawn from its own
generator seeded with `seed`, so every model is scored on the same sequences. The scoring keeps
no per-step states: the layer runs CHUNK steps at a time and hands on only its state, so lengths
of 100,000 fit in memory (the sequences themselves are held a block at a time, a byte per element).
The recipes that make counting hold far past the training length are in rnncount.recipes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import counting_blocks
from .train import _progress

CHUNK = 256  # time steps the layer runs at once when scoring: its scan keeps each step's state of a chunk only

DEFAULT_LENGTHS = (20, 40, 100, 200, 1000)
DEFAULT_SAMPLES = 1000  # sequences scored at each length


def generalization(model: nn.Module, lengths=DEFAULT_LENGTHS, samples: int = DEFAULT_SAMPLES, seed: int = 12345,
                   device: torch.device | str = "cpu", chunk: int = CHUNK, progress: bool = False) -> list[dict]:
    """Loss, exact-count accuracy and MAE at each length: [{"length", "samples", "loss", "accuracy", "mae"}].

    The same numbers as train.evaluate on counting_data(samples, length, seeded generator), in
    memory bounded by one block of sequences' bits and `chunk` steps of states. progress=True shows
    a tqdm bar over all the steps to run (hidden off a terminal).
    """
    was_training = model.training
    model.eval()
    blocks = block_sizes(lengths)
    bar = _progress(None, "generalize", progress, total=sum(samples * length for length in lengths), unit="step",
                    unit_scale=True)  # counts sequence-steps
    rows = []
    for length in lengths:
        totals = torch.zeros(3, dtype=torch.float64)  # squared error, correct, absolute error
        for bits, counts in counting_blocks(samples, length, torch.Generator().manual_seed(seed), blocks[length]):
            counts = counts.to(device)
            predictions = count_in_chunks(model, bits.to(device), chunk=chunk,
                                          on_chunk=None if bar is None else lambda steps: bar.update(steps * len(bits)))
            totals += torch.stack([F.mse_loss(predictions, counts, reduction="sum"),
                                   (predictions.round() == counts).sum(),
                                   (predictions - counts).abs().sum()]).double().cpu()
        squared, correct, absolute = (totals / samples).tolist()
        rows.append({"length": length, "samples": samples, "loss": squared, "accuracy": correct, "mae": absolute})
    if bar is not None:
        bar.close()
    model.train(was_training)
    return rows


def block_sizes(lengths) -> dict[int, int]:
    """How many sequences of each length are scored at once: about 200,000 steps' bits, 200 to 1,000 sequences."""
    return {length: max(1, min(1000, max(200, 200_000 // length))) for length in lengths}


def memory_needed(lengths, samples: int) -> int:
    """A generous estimate of generalization's peak memory in bytes: one block of sequences at the longest length,
    its bits and a float copy (the states are a chunk's, and small beside them)."""
    blocks = block_sizes(lengths)
    return max((min(blocks[length], samples) * length * 16 for length in lengths), default=0)


@torch.no_grad()
def count_in_chunks(model: nn.Module, inputs: Tensor, lengths: Tensor | None = None, chunk: int = CHUNK,
                    on_chunk=None) -> Tensor:
    """A Counter's predicted counts, model(inputs, lengths), with the layer run `chunk` steps at a time.

    inputs (B, T) or (B, T, 1), 0/1 of any dtype; lengths (B,) or None when all are T -> (B,).
    Only the layer's state passes from one chunk to the next, so memory does not grow with T.
    on_chunk(steps), if given, is called after each chunk (for a progress bar).
    """
    done, state = 0, None
    for end, state in chunk_states(model.rnn, inputs, lengths, chunk):
        if on_chunk is not None:
            on_chunk(end - done)
        done = end
    read = state[1] if model.config.readout == "c" else state[0]  # (L, B, H): h_T or c_T of every layer
    return model.head(read[-1]).squeeze(-1)  # last layer's: (B, H) -> (B,)


def chunk_states(layer: nn.Module, inputs: Tensor, lengths: Tensor | None = None, chunk: int = CHUNK,
                 state: tuple[Tensor, ...] | None = None) -> Iterator[tuple[int, tuple[Tensor, ...]]]:
    """(steps run so far, the layer's state there) after each chunk: (h_n,) or (h_n, c_n), each (L, B, H).

    A sequence that has ended (lengths) keeps its state through the chunks after its end. `state`
    (as yielded) continues from there instead of from zeros.
    """
    if inputs.dim() == 2:
        inputs = inputs.unsqueeze(-1)  # (B, T) -> (B, T, 1)
    dtype = next(layer.parameters()).dtype
    steps = inputs.size(1)
    for start in range(0, steps, chunk):
        piece = inputs[:, start:start + chunk].to(dtype)  # (B, t, 1)
        hx = None if state is None else (state if len(state) > 1 else state[0])
        if lengths is None:
            _, new = layer(piece, hx)
        else:
            left = (lengths.to(inputs.device) - start)  # (B,) steps of each sequence from here on
            _, new = layer(piece, hx, lengths=left.clamp(1, piece.size(1)).cpu())
        new = new if isinstance(new, tuple) else (new,)
        if lengths is not None and state is not None:
            ended = (left <= 0)[None, :, None]  # (1, B, 1)
            new = tuple(torch.where(ended, old, n) for old, n in zip(state, new))
        state = new
        yield start + piece.size(1), state

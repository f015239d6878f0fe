"""The counting task's data: binary sequences labelled with their number of 1s.

The reference distribution, for a sequence of length L: draw k uniformly from {0, ..., L-1},
set a = k / L, and draw each element independently, 0 with probability a and 1 with
probability 1 - a. So the share of 1s varies per sample between 1/L and 1, never 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from ._checks import check_positive_int


@dataclass
class CountingData:
    """A set of sequences, padded to a common length.

    inputs:  (N, T, 1) float, 0 or 1; zeros past each sequence's end
    counts:  (N,) float, the number of 1s in each sequence
    lengths: (N,) int64, each sequence's own length (all T for fixed-length data)
    """

    inputs: Tensor
    counts: Tensor
    lengths: Tensor

    def __len__(self) -> int:
        return self.inputs.size(0)

    @cached_property  # read at every batch: computed once (a set's lengths do not change)
    def fixed_length(self) -> bool:
        return bool((self.lengths == self.inputs.size(1)).all())

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(inputs, counts, lengths or None when every sequence is full length) for the given samples."""
        lengths = None if self.fixed_length else self.lengths[index]
        return self.inputs[index], self.counts[index], lengths

    def to(self, device) -> CountingData:
        return CountingData(self.inputs.to(device), self.counts.to(device), self.lengths)


def counting_data(samples: int, length: int, generator: torch.Generator, min_length: int | None = None
                  ) -> CountingData:
    """Draw `samples` sequences from the reference distribution.

    length:     the sequence length L (the maximum, with min_length)
    min_length: if given, each sequence's length is drawn uniformly from [min_length, length]
    generator:  the source of randomness, so that a seed fixes the data
    """
    check_positive_int("samples", samples)
    check_positive_int("length", length)
    if min_length is None:
        lengths = torch.full((samples,), length, dtype=torch.long)
    else:
        check_positive_int("min_length", min_length)
        if min_length > length:
            raise ValueError(f"min_length must be <= length={length}, got {min_length}")
        lengths = torch.randint(min_length, length + 1, (samples,), generator=generator)
    k = torch.floor(torch.rand(samples, generator=generator) * lengths).clamp_max(lengths - 1)  # k in {0..L-1}
    p_one = 1.0 - k / lengths  # (N,), between 1/L and 1
    inside = torch.arange(length)[None, :] < lengths[:, None]  # (N, T)
    bits = (torch.rand(samples, length, generator=generator) < p_one[:, None]) & inside
    inputs = bits.float().unsqueeze(-1)  # (N, T, 1)
    return CountingData(inputs, inputs.sum(dim=(1, 2)), lengths)


def counting_blocks(samples: int, length: int, generator: torch.Generator, block: int
                    ) -> Iterator[tuple[Tensor, Tensor]]:
    """counting_data(samples, length, generator) in blocks of `block` sequences, as bits: the same sequences.

    Yields (bits (b, T) bool, counts (b,) float) for b = block (the last block: what is left). Memory
    holds one block's bits, a byte per element, not the whole set as floats: for lengths of 100,000.
    The generator is drawn in the same order as counting_data's (the k of every sample, then the
    elements row after row), so the blocks put together are counting_data's inputs.
    """
    check_positive_int("samples", samples)
    check_positive_int("length", length)
    check_positive_int("block", block)
    k = torch.floor(torch.rand(samples, generator=generator) * length).clamp_max(length - 1)  # k in {0..L-1}
    p_one = 1.0 - k / length  # (N,)
    rows = max(1, 4_000_000 // length)  # rows of uniforms drawn at once: at most 16 MB of floats
    for start in range(0, samples, block):
        stop = min(start + block, samples)
        bits = torch.cat([torch.rand(min(rows, stop - first), length, generator=generator)
                          < p_one[first:min(first + rows, stop), None]
                          for first in range(start, stop, rows)])  # (b, T)
        yield bits, bits.sum(dim=1, dtype=torch.float32)


def encode(sequence: str) -> Tensor:
    """'0110' -> a (4, 1) float tensor. Raises ValueError for an empty string or characters other than 0/1."""
    if not sequence:
        raise ValueError("empty sequence: give at least one 0 or 1")
    bad = sorted(set(sequence) - {"0", "1"})
    if bad:
        raise ValueError(f"sequence {_preview(sequence)} has characters other than 0 and 1: {''.join(bad)!r}")
    return torch.tensor([float(ch) for ch in sequence]).unsqueeze(-1)


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")

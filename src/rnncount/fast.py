"""The fast path: each cell's own `step`, compiled by torch.compile a chunk of time steps at a time.

A per-step Python loop is slow because every step runs a dozen small ops, each one a trip through
Python and the dispatcher. `scan` here runs the very loop of `rnncount.layers.scan`, but hands
`CHUNK` steps at a time to torch.compile (inductor), which unrolls them and fuses each step's gate
math into one C++ kernel, forward and backward. The compiled chunk is reused along the sequence, so
compile time does not grow with the sequence length; the steps left over (T mod CHUNK) run eagerly.
A new batch size (a partial last batch) costs one recompile, after which torch.compile treats the
batch size as dynamic.

There is no second copy of the gate equations: what is compiled is `cell.step`, read from cells.py.
Turn it on per layer with `layer.compile_steps()` (the CLI with `--compile`; off by default, since a
cold compile costs more than it saves in a short run). Where compiling fails (no C compiler, an unsupported
platform) the first call prints one line to stderr and everything runs eagerly from then on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import contextmanager
from itertools import repeat

import torch
from torch import Tensor

from .cells import RecurrentCell, State, Weights

CHUNK = 20  # steps per compiled call: long enough to amortise the call, short enough to compile in seconds
# Every cell form (class, switches), state size, batch size and requires-grad pattern is one compiled
# entry of the same _chunk; dynamo's default limit (8 per function) is reached by, e.g., an LSTM and a
# GRU of a few sizes in one process, after which it refuses to compile. The first compile of each
# CompiledOrEager raises the process's limit to this (a patch around each call would cost 45 us per chunk).
RECOMPILE_LIMIT = 64


class CompiledOrEager:
    """`function` through torch.compile, until compiling fails; then one line on stderr and `eager` for good.

    Where compiling cannot work (no C++ compiler, an unsupported platform or torch) the first call says so
    (`say_compile_failed`, ending with `instead`) and it and every later call run `eager` (by default `function`
    itself): the same numbers, eagerly. The compiled function is made on the first call, so that a process that
    never compiles never imports dynamo (~1 s). Every compiled path of rnncount goes through one of these: the
    chunks of steps here, the parallel cells' gates (rnncount.parallel), a stack of models (rnncount.stacked).
    """

    def __init__(self, function: Callable, instead: str, eager: Callable | None = None, **options):
        self.function, self.instead, self.eager, self.options = function, instead, eager or function, options
        self.compiled: Callable | None = None  # torch.compile(function, **options), made on the first call
        self.failed = False  # True once compiling has failed

    def __call__(self, *args, **kwargs):
        if not self.failed:
            try:
                if self.compiled is None:
                    _raise_recompile_limit()
                    self.compiled = torch.compile(self.function, **self.options)
                return self.compiled(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
                self.failed = True
                say_compile_failed(error, self.instead)
        return self.eager(*args, **kwargs)


def _raise_recompile_limit() -> None:
    """dynamo's limit of compiled entries per function, raised to RECOMPILE_LIMIT for the process (see above)."""
    config = torch._dynamo.config  # imported here, not with rnncount: dynamo alone takes ~1 s to import
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    setattr(config, limit, max(RECOMPILE_LIMIT, getattr(config, limit)))


def _chunk(cell: RecurrentCell, x_proj: Tensor, state: State, alive: Tensor | None,
           weights: Weights | None) -> tuple[tuple[Tensor, ...], State]:
    """layers.scan's loop over a chunk: x_proj (K, B, G*H), alive (K, B, 1) or None.

    Returns every step's state stacked per component, ((K, B, H_out), ...), and the last state.
    """
    history = []
    for t, x_t in enumerate(x_proj.unbind(0)):
        new = cell.step(x_t, state, None, weights)
        if alive is not None:
            new = tuple(torch.where(alive[t], n, s) for n, s in zip(new, state))
        history.append(new)
        state = new
    return tuple(torch.stack(parts) for parts in zip(*history)), state


# cpp_wrapper: the compiled chunk calls its kernels from C++, not Python; that halves the overhead of the many
# small calls a step makes, for a somewhat longer first compile
_run_chunk = CompiledOrEager(_chunk, "running eagerly", fullgraph=True, options={"cpp_wrapper": True})


def say_compile_failed(error: Exception, instead: str) -> None:
    """The one stderr line that a compile failed (its first line, cut at 200 characters) and what runs instead."""
    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    print(f"rnncount: torch.compile is unavailable here ({type(error).__name__}: {reason}); {instead}",
          file=sys.stderr)


def scan(cell: RecurrentCell, x_proj: Tensor, state: State, mask: Tensor | None = None,
         reverse: bool = False, weights: Weights | None = None) -> tuple[State, State]:
    """rnncount.layers.scan's contract, run in compiled chunks of CHUNK steps (see the module docstring)."""
    if reverse:  # walk the flipped sequence forwards, then put the history back in time order
        history, state = scan(cell, x_proj.flip(0), state, None if mask is None else mask.flip(0), weights=weights)
        return tuple(part.flip(0) for part in history), state
    size = min(CHUNK, x_proj.size(0))
    # split, not x_proj[a:b]: slicing would make autograd allocate a full-size gradient per chunk
    chunks = zip(x_proj.split(size), mask.split(size) if mask is not None else repeat(None))
    stacked: list[tuple[Tensor, ...]] = []
    for x_chunk, alive in chunks:
        # a shorter last chunk runs eagerly: a second compiled length would cost a second compile
        run = _run_chunk if x_chunk.size(0) == size else _chunk
        parts, state = run(cell, x_chunk, state, alive, weights)
        stacked.append(parts)
    return tuple(torch.cat(parts) if len(parts) > 1 else parts[0] for parts in zip(*stacked)), state  # (T, B, *)


@contextmanager
def eager(layer):
    """Run `layer` (a RecurrentLayer) eagerly inside the block, whatever its compile_steps setting."""
    compiled, layer.compiled = layer.compiled, False
    try:
        yield layer
    finally:
        layer.compiled = compiled


def available() -> bool:
    """Whether the compiled chunks are in use (False after a failed compile)."""
    return not _run_chunk.failed

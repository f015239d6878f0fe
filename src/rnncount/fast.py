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
from contextlib import contextmanager
from itertools import repeat

import torch
from torch import Tensor

from .cells import RecurrentCell, State, Weights

CHUNK = 20  # steps per compiled call: long enough to amortise the call, short enough to compile in seconds
# Every cell form (class, switches), state size, batch size and requires-grad pattern is one compiled
# entry of the same _chunk; dynamo's default limit (8 per function) is reached by, e.g., an LSTM and a
# GRU of a few sizes in one process, after which it refuses to compile. The first compile raises the
# process's limit to this (a patch around each call would cost 45 us per chunk).
RECOMPILE_LIMIT = 64

_compiled = None  # the torch.compile'd _chunk, made on first use
_available = True  # False once compiling has failed: eager from then on


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


def _compiled_chunk():
    global _compiled
    if _compiled is None:
        config = torch._dynamo.config  # imported here, not with rnncount: dynamo alone takes ~1 s to import
        limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
        setattr(config, limit, max(RECOMPILE_LIMIT, getattr(config, limit)))
        # cpp_wrapper: the compiled chunk calls its kernels from C++, not Python; that halves the
        # overhead of the many small calls a step makes, for a somewhat longer first compile
        _compiled = torch.compile(_chunk, fullgraph=True, options={"cpp_wrapper": True})
    return _compiled


def _run_chunk(cell: RecurrentCell, x_proj: Tensor, state: State, alive: Tensor | None, weights: Weights | None):
    """One chunk through the compiled loop; on the first failure, a one-line notice and eager for good."""
    global _available
    if _available:
        try:
            return _compiled_chunk()(cell, x_proj, state, alive, weights)
        except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
            _available = False
            say_compile_failed(error, "running eagerly")
    return _chunk(cell, x_proj, state, alive, weights)


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
    """Whether the compiled path is in use (False after a failed compile)."""
    return _available

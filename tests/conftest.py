"""Shared test helpers, the one place for them (test modules import from here, never from each other): compare one
of our modules with an oracle (torch.nn, or a loop written out by hand) in every output and in the gradient with
respect to every input, initial state and parameter; the layers' test cases; the command line run as a user would."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from unittest import mock

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from rnncount import LSTM
from rnncount.cli import main

# The suite's tensors are tiny: one thread is fastest, and a second only fights other processes for the cores.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    """Every test starts on one thread (two make F.layer_norm ~10x slower on a busy machine), and a test that
    changes the count (the CLI sets it per model size) leaves it as it found it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}  # max abs difference allowed, by dtype


def flatten(output, path: str = "output") -> list[tuple[str, Tensor]]:
    """Nested tuples of tensors and PackedSequences -> [(name, tensor)]; a PackedSequence gives its data."""
    if output is None:
        return []
    if isinstance(output, PackedSequence):
        return [(path + ".data", output.data)]
    if isinstance(output, Tensor):
        return [(path, output)]
    return [item for i, part in enumerate(output) for item in flatten(part, f"{path}[{i}]")]


def packed_layouts(output, path: str = "output") -> list[tuple[str, PackedSequence]]:
    """Every PackedSequence in a nested output, by name."""
    if isinstance(output, PackedSequence):
        return [(path, output)]
    if isinstance(output, (tuple, list)):
        return [item for i, part in enumerate(output) for item in packed_layouts(part, f"{path}[{i}]")]
    return []


def assert_close(name: str, ours: Tensor | None, theirs: Tensor | None) -> None:
    """Same shape and dtype, max abs difference within TOLERANCE; a missing gradient counts as zeros."""
    if ours is None and theirs is None:
        return
    ours = torch.zeros_like(theirs) if ours is None else ours
    theirs = torch.zeros_like(ours) if theirs is None else theirs
    assert ours.shape == theirs.shape, f"{name}: shape {tuple(ours.shape)}, expected {tuple(theirs.shape)}"
    assert ours.dtype == theirs.dtype, f"{name}: dtype {ours.dtype}, expected {theirs.dtype}"
    tolerance = TOLERANCE[theirs.dtype]
    difference = (ours - theirs).abs().max().item() if ours.numel() else 0.0
    assert difference <= tolerance, f"{name}: max abs difference {difference:.3g} > {tolerance:g}"


def assert_same_layout(name: str, ours: PackedSequence, theirs: PackedSequence) -> None:
    for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        a, b = getattr(ours, field), getattr(theirs, field)
        assert (a is None) == (b is None), f"{name}.{field}: {a} vs {b}"
        assert a is None or torch.equal(a, b), f"{name}.{field}: {a.tolist()}, expected {b.tolist()}"


def _run(function: Callable, inputs: Sequence, params: Sequence[Tensor]):
    """Call `function` on fresh leaf copies of `inputs`; differentiate a fixed random projection of the outputs."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) if isinstance(x, Tensor) else x
              for x in inputs]
    output = function(*leaves)
    tensors = flatten(output)
    loss = 0
    for i, (_, tensor) in enumerate(tensors):  # the same weights for both runs: seeded by position
        generator = torch.Generator().manual_seed(1000 + i)
        loss = loss + (tensor * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)).sum()
    wrt = [x for x in leaves if isinstance(x, Tensor) and x.requires_grad] + list(params)
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return output, tensors, grads


def assert_same_function(ours: Callable, oracle: Callable, inputs: Sequence, ours_params: Sequence[Tensor],
                         oracle_params: Sequence[Tensor], param_names: Sequence[str]) -> None:
    """ours(*inputs) equals oracle(*inputs) in every output (PackedSequences also in their layout) and in the
    gradients with respect to every floating input and every parameter (paired by position)."""
    expected_output, expected, expected_grads = _run(oracle, inputs, oracle_params)
    output, got, grads = _run(ours, inputs, ours_params)
    assert [name for name, _ in got] == [name for name, _ in expected], "outputs differ in structure"
    for (name, theirs), (_, mine) in zip(packed_layouts(expected_output), packed_layouts(output)):
        assert isinstance(mine, PackedSequence), f"{name}: {type(mine).__name__}, expected a PackedSequence"
        assert_same_layout(name, mine, theirs)
    for (name, theirs), (_, mine) in zip(expected, got):
        assert_close(name, mine, theirs)
    input_count = len(grads) - len(ours_params)
    names = [f"grad input[{i}]" for i in range(input_count)] + [f"grad {name}" for name in param_names]
    for name, mine, theirs in zip(names, grads, expected_grads, strict=True):
        assert_close(name, mine, theirs)


def assert_matches_torch(ours: nn.Module, theirs: nn.Module, call: Callable, inputs: Sequence) -> None:
    """Copy torch's weights into ours, then compare call(module, *inputs) in outputs and gradients.

    Gradients are paired by torch's parameter names, read from ours with getattr (weight_ih_l0, ...)."""
    ours.load_state_dict(theirs.state_dict())
    names = [name for name, _ in theirs.named_parameters()]
    assert_same_function(lambda *a: call(ours, *a), lambda *a: call(theirs, *a), inputs,
                         [getattr(ours, name) for name in names], [p for _, p in theirs.named_parameters()], names)


class cell_view:
    """Cell k of a layer as the hand-written oracles read a cell: its switches (hidden_size, peephole, ...) and
    the layer's parameters for it by the cell's own names (weight_ih, ...), the layer's Parameters themselves."""

    def __init__(self, layer, k: int):
        self._cell, self._weights = layer.cells[k], layer.cell_weights(k)

    def __getattr__(self, name: str):
        weights = self.__dict__["_weights"]
        return getattr(weights, name) if hasattr(weights, name) else getattr(self.__dict__["_cell"], name)


def gru_reset_before_step(cell, x: Tensor, h: Tensor) -> Tensor:
    """One step of the reset-before GRU written out from the parameter slices (gate order r, z, n)."""
    H = cell.hidden_size
    W_ir, W_iz, W_in = cell.weight_ih[:H], cell.weight_ih[H:2 * H], cell.weight_ih[2 * H:]
    W_hr, W_hz, W_hn = cell.weight_hh[:H], cell.weight_hh[H:2 * H], cell.weight_hh[2 * H:]
    if cell.bias_ih is None:
        b_ir = b_iz = b_in = b_hr = b_hz = b_hn = 0.0
    else:
        b_ir, b_iz, b_in = cell.bias_ih[:H], cell.bias_ih[H:2 * H], cell.bias_ih[2 * H:]
        b_hr, b_hz, b_hn = cell.bias_hh[:H], cell.bias_hh[H:2 * H], cell.bias_hh[2 * H:]
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    return (1 - z) * n + z * h


def assert_uniform_bound(name: str, p: torch.Tensor, bound: float) -> None:
    """Within [-bound, bound], and near it where the tensor is big enough for its extremes to reach it."""
    largest = p.abs().max().item()
    assert largest <= bound, f"{name}: |value| {largest} > bound {bound}"
    if p.numel() >= 200:  # the max of n uniforms is below 0.95 * bound with probability 0.95**n
        assert largest >= 0.95 * bound, f"{name}: |value| at most {largest}, far below bound {bound}"


def zeros(*shape: int, dtype=torch.float32) -> Tensor:
    return torch.zeros(*shape, dtype=dtype)


# ---- the layers' oracles: cases, inputs, calls and the loop written out by hand (test_layers, test_variants) ----

I, H, T, B = 3, 4, 5, 3
LENGTHS = {"packed_sorted": [5, 4, 2], "packed_unsorted": [3, 5, 1], "padded": None, "unbatched": None}

@dataclass(frozen=True)
class Case:
    num_layers: int = 1
    bidirectional: bool = False
    batch_first: bool = False
    bias: bool = True
    input: str = "padded"  # padded | packed_sorted | packed_unsorted | unbatched
    hx: bool = False  # initial states given (else torch's default, zeros)
    dtype: torch.dtype = torch.float32
    proj_size: int = 0
    dropout: float = 0.0  # with dropout, the modules run in training mode from the same seed

    @property
    def options(self) -> dict:
        options = dict(num_layers=self.num_layers, bidirectional=self.bidirectional, batch_first=self.batch_first,
                       bias=self.bias, dropout=self.dropout)
        return options | ({"proj_size": self.proj_size} if self.proj_size else {})

    def __str__(self) -> str:
        return "-".join([f"L{self.num_layers}", "bi" if self.bidirectional else "uni", self.input,
                         *["batch_first"] * self.batch_first, *["no_bias"] * (not self.bias), *["hx"] * self.hx,
                         *[f"proj{self.proj_size}"] * bool(self.proj_size),
                         *[f"dropout{self.dropout}"] * bool(self.dropout), str(self.dtype).removeprefix("torch.")])


def layer_inputs(layer, case: Case, steps: int = T, batch: int = B) -> list[torch.Tensor]:
    """The padded input in the case's layout, then the initial states if the case gives them."""
    if case.input == "unbatched":
        x, state_batch = torch.randn(steps, layer.input_size, dtype=case.dtype), ()
    else:
        shape = (batch, steps) if case.batch_first else (steps, batch)
        x, state_batch = torch.randn(*shape, layer.input_size, dtype=case.dtype), (batch,)
    count = layer.num_layers * layer.num_directions
    states = [torch.randn(count, *state_batch, size, dtype=case.dtype) for size in layer.state_sizes]
    return [x, *states] if case.hx else [x]


def as_hx(states):
    return None if not states else states[0] if len(states) == 1 else tuple(states)


def layer_call(case: Case, packed_lengths=None, **kwargs):
    """call(module, x, *states): packs x first in packed cases; kwargs (our layers' extras) go to the module."""
    def call(module, x, *states):
        if case.input.startswith("packed"):
            x = pack_padded_sequence(x, packed_lengths, batch_first=case.batch_first,
                                     enforce_sorted=case.input == "packed_sorted")
        if case.dropout:
            torch.manual_seed(1)  # the same dropout masks for both modules, where they draw them alike
        return module(x, as_hx(states), **kwargs)
    return call


def stacked_loop(layer, step, x, hx=None, lengths=None):
    """A stacked, (bi)directional layer run one sequence at a time, each only up to its own length.

    step(k, x_t, state) -> state, for cell k = layer * D + direction, on (1, *) tensors.
    x: (T, B, I); hx: states (L*D, B, *) or None. Returns the output (T, B, D*H_out), zero past each sequence's
    end, the final states (L*D, B, *), and the last layer's state[-1] at every step (T, B, D*size) (c_t for the LSTM).
    """
    steps, batch, _ = x.shape
    D, count = layer.num_directions, layer.num_layers * layer.num_directions
    hx = hx or [x.new_zeros(count, batch, size) for size in layer.state_sizes]
    lengths = [steps] * batch if lengths is None else list(lengths)

    def padded(sequence):  # n tensors (1, F) -> (T, 1, F)
        seq = torch.cat(sequence)
        return torch.cat([seq, seq.new_zeros(steps - len(sequence), seq.size(1))]).unsqueeze(1)

    outputs, finals, last_states = [], [], []
    for b, n in enumerate(lengths):
        sequence, finals_b = [x[t, b:b + 1] for t in range(n)], []
        for layer_index in range(layer.num_layers):
            hs, cs = [], []
            for direction in range(D):
                k = layer_index * D + direction
                state = tuple(h[k, b:b + 1] for h in hx)
                h_seq, c_seq = [None] * n, [None] * n
                for t in range(n) if direction == 0 else reversed(range(n)):
                    state = step(k, sequence[t], state)
                    h_seq[t], c_seq[t] = state[0], state[-1]
                finals_b.append(state)
                hs.append(h_seq)
                cs.append(c_seq)
            sequence = [torch.cat([h[t] for h in hs], dim=1) for t in range(n)]
            cell_sequence = [torch.cat([c[t] for c in cs], dim=1) for t in range(n)]
        outputs.append(padded(sequence))
        last_states.append(padded(cell_sequence))
        finals.append(finals_b)
    final_states = tuple(torch.cat([torch.stack([finals_b[k][i] for k in range(count)]) for finals_b in finals], dim=1)
                         for i in range(len(layer.state_sizes)))
    return torch.cat(outputs, dim=1), final_states, torch.cat(last_states, dim=1)


def hand_call(layer, step, case: Case, lengths):
    """The oracle in our layer's calling convention: layouts, packing and output structure."""
    def call(x, *states):
        if case.input == "unbatched":
            x, states = x.unsqueeze(1), [h.unsqueeze(1) for h in states]
        elif case.batch_first:
            x = x.transpose(0, 1)
        output, finals, cell_states = stacked_loop(layer, step, x, list(states) or None, lengths)

        def shape(y):
            if case.input.startswith("packed"):
                return pack_padded_sequence(y, lengths, enforce_sorted=case.input == "packed_sorted")
            if case.input == "unbatched":
                return y.squeeze(1)
            return y.transpose(0, 1) if case.batch_first else y

        if case.input == "unbatched":
            finals = tuple(h.squeeze(1) for h in finals)
        if isinstance(layer, LSTM):
            return shape(output), finals, shape(cell_states)
        return shape(output), finals[0]
    return call


# ---- the command line, run as a user would (test_cli and every module's CLI tests) -------------------------------

TINY = ["--train-samples", "200", "--test-samples", "50", "--length", "8", "--hidden-size", "6"]
SCRIPT = shutil.which("rnncount", path=os.path.dirname(sys.executable)) or shutil.which("rnncount")


def rnncount(*args, stdin=None, process=False, module=False):
    """Run rnncount as a user would: the console script (or python -m rnncount) in a subprocess.

    Bad-input tests run main() in this process instead (process=False): the same code path without
    a second's torch import per case; a few of them also run as a subprocess to prove the two agree.
    """
    args = [str(a) for a in args]
    if process or module:
        command = [sys.executable, "-m", "rnncount"] if module or SCRIPT is None else [SCRIPT]
        return subprocess.run(command + args, input=stdin, capture_output=True, text=True, timeout=300)
    out, err, threads = io.StringIO(), io.StringIO(), torch.get_num_threads()
    with redirect_stdout(out), redirect_stderr(err), mock.patch("sys.stdin", io.StringIO(stdin or "")):
        try:
            code = main(args)
        except SystemExit as exit:  # argparse
            code = exit.code
    torch.set_num_threads(threads)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]

"""Shared test helpers: compare one of our modules with an oracle (torch.nn, or a loop written out by hand)
in every output and in the gradient with respect to every input, initial state and parameter."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

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

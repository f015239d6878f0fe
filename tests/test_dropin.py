"""The drop-in contract (issue 12): rnncount's LSTM, GRU, RNN and cells can replace torch.nn's anywhere.

Parameters under torch's names on the module itself, so that weight_norm, spectral_norm, pruning, parametrize,
reassignment, tying and optimizer groups by name act on them exactly as on torch.nn's; torch's constructor arguments,
attributes and exception classes; the facts test_nn.py checks on torch's RNNs; torch.compile, torch.export and ONNX.

Each test but compile and export runs on the pair (torch.nn's class, rnncount's class): the torch case passes and so
proves the test right. A test that applies an operation applies it to torch.nn's module (the reference) and to the
module under test, which starts from the reference's weights, and compares outputs and gradients by parameter name.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize, prune

import rnncount

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

IMPLS = {"torch": nn, "rnncount": rnncount}
LAYERS, CELLS = ["LSTM", "GRU", "RNN"], ["LSTMCell", "GRUCell", "RNNCell"]
I, H, T, B = 3, 4, 5, 2
STACK = dict(num_layers=2, bidirectional=True)


def make(impl: str, kind: str, *args, **kwargs) -> nn.Module:
    return getattr(IMPLS[impl], kind)(*args, **kwargs)


def twins(impl: str, kind: str, *args, **kwargs) -> tuple[nn.Module, nn.Module]:
    """torch.nn's module (the reference) and impl's module holding the reference's weights."""
    torch.manual_seed(0)
    reference = make("torch", kind, *args, **kwargs)
    subject = make(impl, kind, *args, **kwargs)
    subject.load_state_dict(reference.state_dict())
    return reference, subject


def example_input(kind: str, batch: int = B, steps: int = T) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    return torch.randn((batch, I) if kind in CELLS else (steps, batch, I), generator=generator)


def tensors(output) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for part in output for t in tensors(part)]


def outputs_and_grads(module: nn.Module, x: torch.Tensor, *state):
    """The outputs, and the gradients of a fixed random projection of them: {'input' or parameter name: grad}."""
    x = x.detach().clone().requires_grad_()
    outputs = tensors(module(x, *state))
    generator = torch.Generator().manual_seed(0)
    loss = sum((out * torch.randn(out.shape, generator=generator, dtype=out.dtype)).sum() for out in outputs)
    names, params = zip(*module.named_parameters())
    grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
    return outputs, dict(zip(("input", *names), grads))


def assert_same(reference: nn.Module, subject: nn.Module, x: torch.Tensor, *state) -> None:
    """Same parameter names in the same order, same outputs, same gradients by name."""
    expected, expected_grads = outputs_and_grads(reference, x, *state)
    outputs, grads = outputs_and_grads(subject, x, *state)
    assert list(grads) == list(expected_grads), "named_parameters differ from torch.nn's"
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads, expected_grads, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------- names, attributes, arguments

NAMED = {  # id -> (kind, constructor arguments)
    "LSTM-proj-bi-2": ("LSTM", (I, H), dict(proj_size=2, **STACK)),
    "LSTM-no-bias": ("LSTM", (I, H), dict(bias=False)),
    "GRU-bi-2": ("GRU", (I, H), STACK),
    "RNN-relu-3": ("RNN", (I, H), dict(num_layers=3, nonlinearity="relu")),
    "LSTMCell": ("LSTMCell", (I, H), {}),
    "GRUCell-no-bias": ("GRUCell", (I, H), dict(bias=False)),
    "RNNCell": ("RNNCell", (I, H), dict(nonlinearity="relu")),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", NAMED)
def test_parameters_carry_torch_names_on_the_module_itself(case, impl):
    """named_parameters() lists torch's names in torch's order, registered on the module itself (recurse=False:
    weight_norm and prune edit module._parameters[name]), each a real Parameter that getattr returns; the state_dict
    has torch's keys and loads strictly both ways without any state_dict hook."""
    kind, args, kwargs = NAMED[case]
    reference, subject = twins(impl, kind, *args, **kwargs)
    expected = [(name, p.shape) for name, p in reference.named_parameters()]
    assert [(name, p.shape) for name, p in subject.named_parameters()] == expected
    assert [name for name, _ in subject.named_parameters(recurse=False)] == [name for name, _ in expected]
    assert all(type(p) is nn.Parameter and getattr(subject, name) is p for name, p in subject.named_parameters())
    assert list(subject.state_dict()) == list(reference.state_dict())
    hooks = ("_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")
    assert not [name for name in hooks if getattr(subject, name)], "state_dict hooks"
    back = make("torch", kind, *args, **kwargs)
    back.load_state_dict(subject.state_dict(), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), reference.parameters(), strict=True))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", [case for case in NAMED if NAMED[case][0] in LAYERS])
def test_flat_weights_all_weights_and_flatten_parameters(case, impl):
    """_flat_weights_names as torch's; _flat_weights and all_weights (one list per layer and direction) hold the
    parameters themselves; flatten_parameters() runs, returns None and changes nothing; a reassigned parameter
    shows in _flat_weights."""
    kind, args, kwargs = NAMED[case]
    reference, subject = twins(impl, kind, *args, **kwargs)
    assert subject._flat_weights_names == reference._flat_weights_names
    assert [id(w) for w in subject._flat_weights] == [id(getattr(subject, n)) for n in subject._flat_weights_names]
    by_id = {id(p): name for name, p in subject.named_parameters()}
    assert [[by_id.get(id(w)) for w in weights] for weights in subject.all_weights] == reference._all_weights
    before = [p.clone() for p in subject.parameters()]
    assert subject.flatten_parameters() is None
    assert all(torch.equal(a, b) for a, b in zip(before, subject.parameters()))
    subject.weight_hh_l0 = nn.Parameter(torch.zeros_like(subject.weight_hh_l0))
    assert subject._flat_weights[subject._flat_weights_names.index("weight_hh_l0")] is subject.weight_hh_l0


CONSTRUCTORS = {  # every torch.nn constructor argument, positionally, then device= and dtype=
    "LSTM": (I, H, 2, False, True, 0.25, True, 2),
    "GRU": (I, H, 2, False, True, 0.25, True),
    "RNN": (I, H, 2, "relu", False, True, 0.25, True),
    "LSTMCell": (I, H, False),
    "GRUCell": (I, H, False),
    "RNNCell": (I, H, False, "relu"),
}
ATTRIBUTES = {"layer": ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                        "proj_size"], "cell": ["input_size", "hidden_size", "bias"]}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", list(CONSTRUCTORS))
def test_every_constructor_argument_with_device_and_dtype(kind, impl):
    """torch's positional order, device= and dtype= (every parameter float64), and torch's attributes with torch's
    values (nonlinearity too for the RNNs)."""
    reference = make("torch", kind, *CONSTRUCTORS[kind], device="cpu", dtype=torch.float64)
    subject = make(impl, kind, *CONSTRUCTORS[kind], device="cpu", dtype=torch.float64)
    names = ATTRIBUTES["cell" if kind in CELLS else "layer"] + (["nonlinearity"] if kind.startswith("RNN") else [])
    assert {n: getattr(subject, n) for n in names} == {n: getattr(reference, n) for n in names}
    assert all(p.dtype == torch.float64 for p in subject.parameters())
    assert [name for name, _ in subject.named_parameters()] == [name for name, _ in reference.named_parameters()]


def _hx(kind, *shape, dtype=torch.float32):
    h = torch.zeros(*shape, dtype=dtype)
    return (h, h) if kind.startswith("LSTM") else h


BAD_CALLS = {  # id -> (kinds, call(kind, impl), torch's exception class)
    "seq_len_0": (LAYERS, lambda k, i: make(i, k, I, H)(torch.zeros(0, B, I)), RuntimeError),
    "input_width": (LAYERS, lambda k, i: make(i, k, I, H)(torch.zeros(T, B, I + 1)), RuntimeError),
    "input_4d": (LAYERS, lambda k, i: make(i, k, I, H)(torch.zeros(1, T, B, I)), ValueError),
    "float64_input": (LAYERS, lambda k, i: make(i, k, I, H)(torch.zeros(T, B, I, dtype=torch.float64)), ValueError),
    "h_0_layers": (LAYERS, lambda k, i: make(i, k, I, H)(torch.zeros(T, B, I), _hx(k, 2, B, H)), RuntimeError),
    "h_0_2d_for_batched": (LAYERS, lambda k, i: make(i, k, I, H)(torch.zeros(T, B, I), _hx(k, 1, H)), RuntimeError),
    "hidden_size_0": (LAYERS, lambda k, i: make(i, k, I, 0), ValueError),
    "input_size_0": (LAYERS, lambda k, i: make(i, k, 0, H), ValueError),
    "num_layers_0": (LAYERS, lambda k, i: make(i, k, I, H, 0), ValueError),
    "input_size_float": (LAYERS, lambda k, i: make(i, k, 3.0, H), TypeError),
    "dropout_1.5": (LAYERS, lambda k, i: make(i, k, I, H, num_layers=2, dropout=1.5), ValueError),
    "dropout_negative": (LAYERS, lambda k, i: make(i, k, I, H, num_layers=2, dropout=-0.1), ValueError),
    "bias_int": (LAYERS, lambda k, i: make(i, k, I, H, bias=1), TypeError),
    "batch_first_int": (LAYERS, lambda k, i: make(i, k, I, H, batch_first=0), TypeError),
    "proj_size": (["GRU", "RNN"], lambda k, i: make(i, k, I, H, proj_size=2), ValueError),
    "proj_size_equal": (["LSTM"], lambda k, i: make(i, k, I, H, proj_size=H), ValueError),
    "proj_size_negative": (["LSTM"], lambda k, i: make(i, k, I, H, proj_size=-1), ValueError),
    "nonlinearity": (["RNN"], lambda k, i: make(i, k, I, H, nonlinearity="sigmoid"), ValueError),
    "cell_input_width": (CELLS, lambda k, i: make(i, k, I, H)(torch.zeros(B, I + 1)), RuntimeError),
    "cell_hidden_width": (CELLS, lambda k, i: make(i, k, I, H)(torch.zeros(B, I), _hx(k, B, H + 1)), RuntimeError),
    "cell_batch_mismatch": (CELLS, lambda k, i: make(i, k, I, H)(torch.zeros(B, I), _hx(k, B + 1, H)), RuntimeError),
    "cell_input_3d": (CELLS, lambda k, i: make(i, k, I, H)(torch.zeros(1, B, I)), ValueError),
    "cell_hidden_3d": (CELLS, lambda k, i: make(i, k, I, H)(torch.zeros(B, I), _hx(k, 1, B, H)), ValueError),
    "cell_float64_input": (CELLS, lambda k, i: make(i, k, I, H)(torch.zeros(B, I, dtype=torch.float64)), RuntimeError),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind, case", [(kind, case) for case, (kinds, _, _) in BAD_CALLS.items() for kind in kinds])
def test_bad_arguments_raise_torch_exception_class(kind, case, impl):
    """torch.nn's validation: the same exception class for the same mistake (at construction or at the call)."""
    _, bad_call, error = BAD_CALLS[case]
    with pytest.raises(error):
        bad_call(kind, impl)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS)
def test_dropout_one_and_integer_dropout_are_accepted(kind, impl):
    """dropout may be anything in [0, 1], 1 and integers included; with 1 a training forward still runs."""
    assert make(impl, kind, I, H, num_layers=2, dropout=0).dropout == 0
    layer = make(impl, kind, I, H, num_layers=2, dropout=1)
    assert layer.dropout == 1
    layer.train()(example_input(kind))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", CELLS)
def test_cells_accept_hidden_size_zero(kind, impl):
    """A cell of hidden_size 0 runs and returns (B, 0) states."""
    cell = make(impl, kind, I, 0)
    assert all(t.shape == (B, 0) for t in tensors(cell(example_input(kind), _hx(kind, B, 0))))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS + CELLS)
def test_batch_of_zero_sequences(kind, impl):
    """A batch of 0 gives outputs with a batch dimension of 0, and backward runs."""
    module = make(impl, kind, I, H)
    x = example_input(kind, batch=0).requires_grad_()
    outputs = tensors(module(x))
    assert outputs[0].shape == ((0, H) if kind in CELLS else (T, 0, H))
    sum(out.sum() for out in outputs).backward()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS + CELLS)
def test_numpy_numbers_are_taken_where_torch_takes_them(kind, impl):
    """Sizes built with numpy: a cell's sizes, a layer's num_layers and proj_size, dropout (np.float32)."""
    numpy = pytest.importorskip("numpy")
    if kind in CELLS:
        module = make(impl, kind, numpy.int64(I), numpy.int64(H))
        assert (module.input_size, module.hidden_size) == (I, H)
    else:
        extra = dict(proj_size=numpy.int64(2)) if kind == "LSTM" else {}
        module = make(impl, kind, I, H, numpy.int64(2), dropout=numpy.float32(0.5), **extra)
        assert module.num_layers == 2 and module.dropout == 0.5
        assert getattr(module, "proj_size", 0) == (2 if extra else 0)
    assert tensors(module(example_input(kind)))[0].shape[-1] == (2 if kind == "LSTM" else H)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS + CELLS)
def test_autocast_input_runs_and_is_close_to_torch(kind, impl):
    """Under torch.autocast (bfloat16 on a CPU) the input may be bfloat16 while the weights are float32, as in
    mixed-precision training: no dtype error, outputs within bfloat16's precision of torch.nn's, and backward runs.
    Outside autocast the same input is refused, as torch.nn refuses it."""
    reference, module = twins(impl, kind, I, H, **({} if kind in CELLS else STACK))
    x = example_input(kind).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = tensors(reference(x)), tensors(module(x.requires_grad_()))
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b.float(), a.float(), atol=0.05, rtol=0.05)
    sum(out.float().sum() for out in got).backward()
    weight = module.weight_hh_l0 if kind in LAYERS else module.weight_hh
    assert x.grad is not None and weight.grad is not None
    with pytest.raises(ValueError if kind in LAYERS else RuntimeError):
        module(x.detach())


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS)
def test_mode_and_repr_are_torch_s(kind, impl):
    """RNNBase.mode, and the repr's first line: the sizes and every argument off its default, in torch's order."""
    arguments = dict(LSTM=dict(proj_size=2, num_layers=2, batch_first=True),
                     GRU=dict(bias=False, bidirectional=True), RNN=dict(nonlinearity="relu", dropout=0.5, num_layers=2))
    module, reference = make(impl, kind, I, H, **arguments[kind]), make("torch", kind, I, H, **arguments[kind])
    assert module.mode == reference.mode
    assert reference.extra_repr() in repr(module)


# ----------------------------------------------------------------------------------------- what test_nn.py checks

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS + CELLS)
def test_no_initial_state_equals_zeros(kind, impl):
    """hx=None is the zero state."""
    module = make(impl, kind, I, H, **({} if kind in CELLS else STACK))
    x = example_input(kind)
    shape = (B, H) if kind in CELLS else (4, B, H)
    for a, b in zip(tensors(module(x)), tensors(module(x, _hx(kind, *shape))), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS)
def test_changing_dropout_after_construction_takes_effect(kind, impl):
    """Setting .dropout on a built layer changes its training forward: 0 and 1 are deterministic (1 equals torch's
    with the same weights), 0.5 draws a new mask each call; eval mode ignores it."""
    reference, layer = twins(impl, kind, I, H, num_layers=2)
    x = example_input(kind)
    for p in (0.0, 0.5, 1.0, 0.0):
        layer.dropout = reference.dropout = p
        first, second = tensors(layer.train()(x)), tensors(layer(x))
        same = all(torch.equal(a, b) for a, b in zip(first, second))
        assert same == (p != 0.5), f"dropout={p}"
        if p == 1.0:
            torch.testing.assert_close(first, tensors(reference.train()(x)), atol=1e-5, rtol=1e-5)
        plain = tensors(reference.eval()(x))
        torch.testing.assert_close(tensors(layer.eval()(x)), plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_rnn_nonlinearity_positional_and_default(impl):
    """RNN's fourth positional argument is the nonlinearity; the default is tanh."""
    assert make(impl, "RNN", I, H).nonlinearity == "tanh"
    relu = make(impl, "RNN", I, H, 1, "relu")
    assert relu.nonlinearity == "relu" and (relu(example_input("RNN"))[0] >= 0).all()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS + CELLS)
def test_backward_twice_with_retain_graph(kind, impl):
    """backward twice through a retained graph accumulates the same gradient twice."""
    module = make(impl, kind, I, H)
    loss = sum(out.sum() for out in tensors(module(example_input(kind))))
    loss.backward(retain_graph=True)
    once = [p.grad.clone() for p in module.parameters()]
    loss.backward()
    assert all(torch.allclose(p.grad, 2 * g) for p, g in zip(module.parameters(), once))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS + CELLS)
def test_double_backward_equals_torch(kind, impl):
    """A gradient penalty (the input gradient, differentiated again) gives torch.nn's parameter gradients."""
    reference, subject = twins(impl, kind, I, H, **({} if kind in CELLS else dict(batch_first=True, **STACK)))
    results = []
    for module in (reference, subject):
        x = example_input(kind).requires_grad_()
        (grad_x,) = torch.autograd.grad(sum(out.sum() for out in tensors(module(x))), x, create_graph=True)
        names, params = zip(*module.named_parameters())
        results.append(dict(zip(names, torch.autograd.grad(grad_x.pow(2).sum(), params, allow_unused=True))))
    assert list(results[1]) == list(results[0])
    torch.testing.assert_close(results[1], results[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("output", [0, 1])
def test_lstm_cell_backward_from_one_output(output, impl):
    """Backward from h' alone or c' alone (the other unused) gives torch.nn's gradients."""
    reference, subject = twins(impl, "LSTMCell", I, H)
    x = example_input("LSTMCell")
    grads = [torch.autograd.grad(module(x)[output].sum(), list(module.parameters()), allow_unused=True)
             for module in (reference, subject)]
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind, name, count", [("LSTM", "weight_ih_l0", 4), ("LSTM", "weight_hr_l0", 5),
                                               ("GRU", "weight_hh_l0", 4), ("RNN", "weight_ih_l0", 4)])
def test_weight_norm_and_its_removal_seen_in_flat_weights(kind, name, count, impl):
    """weight_norm (the old API) turns the weight in _flat_weights into a plain tensor (one Parameter fewer);
    remove_weight_norm puts the Parameter back under its name, without the _g and _v parts."""
    layer = make(impl, kind, I, H, **({"proj_size": 2} if name == "weight_hr_l0" else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        nn.utils.weight_norm(layer, name)
    assert sum(isinstance(w, nn.Parameter) for w in layer._flat_weights) == count - 1
    nn.utils.remove_weight_norm(layer, name)
    assert sum(isinstance(w, nn.Parameter) for w in layer._flat_weights) == count
    params = dict(layer.named_parameters())
    assert name in params and name + "_g" not in params and name + "_v" not in params


# ------------------------------------------------------------------ parametrizations, pruning, reassignment, tying

class LowerTriangular(nn.Module):
    def forward(self, weight):
        return weight.tril()


def _scale_norm_part(module, name):
    with torch.no_grad():
        getattr(module, name + "_g").mul_(2)  # the norm part, so that the output changes


def _old_weight_norm(module, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        nn.utils.weight_norm(module, name)
    _scale_norm_part(module, name)


def _new_weight_norm(module, name):
    parametrizations.weight_norm(module, name)
    with torch.no_grad():
        module.parametrizations[name].original0.mul_(2)


OPERATIONS = {  # id -> op(module, weight name); run from the same seed on both modules
    "weight_norm": _old_weight_norm,
    "parametrizations.weight_norm": _new_weight_norm,
    "spectral_norm": lambda m, name: parametrizations.spectral_norm(m, name),
    "l1_unstructured": lambda m, name: prune.l1_unstructured(m, name, amount=0.5),
    "random_unstructured": lambda m, name: prune.random_unstructured(m, name, amount=0.5),
    "register_parametrization": lambda m, name: parametrize.register_parametrization(m, name, LowerTriangular()),
    "reassign": lambda m, name: setattr(m, name, nn.Parameter(torch.randn(getattr(m, name).shape))),
}
TARGETS = {  # id -> (kind, constructor options, weight name)
    "LSTM-weight_hh_l0": ("LSTM", STACK, "weight_hh_l0"),
    "LSTM-weight_ih_l1_reverse": ("LSTM", STACK, "weight_ih_l1_reverse"),
    "LSTM-proj-weight_hr_l0": ("LSTM", dict(proj_size=2, **STACK), "weight_hr_l0"),
    "GRU-weight_hh_l0": ("GRU", STACK, "weight_hh_l0"),
    "GRU-weight_ih_l1_reverse": ("GRU", STACK, "weight_ih_l1_reverse"),
    "RNN-weight_hh_l0": ("RNN", STACK, "weight_hh_l0"),
    "RNN-weight_ih_l1_reverse": ("RNN", STACK, "weight_ih_l1_reverse"),
    "LSTMCell-weight_hh": ("LSTMCell", {}, "weight_hh"),
    "GRUCell-weight_ih": ("GRUCell", {}, "weight_ih"),
    "RNNCell-weight_hh": ("RNNCell", {}, "weight_hh"),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_weight_operations_act_as_on_torch(operation, target, impl):
    """weight_norm (old and new API), spectral_norm, L1 and random pruning, a registered parametrization and a
    reassigned Parameter change the parameter names, outputs and gradients exactly as on torch.nn's module
    (spectral_norm in training mode: two calls, so its power iteration runs on both)."""
    kind, options, name = TARGETS[target]
    reference, subject = twins(impl, kind, I, H, **options)
    for module in (reference, subject):
        torch.manual_seed(3)  # spectral_norm's vectors, the random pruning mask, the reassigned values
        OPERATIONS[operation](module, name)
    if operation == "spectral_norm" and kind in LAYERS:
        # torch.nn's layers read each weight twice per forward, so in training mode spectral_norm's power
        # iteration runs twice there and once here (docs/dropin.md): compared in eval mode, which keeps u, v
        reference.eval(), subject.eval()
    x = example_input(kind)
    assert_same(reference, subject, x)
    assert_same(reference, subject, x)


class Counted(nn.Module):
    """The identity parametrization, counting its evaluations (one per read of the parametrized attribute)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, weight):
        self.calls += 1
        return weight


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("target", TARGETS)
def test_forward_reads_each_weight_once(target, impl):
    """A parametrized weight is recomputed at every read (spectral_norm runs a power iteration each time, in place),
    so a forward reads each weight once, as torch.nn's cells and its other modules do. torch.nn's RNN layers read
    each twice (a deliberate difference, docs/dropin.md), so their control is skipped."""
    kind, options, name = TARGETS[target]
    if impl == "torch" and kind in LAYERS:
        pytest.skip("torch.nn's RNN layers read each weight twice per forward")
    counts = []
    for module in twins(impl, kind, I, H, **options):
        counter = Counted()
        parametrize.register_parametrization(module, name, counter)
        counter.calls = 0
        module(example_input(kind))
        counts.append(counter.calls)
    assert counts[1] == 1, f"{name} read {counts[1]} times per forward"
    if kind not in LAYERS:
        assert counts[0] == 1, f"torch.nn reads {name} {counts[0]} times per forward"


TIES = {"bias_ih_l0_reverse": "bias_ih_l0", "weight_hh_l1": "weight_hh_l0"}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tie", TIES)
@pytest.mark.parametrize("kind", LAYERS)
def test_tied_parameters_act_as_on_torch(kind, tie, impl):
    """One Parameter under two names (a direction's bias to the other's, a layer's weight_hh to another's):
    named_parameters lists it once, and outputs and its gradient (both uses summed) equal torch.nn's."""
    reference, subject = twins(impl, kind, I, H, **STACK)
    for module in (reference, subject):
        setattr(module, tie, getattr(module, TIES[tie]))
    assert getattr(subject, tie) is getattr(subject, TIES[tie])
    assert_same(reference, subject, example_input(kind))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", LAYERS + CELLS)
def test_optimizer_groups_by_parameter_name(kind, impl):
    """Optimizer groups picked by torch's names (weights decayed, biases not) train as torch.nn's: after two SGD
    steps with momentum every parameter equals torch's."""
    reference, subject = twins(impl, kind, I, H, **({} if kind in CELLS else STACK))
    x = example_input(kind)
    for module in (reference, subject):
        named = list(module.named_parameters())
        optimizer = torch.optim.SGD([
            {"params": [p for n, p in named if n.startswith("weight")], "weight_decay": 0.1},
            {"params": [p for n, p in named if n.startswith("bias")], "weight_decay": 0.0},
        ], lr=0.1, momentum=0.9)
        assert [len(g["params"]) for g in optimizer.param_groups] == [len(named) // 2] * 2
        for _ in range(2):
            optimizer.zero_grad()
            sum(out.pow(2).sum() for out in tensors(module(x))).backward()
            optimizer.step()
    torch.testing.assert_close(dict(subject.named_parameters()), dict(reference.named_parameters()),
                               atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------- compile and export

class Tagger(nn.Module):
    """A user's model: a recurrent layer, then a linear head on every step's output."""

    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), 2)

    def forward(self, x):
        output, _ = self.rnn(x)
        return self.head(output)


COMPILED = {  # id -> (kind, options, backend): inductor (~20 s of C++ compiling) for inference, aot_eager for training
    "LSTM-inductor": ("LSTM", dict(batch_first=True, **STACK), "inductor"),
    "GRU-aot_eager": ("GRU", STACK, "aot_eager"),
    "RNN-aot_eager": ("RNN", dict(nonlinearity="relu", **STACK), "aot_eager"),
}


@pytest.mark.parametrize("case", COMPILED)
def test_compile_fullgraph_equals_eager(case):
    """torch.compile(fullgraph=True) of a model holding an rnncount layer (2 layers, bidirectional) compiles without
    a graph break and equals eager: the output (inductor, inference) or the output and every gradient (aot_eager).
    torch.nn.LSTM itself cannot be compiled with fullgraph=True (pytorch#158007), so there is no torch control."""
    kind, options, backend = COMPILED[case]
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = Tagger(make("rnncount", kind, I, H, **options))
    x = torch.randn(B, 3, I) if options.get("batch_first") else torch.randn(3, B, I)
    compiled = torch.compile(model, fullgraph=True, backend=backend)

    def output_and_grads(function):
        if backend == "inductor":
            with torch.no_grad():
                return function(x)
        leaf = x.clone().requires_grad_()
        output = function(leaf)
        return output, torch.autograd.grad(output.pow(2).sum(), [leaf, *model.parameters()])

    try:
        torch.testing.assert_close(output_and_grads(compiled), output_and_grads(model), atol=1e-5, rtol=1e-5)
    finally:
        torch._dynamo.reset()


@pytest.mark.parametrize("kind", LAYERS)
def test_torch_export_equals_eager(kind):
    """torch.export.export of a 2-layer bidirectional layer (with an initial state) runs and equals eager."""
    torch.manual_seed(0)
    layer = make("rnncount", kind, I, H, **STACK).eval()
    x, hx = example_input(kind, steps=3), _hx(kind, 4, B, H)
    exported = torch.export.export(layer, (x, hx))
    torch.testing.assert_close(tensors(exported.module()(x, hx)), tensors(layer(x, hx)), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", LAYERS)
def test_torch_export_with_lengths(kind):
    """rnncount's lengths= (what torch.nn lacks) exports too: the program equals eager for other lengths, and lengths
    outside [1, T] fail its runtime check, as eager refuses them."""
    torch.manual_seed(0)
    layer = make("rnncount", kind, I, H, bidirectional=True).eval()
    x = example_input(kind, steps=6)
    exported = torch.export.export(layer, (x,), {"lengths": torch.tensor([6] + [3] * (B - 1))})
    lengths = torch.arange(B) % 6 + 1  # (B,): 1, 2, ... other lengths than the traced ones
    torch.testing.assert_close(tensors(exported.module()(x, lengths=lengths)), tensors(layer(x, lengths=lengths)),
                               atol=1e-6, rtol=1e-6)
    for bad in (0, 7):
        with pytest.raises(RuntimeError):
            exported.module()(x, lengths=torch.full((B,), bad))


@pytest.mark.parametrize("kind", LAYERS)
def test_onnx_export_runs_in_onnxruntime(kind):
    """torch.onnx.export(dynamo=True) of a 2-layer bidirectional layer runs in onnxruntime and equals eager to 1e-5."""
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    layer = make("rnncount", kind, I, H, **STACK).eval()
    x = example_input(kind, steps=3)
    program = torch.onnx.export(layer, (x,), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    expected = tensors(layer(x))
    assert len(outputs) == len(expected)
    torch.testing.assert_close([torch.from_numpy(out) for out in outputs], expected, atol=1e-5, rtol=1e-5)

"""PyTorch's own module checks, run on rnncount.

The installed torch's ModuleInfo entries (torch.testing._internal.common_modules.module_db) for nn.LSTM, GRU, RNN,
LSTMCell, GRUCell and RNNCell give the constructor arguments, forward inputs, reference functions and error inputs;
each check below re-implements one of test/test_modules.py's CPU checks and runs it on rnncount's class in place of
torch's, and on torch's own class as the control (if the control fails, the check is wrong).

Not run, as torch does not run them on CPU either: test_cpu_gpu_parity and test_multiple_device_transfer (CUDA
only), test_check_inplace (no `inplace` argument). The entries' decorators mark failures on cuDNN/MIOpen only.
Where torch's error input asserts a message, only the exception class is asserted here: the contract is torch's
exception classes, not its wording.
"""

from __future__ import annotations

import io
from itertools import product

import pytest
import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

pytest.importorskip("expecttest")  # torch.testing._internal imports it
from torch.testing._internal.common_modules import ModuleErrorEnum, module_db  # noqa: E402

import rnncount  # noqa: E402

OURS = {nn.LSTM: rnncount.LSTM, nn.GRU: rnncount.GRU, nn.RNN: rnncount.RNN,
        nn.LSTMCell: rnncount.LSTMCell, nn.GRUCell: rnncount.GRUCell, nn.RNNCell: rnncount.RNNCell}
ENTRIES = {info.module_cls.__name__: info for info in module_db if info.module_cls in OURS}
IMPLS = ["torch", "rnncount"]
BOTH_DTYPES = (torch.float32, torch.float64)  # ModuleInfo's default dtypes on CPU

pytestmark = [pytest.mark.parametrize("entry", list(ENTRIES)),
              pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")]
both = pytest.mark.parametrize("impl", IMPLS)


def module_class(impl: str, entry: str):
    info = ENTRIES[entry]
    return info.module_cls if impl == "torch" else OURS[info.module_cls]


def training_modes(entry: str) -> tuple[bool, ...]:
    """Both modes where the entry says train and eval differ (the layers), else training only, as torch runs them."""
    return (True, False) if ENTRIES[entry].train_and_eval_differ else (True,)


def samples(entry: str, dtype, requires_grad: bool, training: bool) -> list:
    info = ENTRIES[entry]
    inputs = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=requires_grad, training=training)
    return [sample for sample in inputs if sample.forward_input is not None]


def describe(sample) -> str:
    """The sample's constructor call and input shapes, for failure messages."""
    args = sample.constructor_input.args + tuple(f"{k}={v}" for k, v in sample.constructor_input.kwargs.items())
    shapes = tree_map(lambda t: tuple(t.shape) if isinstance(t, torch.Tensor) else t, sample.forward_input.args)
    return f"({', '.join(map(str, args))}) on {shapes}"


def build(cls, sample, dtype, training: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    module = cls(*sample.constructor_input.args, **sample.constructor_input.kwargs)
    return module.to(dtype).train(training)


def call(module, args):
    return module(*args)


def tensors(output) -> list[torch.Tensor]:
    return [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]


def run(check, entry: str, impl: str, dtypes=(torch.float32,), requires_grad: bool = False,
        modes=(True,), keep=lambda sample: True) -> None:
    """Run check(cls, sample, dtype, training) on every sample of the entry; fail once, listing the failing samples.

    torch runs every check in float32 and float64 and, for the layers, in training and eval mode; the layers'
    samples have no dropout, so the modes compute the same thing: the checks that only forward run in all of them,
    the costlier ones in one (named at the call)."""
    cls, failures, count = module_class(impl, entry), [], 0
    for dtype, training in product(dtypes, modes):
        for sample in filter(keep, samples(entry, dtype, requires_grad, training)):
            count += 1
            try:
                check(cls, sample, dtype, training)
            except Exception as error:  # noqa: BLE001 - every failure is reported with its sample
                message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
                failures.append(f"{describe(sample)} {dtype} training={training}: {type(error).__name__}: {message}")
    assert count, "no samples"
    assert not failures, f"{len(failures)} of {count} samples fail:\n" + "\n".join(failures[:4])


def close(actual, expected, **tolerance) -> None:
    torch.testing.assert_close(tensors(actual), tensors(expected), **tolerance)


# ------------------------------------------------------------------------------------------------ the checks

@both
def test_forward(entry, impl):
    """The forward runs; it equals the entry's reference (the same input given a batch of one); after .float() or
    .double() the module runs again and every parameter and buffer has that dtype."""
    def check(cls, sample, dtype, training):
        module = build(cls, sample, dtype, training)
        args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
        output = module(*args, **kwargs)
        if sample.reference_fn is not None:
            close(output, sample.reference_fn(module, *args, **kwargs))  # it deep-copies the module, passes parameters
        (module.float() if dtype == torch.float32 else module.double())(*args, **kwargs)
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            assert tensor.dtype == dtype and tensor.device.type == "cpu", f"{name}: {tensor.dtype} on {tensor.device}"
    run(check, entry, impl, BOTH_DTYPES, modes=training_modes(entry))


@both
def test_equals_torch_with_the_same_weights(entry, impl):
    """torch.nn's module's state_dict loads (strict) and then outputs and gradients (inputs, every parameter by
    torch's name) equal torch.nn's: the reference the ModuleInfo's module_cls gives."""
    def check(cls, sample, dtype, training):
        theirs = build(ENTRIES[entry].module_cls, sample, dtype, training)
        ours = build(cls, sample, dtype, training, seed=1)
        ours.load_state_dict(theirs.state_dict())
        names = [name for name, _ in theirs.named_parameters()]
        our_params = dict(ours.named_parameters())
        missing = [name for name in names if name not in our_params]
        assert not missing, f"named_parameters lacks {missing}"
        results = []
        for module, params in ((theirs, dict(theirs.named_parameters())), (ours, our_params)):
            leaves, spec = tree_flatten(sample.forward_input.args)
            leaves = [leaf.detach().clone().requires_grad_() for leaf in leaves]
            outputs = tensors(module(*tree_unflatten(leaves, spec)))
            weights = torch.Generator().manual_seed(0)
            loss = sum((out * torch.randn(out.shape, generator=weights, dtype=out.dtype)).sum() for out in outputs)
            results.append((outputs, torch.autograd.grad(loss, leaves + [params[n] for n in names])))
        close(results[1], results[0])
    run(check, entry, impl, dtypes=(torch.float64,))


@both
def test_factory_kwargs(entry, impl):
    """device= and dtype= given to the constructor reach every parameter and buffer."""
    def check(cls, sample, dtype, training):
        module = cls(*sample.constructor_input.args, **sample.constructor_input.kwargs, device="cpu", dtype=dtype)
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            assert tensor.dtype == dtype and tensor.device.type == "cpu", f"{name}: {tensor.dtype} on {tensor.device}"
    run(check, entry, impl, BOTH_DTYPES)


@both
def test_repr(entry, impl):
    """repr() and str() run."""
    def check(cls, sample, dtype, training):
        module = build(cls, sample, dtype, training)
        repr(module), str(module)
    run(check, entry, impl, BOTH_DTYPES, modes=training_modes(entry))


@both
def test_pickle(entry, impl):
    """torch.save of the whole module and torch.load give a module with the same output."""
    def check(cls, sample, dtype, training):
        module = build(cls, sample, dtype, training)
        output = call(module, sample.forward_input.args)
        buffer = io.BytesIO()
        torch.save(module, buffer)
        buffer.seek(0)
        copy = torch.load(buffer, weights_only=False)
        close(call(copy, sample.forward_input.args), output)
    run(check, entry, impl)


@both
def test_state_dict_save_load(entry, impl):
    """A saved state_dict (torch.save, weights_only load) loads strictly into a fresh module: same output."""
    def check(cls, sample, dtype, training):
        module, fresh = build(cls, sample, dtype, training), build(cls, sample, dtype, training, seed=1)
        buffer = io.BytesIO()
        torch.save(module.state_dict(), buffer)
        buffer.seek(0)
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        close(call(fresh, sample.forward_input.args), call(module, sample.forward_input.args))
    run(check, entry, impl)


def non_contiguous(tree):
    """Every tensor of a tree as a non-contiguous copy with the same values (every other column of a wider tensor)."""
    def strided(t):
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            return t
        return torch.repeat_interleave(t.detach(), 2, dim=-1)[..., ::2].requires_grad_(t.requires_grad)
    return tree_map(strided, tree)


@both
def test_non_contiguous_tensors(entry, impl):
    """Non-contiguous inputs and output gradients give the same outputs and gradients (inputs, parameters)."""
    def outputs_and_grads(module, args, grad_outputs):
        leaves = [t for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
        outputs = tensors(call(module, args))
        grads = torch.autograd.grad(outputs, leaves + list(module.parameters()), grad_outputs, allow_unused=True)
        return outputs, grads

    def check(cls, sample, dtype, training):
        module = build(cls, sample, dtype, training)
        args = sample.forward_input.args
        torch.manual_seed(2)
        grad_outputs = [torch.randn_like(out) for out in tensors(call(module, args))]
        expected = outputs_and_grads(module, args, grad_outputs)
        for in_args, in_grads in [(non_contiguous(args), grad_outputs), (args, non_contiguous(grad_outputs)),
                                  (non_contiguous(args), non_contiguous(grad_outputs))]:
            outputs, grads = outputs_and_grads(module, in_args, in_grads)
            close(outputs, expected[0])
            close([g for g in grads if g is not None], [g for g in expected[1] if g is not None], atol=1e-4, rtol=0)
    run(check, entry, impl, requires_grad=True)


def gradient_check(check_fn):
    """gradcheck/gradgradcheck (fast mode, batched gradients, as torch's test wrapper sets) of the outputs with
    respect to the inputs and parameters together. (torch's test then repeats it for each parameter alone: 17 times
    the cost for a 2-layer bidirectional LSTM, minutes on two cores, and no derivative that the total check misses.)"""
    def check(cls, sample, dtype, training):
        module = build(cls, sample, dtype, training)
        args, params = sample.forward_input.args, tuple(module.parameters())
        flat, spec = tree_flatten((args, params))

        def function(*leaves):
            new_args, _ = tree_unflatten(list(leaves), spec)  # the parameters are perturbed in place
            return tuple(tensors(call(module, new_args)))

        assert check_fn(function, flat, fast_mode=True, check_batched_grad=True)
    return check


def gradgrad_samples(sample) -> bool:
    """The samples gradgradcheck runs on (~1 s each for the LSTM): bidirectional, with bias, sequence-first layers
    (with and without initial states, projection, relu), every cell sample."""
    kwargs = sample.constructor_input.kwargs
    return kwargs.get("bidirectional", True) and kwargs.get("bias", True) and not kwargs.get("batch_first", False)


def test_grad(entry):
    """gradcheck in float64, on every sample. (gradcheck is its own oracle: no torch control.)"""
    run(gradient_check(torch.autograd.gradcheck), entry, "rnncount", dtypes=(torch.float64,), requires_grad=True)


def test_gradgrad(entry):
    """gradgradcheck in float64 (every entry supports second derivatives), on the gradgrad_samples."""
    assert ENTRIES[entry].supports_gradgrad
    run(gradient_check(torch.autograd.gradgradcheck), entry, "rnncount", dtypes=(torch.float64,), requires_grad=True,
        keep=gradgrad_samples)


@both
def test_memory_format(entry, impl):
    """The inputs have no 4- or 5-dim tensor, so the formats are contiguous (inputs) and preserve/contiguous (the
    module): outputs and, in training mode, gradients equal the plain run's and come out contiguous."""
    def outputs_and_grads(module, args, training, grad_outputs=None):
        outputs = tensors(call(module, args))
        if not training:
            return outputs, [], grad_outputs
        leaves = [t for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
        grad_outputs = grad_outputs or [torch.rand_like(out) for out in outputs]
        return outputs, list(torch.autograd.grad(outputs, leaves + list(module.parameters()), grad_outputs)), grad_outputs

    def check(cls, sample, dtype, training):
        module = build(cls, sample, dtype, training)
        expected, expected_grads, grad_outputs = outputs_and_grads(module, sample.forward_input.args, training)
        args = tree_map(lambda t: t.detach().clone().contiguous().requires_grad_(t.requires_grad)
                        if isinstance(t, torch.Tensor) else t, sample.forward_input.args)
        for memory_format in (torch.preserve_format, torch.contiguous_format):
            module.to(memory_format=memory_format)
            outputs, grads, _ = outputs_and_grads(module, args, training, grad_outputs)
            close(outputs, expected)
            close(grads, expected_grads)
            assert all(t.is_contiguous() for t in outputs + grads), "an output or gradient is not contiguous"
    run(check, entry, impl, requires_grad=True)


@both
def test_if_train_and_eval_modes_differ(entry, impl):
    """Without its `training` attribute the module still runs, unless the entry says train and eval differ (the
    layers' dropout): a cell must not read self.training when no random switch is on."""
    def check(cls, sample, dtype, training):
        module = build(cls, sample, dtype, training)
        delattr(module, "training")
        try:
            call(module, sample.forward_input.args)
        except AttributeError as error:
            if "'training'" not in str(error):
                raise
            assert ENTRIES[entry].train_and_eval_differ, f"forward reads self.training: {error}"
    run(check, entry, impl)


@both
def test_device_ctx_init(entry, impl):
    """Built under `with torch.device('meta')`, every parameter and buffer is a meta tensor with the CPU module's
    shape, stride, dtype and requires_grad."""
    def check(cls, sample, dtype, training):
        cpu = cls(*sample.constructor_input.args, **sample.constructor_input.kwargs)
        with torch.device("meta"):
            meta = cls(*sample.constructor_input.args, **sample.constructor_input.kwargs)
        pairs = list(zip(meta.named_parameters(), cpu.named_parameters(), strict=True))
        pairs += list(zip(meta.named_buffers(), cpu.named_buffers(), strict=True))
        for (name, m), (_, c) in pairs:
            assert m.is_meta, f"{name} is on {m.device}"
            assert (m.shape, m.stride(), m.dtype, m.requires_grad, type(m)) == \
                (c.shape, c.stride(), c.dtype, c.requires_grad, type(c)), name
    run(check, entry, impl)


@both
def test_errors(entry, impl):
    """Every error input of the entry raises torch's exception class, at construction or at the forward call."""
    info, cls = ENTRIES[entry], module_class(impl, entry)
    failures, count = [], 0
    for dtype, training in product(BOTH_DTYPES, training_modes(entry)):
        for error_input in info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False,
                                                         training=training):
            count += 1
            sample = error_input.module_error_input
            expected = error_input.error_type
            try:
                module = cls(*sample.constructor_input.args, **sample.constructor_input.kwargs)
                if error_input.error_on == ModuleErrorEnum.FORWARD_ERROR:
                    module(*sample.forward_input.args, **sample.forward_input.kwargs)
            except expected:
                continue
            except Exception as error:  # noqa: BLE001
                failures.append(f"{describe_error(sample)}: {type(error).__name__} ({str(error)[:120]}), "
                                f"expected {expected.__name__} ({error_input.error_regex})")
                continue
            failures.append(f"{describe_error(sample)}: no error, expected {expected.__name__}")
    assert not failures, f"{len(failures)} of {count} error inputs fail:\n" + "\n".join(failures[:6])


def describe_error(sample) -> str:
    args = sample.constructor_input.args + tuple(f"{k}={v}" for k, v in sample.constructor_input.kwargs.items())
    forward = "" if sample.forward_input is None else " on " + str(tree_map(
        lambda t: f"{tuple(t.shape)} {t.dtype}" if isinstance(t, torch.Tensor) else t, sample.forward_input.args))
    return f"({', '.join(map(str, args))}){forward}"


@pytest.fixture
def swap_setting():
    """Restores torch's global swap_module_params_on_conversion flag after a test that sets it."""
    before = torch.__future__.get_swap_module_params_on_conversion()
    yield
    torch.__future__.set_swap_module_params_on_conversion(before)


def replace_parameters(module: nn.Module, set_grad: bool) -> None:
    """Every parameter (in every submodule) by a fresh float32 Parameter, with a gradient if set_grad, by setattr."""
    for child in module.children():
        replace_parameters(child, set_grad)
    for name, p in list(module.named_parameters(recurse=False)):
        new = nn.Parameter(p.detach().clone().float())
        setattr(module, name, new)
        if set_grad:
            new.grad = torch.randn_like(new)


@both
@pytest.mark.usefixtures("swap_setting")
def test_to(entry, impl):
    """module.to(dtype) keeps the same Parameter objects: with swap_module_params_on_conversion off they keep their
    storage object too (.data is set), with it on the tensors are swapped in place (same id, new _cdata); gradients
    follow. With swapping, .to() also works after a forward and backward."""
    def check(cls, sample, dtype, training):
        for swap, set_grad in product((False, True), repeat=2):
            torch.__future__.set_swap_module_params_on_conversion(swap)
            module = cls(*sample.constructor_input.args, **sample.constructor_input.kwargs).train(training)
            replace_parameters(module, set_grad)
            if swap and not set_grad:
                tensors(call(module, sample.forward_input.args))[0].sum().backward()
                module.to(dtype=torch.half).to(dtype=torch.float32)
            previous = torch.float32
            for new_dtype in BOTH_DTYPES:
                params = list(module.parameters())
                ids, cdatas = [id(p) for p in params], [p._cdata for p in params]
                grad_cdatas = [p.grad._cdata for p in params] if set_grad else []
                module.to(device="cpu", dtype=new_dtype)
                params = list(module.parameters())
                assert all(isinstance(p, nn.Parameter) and p.dtype == new_dtype for p in params)
                assert [id(p) for p in params] == ids, f"swap={swap}: .to() replaced Parameter objects"
                if swap:
                    assert all(a != b for a, b in zip([p._cdata for p in params], cdatas)), "not swapped"
                else:
                    assert [p._cdata for p in params] == cdatas, "swap off: the tensors were not kept"
                if set_grad:
                    assert all(p.grad.dtype == new_dtype for p in params)
                    unchanged = new_dtype == previous or not swap
                    assert all((a == b) == unchanged for a, b in zip(grad_cdatas, [p.grad._cdata for p in params]))
                previous = new_dtype
    run(check, entry, impl)


@both
@pytest.mark.usefixtures("swap_setting")
def test_to_empty(entry, impl):
    """A module built on the meta device, moved with to_empty(device='cpu'): every parameter is a CPU Parameter;
    swapping keeps the Parameter objects, otherwise new ones replace them."""
    def check(cls, sample, dtype, training):
        for swap in (False, True):
            torch.__future__.set_swap_module_params_on_conversion(swap)
            with torch.device("meta"):
                module = cls(*sample.constructor_input.args, **sample.constructor_input.kwargs)
            ids, cdatas = [id(p) for p in module.parameters()], [p._cdata for p in module.parameters()]
            module.to_empty(device="cpu")
            params = list(module.parameters())
            assert all(isinstance(p, nn.Parameter) and p.device.type == "cpu" and p.dtype == dtype for p in params)
            assert all(a != b for a, b in zip([p._cdata for p in params], cdatas))
            same_ids = [a == b for a, b in zip([id(p) for p in params], ids)]
            assert all(same_ids) if swap else not any(same_ids), f"swap={swap}: Parameter identity"
    run(check, entry, impl)

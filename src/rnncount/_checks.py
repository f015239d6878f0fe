"""Argument checks that fail at the call, with the argument's name and the expected vs given value.

The one home of every validation rule: the layers and cells, the config dataclasses (ModelConfig,
TrainConfig, runs.RunOptions) and the command line's argument types all call these. A check named
with name="" says what is wrong without a name ("must be >= 1, got 0"), as argparse wants it after
its own "argument --epochs: "; `shown` is the value as the user typed it, where it differs.

Each raises the exception class torch.nn raises for the same mistake (so code written against
torch.nn catches ours), with a message that names the argument:

    constructor sizes      TypeError (not an int); ValueError (layers: < 1); RuntimeError (cells: < 0)
    dropout                ValueError unless a number in [0, 1]
    input dimensions       ValueError;  input width, time steps, state shape/dtype: RuntimeError
    input dtype != weights ValueError for the layers, RuntimeError for the cells (as torch's); not under
                           autocast, which casts each matmul's operands itself (torch.nn skips it there too)
"""

from __future__ import annotations

import numbers
import os

import torch


def _named(name: str, text: str) -> str:
    return f"{name} {text}" if name else text


def check_positive_int(name: str, value, integral: bool = False) -> int:
    """A layer's size: an int >= 1. integral: any integer type (numpy's too) is taken and made an int, as torch.nn
    takes it for num_layers; otherwise only a Python int (torch.nn's layer sizes, our configs, which go to JSON)."""
    return _check_int(name, value, 1, ValueError, integral)


def check_size(name: str, value) -> int:
    """A cell's size: an integer >= 0, numpy's too (torch.nn's cells take 0 and numpy integers; a negative size
    fails creating the weights)."""
    return _check_int(name, value, 0, RuntimeError, integral=True)


def _check_int(name: str, value, minimum: int, error: type[Exception], integral: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integral else int):
        raise TypeError(_named(name, f"must be an int, got {type(value).__name__}"))
    if value < minimum:
        raise error(_named(name, f"must be >= {minimum}, got {value}"))
    return int(value)


def check_nonnegative_int(name: str, value) -> int:
    """A count of epochs that may be zero (curriculum)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(_named(name, f"must be an int >= 0, got {value}"))
    return value


def check_seed(name: str, value) -> int:
    """A seed: an int in [0, 2**63), what torch.manual_seed and torch.Generator take."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(_named(name, f"must be an int, got {type(value).__name__}"))
    if not 0 <= value < 2**63:
        raise ValueError(_named(name, f"must be in [0, 2**63), got {value}"))
    return value


def check_seed_count(count: int, most: int, shown) -> None:
    """At most `most` seeds (one stack's models) in `shown`."""
    if count > most:
        raise ValueError(f"more than {most} seeds in {shown!r}; one stack holds at most {most} models")


def check_seeds(seeds, most: int, shown=None) -> list[int]:
    """Distinct seeds, each a seed, at most `most` of them (they train as one stack)."""
    shown = list(seeds) if shown is None else shown
    for seed in seeds:
        check_seed("seeds", seed)
    check_seed_count(len(seeds), most, shown)
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise ValueError(f"seed {repeated[0]} is named twice in {shown!r}")
    return list(seeds)


def _check_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(_named(name, f"must be a number, got {type(value).__name__}"))
    return value


# The settings checked below (a bias, a learning rate, a loss weight) end up as float32 numbers in the model or Adam:
# past float32's largest (3.4e38) the first use failed inside torch with an overflow, not a named error
FLOAT32_MAX = torch.finfo(torch.float32).max


def check_finite(name: str, value, shown=None) -> float:
    """A finite number (not inf, not nan) within float32's range."""
    if not abs(_check_number(name, value)) <= FLOAT32_MAX:
        raise ValueError(_named(name, f"must be a finite number, at most {FLOAT32_MAX:.3g} in size (float32), "
                                      f"got {value if shown is None else shown}"))
    return value


def check_nonnegative(name: str, value, shown=None) -> float:
    """A finite number >= 0 (a loss weight, a decay)."""
    if check_finite(name, value, shown) < 0:
        raise ValueError(_named(name, f"must be a number >= 0, got {value if shown is None else shown}"))
    return value


def check_positive(name: str, value, shown=None) -> float:
    """A finite number > 0 (a learning rate, a norm) within float32's range."""
    if not 0 < _check_number(name, value) <= FLOAT32_MAX:
        raise ValueError(_named(name, f"must be a finite number > 0, at most {FLOAT32_MAX:.3g} (float32), "
                                      f"got {value if shown is None else shown}"))
    return value


def check_bool(name: str, value) -> bool:
    """A layer's bias and batch_first: a bool, as torch.nn's RNNs require (TypeError otherwise)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_probability(name: str, value, shown=None) -> float:
    """recurrent_dropout, zoneout: a float in [0, 1) (1 would drop or freeze everything)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(_named(name, f"must be a float in [0, 1), got {type(value).__name__}"))
    if not 0.0 <= value < 1.0:
        raise ValueError(_named(name, f"must be in [0, 1), got {value if shown is None else shown}"))
    return float(value)


def check_dropout(value) -> float:
    """The dropout between layers: a number in [0, 1] (numpy's too), as torch.nn's RNNs take it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"dropout must be a number in [0, 1], got {value!r}")
    return float(value)


def check_input(tensor, input_size: int, batched_dims: int) -> None:
    """`tensor` must have `batched_dims` (batched) or one less (unbatched) dims, and width input_size."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() not in (batched_dims - 1, batched_dims):
        raise ValueError(
            f"input must have {batched_dims - 1} (unbatched) or {batched_dims} (batched) dimensions, "
            f"got shape {tuple(tensor.shape)}"
        )
    if tensor.size(-1) != input_size:
        raise RuntimeError(
            f"input has {tensor.size(-1)} features in its last dimension, expected input_size={input_size} "
            f"(input shape {tuple(tensor.shape)})"
        )


def check_state(name: str, tensor, expected: tuple[int, ...], like: torch.Tensor) -> None:
    """A state tensor must be a tensor of the expected shape, with the input's dtype (but under autocast) and device."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tuple(tensor.shape) != tuple(expected):
        raise RuntimeError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(expected)}")
    if tensor.device != like.device or (tensor.dtype != like.dtype and not _autocast(like)):
        raise RuntimeError(
            f"{name} is {tensor.dtype} on {tensor.device}, expected {like.dtype} on {like.device} like the input"
        )


def check_fits_in_memory(need: int, what: str, advice: str) -> None:
    """ValueError if `need` bytes are more than half the memory free now (Linux; elsewhere no check): refused before
    anything is allocated, rather than a process the system kills for memory, taking others with it."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > free / 2:
        raise ValueError(f"{what} about {need / 2**30:.1f} GiB, more than half the {free / 2**30:.1f} GiB free; "
                         f"{advice}")


def check_dtype(tensor: torch.Tensor, parameter: torch.Tensor, error: type[Exception]) -> None:
    """The input must have the parameters' device, and their dtype unless autocast is on (a mismatch would fail
    deep in a matmul; under autocast every matmul casts its operands, as for torch.nn's RNNs)."""
    if tensor.device != parameter.device or (tensor.dtype != parameter.dtype and not _autocast(tensor)):
        raise error(
            f"input is {tensor.dtype} on {tensor.device} but the parameters are {parameter.dtype} on "
            f"{parameter.device}; convert one to the other (e.g. module.to(input.dtype))"
        )


def _autocast(tensor: torch.Tensor) -> bool:
    """Whether autocast is on for this tensor's device type (torch.autocast, AMP)."""
    return torch.is_autocast_enabled(tensor.device.type)

"""Argument checks that fail at the call, with the argument's name and the expected vs given value."""

from __future__ import annotations

import torch


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_floating(name: str, tensor) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")


def check_input(tensor, input_size: int, batched_dims: int) -> None:
    """`tensor` must be floating, have `batched_dims` (batched) or one less (unbatched) dims, width input_size."""
    check_floating("input", tensor)
    if tensor.dim() not in (batched_dims - 1, batched_dims):
        raise ValueError(
            f"input must have {batched_dims - 1} (unbatched) or {batched_dims} (batched) dimensions, "
            f"got shape {tuple(tensor.shape)}"
        )
    if tensor.size(-1) != input_size:
        raise ValueError(
            f"input has {tensor.size(-1)} features in its last dimension, expected input_size={input_size} "
            f"(input shape {tuple(tensor.shape)})"
        )


def check_state(name: str, tensor, expected: tuple[int, ...], like: torch.Tensor) -> None:
    """A state tensor must be floating, of the expected shape, dtype and device as the input."""
    check_floating(name, tensor)
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(expected)}")
    if tensor.dtype != like.dtype or tensor.device != like.device:
        raise TypeError(
            f"{name} is {tensor.dtype} on {tensor.device}, expected {like.dtype} on {like.device} like the input"
        )


def check_dtype(tensor: torch.Tensor, parameter: torch.Tensor) -> None:
    """The input must have the parameters' dtype and device (a mismatch would fail deep in a matmul)."""
    if tensor.dtype != parameter.dtype or tensor.device != parameter.device:
        raise TypeError(
            f"input is {tensor.dtype} on {tensor.device} but the parameters are {parameter.dtype} on "
            f"{parameter.device}; convert one to the other (e.g. module.to(input.dtype))"
        )

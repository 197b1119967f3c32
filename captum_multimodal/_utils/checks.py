"""Input checks shared by the methods and adapters: clear errors before any hook is placed."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def check_finite(tensors: Iterable[tuple[str, object]]) -> None:
    """Raises ``ValueError`` naming the first floating-point tensor with NaN or Inf."""
    for name, tensor in tensors:
        floating = isinstance(tensor, torch.Tensor) and tensor.is_floating_point()
        if floating and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} contains NaN or Inf values; expected finite numbers")


def check_same_device(model: nn.Module, tensors: Iterable[tuple[str, object]]) -> None:
    """Raises ``ValueError`` when an input tensor is not on the model's device."""
    parameter = next(model.parameters(), None)
    if parameter is None:
        return
    for name, tensor in tensors:
        if isinstance(tensor, torch.Tensor) and tensor.device != parameter.device:
            raise ValueError(
                f"{name} is on {tensor.device} but the model is on {parameter.device}; "
                "move the inputs (or the model) so that both are on one device"
            )


def check_targets(target: torch.Tensor | int | list | tuple | None, classes: int) -> None:
    """Raises ``ValueError`` for class indices outside [0, classes)."""
    if target is None:
        return
    values = torch.as_tensor(target).flatten()
    if values.dtype.is_floating_point or values.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got {values.dtype}")
    if values.numel() and (int(values.min()) < 0 or int(values.max()) >= classes):
        raise ValueError(
            f"target must be class indices in [0, {classes}), got values from "
            f"{int(values.min())} to {int(values.max())}"
        )


def named_inputs(inputs: tuple, additional_forward_args: tuple) -> list[tuple[str, object]]:
    """Names for error messages: ``inputs[i]`` and ``additional_forward_args[j]``."""
    return [(f"inputs[{i}]", x) for i, x in enumerate(inputs)] + [
        (f"additional_forward_args[{j}]", x) for j, x in enumerate(additional_forward_args)
    ]

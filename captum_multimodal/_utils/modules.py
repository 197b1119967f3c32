"""Finding and watching submodules without leaving anything behind on the model."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping

import torch
from torch import nn


def resolve_submodule(model: nn.Module, layer: nn.Module | str, argument: str) -> nn.Module:
    """Returns ``layer`` (a module or a dotted name) after checking it is part of ``model``.

    Raises:
        TypeError: ``layer`` is neither a module nor a string.
        ValueError: ``layer`` names no submodule, or the module is not inside ``model``.
    """
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError as error:
            raise ValueError(
                f"{argument} must name a submodule of {type(model).__name__}, got {layer!r}"
            ) from error
    if not isinstance(layer, nn.Module):
        raise TypeError(
            f"{argument} must be an nn.Module or a dotted submodule name, "
            f"got {type(layer).__name__}"
        )
    if not any(module is layer for module in model.modules()):
        raise ValueError(
            f"{argument} must be a submodule of {type(model).__name__}; the given "
            f"{type(layer).__name__} is not part of it"
        )
    return layer


@contextlib.contextmanager
def record_outputs(
    modules: Mapping[str, nn.Module], as_leaves: Collection[str] = ()
) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Records every output of the given modules while the context is open.

    Yields a dict from each key to the list of that module's outputs, in call order.
    For keys in ``as_leaves`` the module's output is replaced by a detached copy that
    requires grad (same values), so gradients reach it even when the model's
    parameters are frozen. The hooks are removed on exit, also when the body raises.

    Examples:
        >>> layer = nn.Linear(2, 2)
        >>> with record_outputs({"linear": layer}, as_leaves={"linear"}) as outputs:
        ...     _ = layer(torch.zeros(1, 2))
        >>> len(outputs["linear"]), outputs["linear"][0].is_leaf, len(layer._forward_hooks)
        (1, True, 0)
    """
    outputs: dict[str, list[torch.Tensor]] = {key: [] for key in modules}

    def hook(key: str):
        def record(_module, _inputs, output):
            if key in as_leaves:
                if not isinstance(output, torch.Tensor):
                    raise TypeError(f"{key} must output one tensor, got {type(output).__name__}")
                output = output.detach().requires_grad_()
            outputs[key].append(output)
            return output if key in as_leaves else None

        return record

    handles = []
    try:
        for key, module in modules.items():
            handles.append(module.register_forward_hook(hook(key)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; every submodule's own mode restored on exit.

    Explanations are computed in eval mode (dropout and batch statistics would make
    them random and would update running statistics); the caller's modes come back,
    also when the body raises.

    Examples:
        >>> net = nn.Sequential(nn.Dropout(), nn.Linear(2, 2)).train()
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    training = [module for module in model.modules() if module.training]
    for module in training:
        module.training = False
    try:
        yield
    finally:
        for module in training:
            module.training = True

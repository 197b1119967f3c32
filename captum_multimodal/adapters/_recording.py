"""What every attention adapter does around the forward pass."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from captum._utils.common import _format_additional_forward_args, _format_tensor_into_tuples
from torch import nn

from captum_multimodal._utils.checks import check_finite, check_same_device, named_inputs
from captum_multimodal._utils.modules import eval_mode


@contextlib.contextmanager
def explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode, eager attention and gradients on inside; all restored on exit.

    Dropout would corrupt the attention maps (rows no longer sum to one), and
    SDPA/flash attention returns no maps at all; a model that can switch
    (``set_attn_implementation``) runs eagerly for the call and gets its own
    implementation back. Frozen parameters take part in the graph for the call (their
    ``requires_grad`` flags come back; ``.grad`` is never written: only the attention
    maps are differentiated). Every submodule's own train/eval mode is restored.
    """
    frozen = [p for p in model.parameters() if not p.requires_grad]
    with eval_mode(model), torch.enable_grad(), eager_attention(model):
        try:
            for parameter in frozen:  # a frozen model's attention maps must still carry a graph
                parameter.requires_grad_(True)
            yield
        finally:
            for parameter in frozen:
                parameter.requires_grad_(False)


@contextlib.contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Eager attention inside (when the model can switch); its own implementation on exit.

    Examples:
        >>> from transformers import BertConfig, BertModel
        >>> config = BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1,
        ...                     num_attention_heads=2, intermediate_size=8,
        ...                     attn_implementation="sdpa")
        >>> model = BertModel(config)
        >>> with eager_attention(model):
        ...     model.config._attn_implementation
        'eager'
        >>> model.config._attn_implementation
        'sdpa'
    """
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None)
    switch = implementation not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        own = _implementations(config)  # per sub-config: DETR's ResNet backbone has no SDPA
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(own)


def _implementations(config: Any) -> dict:
    """A config's attention implementation and its sub-configs', nested as
    ``set_attn_implementation`` takes them."""
    nested = {"": config._attn_implementation}
    for key in getattr(config, "sub_configs", {}):
        if getattr(config, key, None) is not None:
            nested[key] = _implementations(getattr(config, key))
    return nested


@functools.cache
def forward_signature(module_type: type) -> inspect.Signature:
    """The signature of a module class's ``forward`` without ``self`` (computed once
    per class: ``inspect.signature`` is slow next to a small attention call)."""
    signature = inspect.signature(module_type.forward)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


@contextlib.contextmanager
def attention_calls(modules: Iterable[nn.Module]) -> Iterator[list[tuple[nn.Module, torch.Tensor]]]:
    """Every call of the given attention modules while open, in call order, with its
    probabilities ``output[1]``.

    A pre-hook makes each call return its probabilities (``output_attentions=True``,
    passed by keyword or by position as the module's signature has it; a module without
    that argument must always return ``(output, probabilities, ...)``); a forward hook
    keeps them and hands the caller the output it asked for, so the model's outputs
    are unchanged. The hooks are removed on exit, also when the body raises.

    Examples:
        >>> from transformers import BertConfig
        >>> from transformers.models.visual_bert.modeling_visual_bert import (
        ...     VisualBertSelfAttention)
        >>> config = BertConfig(hidden_size=8, num_attention_heads=2)
        >>> attention = VisualBertSelfAttention(config)
        >>> with attention_calls([attention]) as calls:
        ...     output = attention(torch.randn(1, 3, 8))
        >>> len(output), calls[0][1].shape, len(attention._forward_hooks)
        (1, torch.Size([1, 2, 3, 3]), 0)
    """
    calls: list[tuple[nn.Module, torch.Tensor]] = []
    asked: list[bool] = []  # a stack: declared modules may be nested

    def force(module, args, kwargs):
        signature = forward_signature(type(module))
        if "output_attentions" not in signature.parameters:
            asked.append(True)
            return None
        bound = signature.bind(*args, **kwargs)
        asked.append(bool(bound.arguments.get("output_attentions", False)))
        bound.arguments["output_attentions"] = True
        return bound.args, bound.kwargs

    def keep(module, _args, output):
        calls.append((module, output[1]))
        return output if asked.pop() else output[:1]

    handles = []
    try:
        for module in modules:
            handles.append(module.register_forward_pre_hook(force, with_kwargs=True))
            handles.append(module.register_forward_hook(keep))
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def checked_attentions(attentions: Sequence[torch.Tensor] | None, model: nn.Module) -> list:
    """The attention maps a model returned, or a clear error when it returned none."""
    maps = [a for a in (attentions or ()) if a is not None]
    if not maps:
        raise ValueError(
            f"{type(model).__name__} returned no attention probabilities; it runs an attention "
            "implementation that does not expose them. Load or switch it with "
            'attn_implementation="eager" (e.g. model.set_attn_implementation("eager")).'
        )
    return maps


def batch_mask(mask: torch.Tensor | None, shape: tuple[int, int], name: str, like: torch.Tensor):
    """A (B, S) 0/1 mask, all ones when None; checked against the expected shape."""
    if mask is None:
        return torch.ones(shape, dtype=torch.long, device=like.device)
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"{name} must be a tensor of shape {tuple(shape)}, "
            f"got {getattr(mask, 'shape', type(mask).__name__)}"
        )
    if bool((mask.sum(dim=1) == 0).any()):
        raise ValueError(f"{name} has rows without any real token (all padding)")
    return mask


def text_image_inputs(
    inputs: Any, additional_forward_args: Any, model: nn.Module, max_args: int
) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Checks Captum's ``inputs = (input_ids (B, L), pixel_values (B, C, H, W))`` of a
    text-and-image model (one image per caption) and its further arguments.

    Returns:
        tuple: ``input_ids``, ``pixel_values`` and the additional arguments as a tuple.

    Raises:
        ValueError: Naming the argument that has the wrong count, rank, dtype or batch
            size, that holds NaN/Inf, or lives on another device than ``model``.

    Examples:
        >>> ids, pixels, args = text_image_inputs(
        ...     (torch.tensor([[2, 3]]), torch.rand(1, 3, 4, 4)), None, nn.Linear(1, 1), 1)
        >>> ids.shape, args
        (torch.Size([1, 2]), ())
    """
    inputs = _format_tensor_into_tuples(inputs)
    if len(inputs) != 2:
        raise ValueError(
            f"inputs must be (input_ids, pixel_values), got a tuple of {len(inputs)} tensors"
        )
    input_ids, pixel_values = inputs
    if input_ids.dim() != 2 or input_ids.is_floating_point():
        raise ValueError(
            f"input_ids must be an integer (B, L) tensor, got {tuple(input_ids.shape)} "
            f"{input_ids.dtype}"
        )
    if pixel_values.dim() != 4 or not pixel_values.is_floating_point():
        raise ValueError(
            "pixel_values must be a float (B, C, H, W) tensor, got "
            f"{tuple(pixel_values.shape)} {pixel_values.dtype}"
        )
    if len(pixel_values) != len(input_ids):
        raise ValueError(
            f"pixel_values must hold one image per caption: {len(input_ids)} rows like "
            f"input_ids, got {len(pixel_values)} (repeat an image to pair it with several "
            "captions)"
        )
    args = tuple(_format_additional_forward_args(additional_forward_args) or ())
    if len(args) > max_args:
        raise ValueError(
            f"additional_forward_args must hold at most {max_args} tensors (the masks), got "
            f"{len(args)} values"
        )
    check_finite(named_inputs(inputs, args))
    check_same_device(model, named_inputs(inputs, args))
    return input_ids, pixel_values, args

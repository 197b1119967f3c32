"""What every attention adapter does around the forward pass."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

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
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switch = implementation not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(implementation)


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

"""Hugging Face ViLT: one self-attention stream over [text ; image patches]."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from captum_multimodal.adapters._grid import image_grid
from captum_multimodal.adapters._recording import (
    batch_mask,
    checked_attentions,
    explaining,
    text_image_inputs,
)
from captum_multimodal.attr.relevancy_engine import AttentionEvent, AttentionRecording

_SUPPORTED = ("ViltForQuestionAnswering", "ViltForImageAndTextRetrieval")


class ViltAdapter:
    """Records the attention of an unmodified ``transformers`` ViLT head.

    Inputs: ``inputs = (input_ids (B, T), pixel_values (B, 3, H, W))`` and
    ``additional_forward_args = (attention_mask (B, T), pixel_mask (B, H, W))``, both
    optional (right-padded text; images of different sizes padded to one (H, W), real
    pixels marked in ``pixel_mask``, as ViLT's processor does). Every layer is a
    self-attention of the joint stream [text ; image [CLS] ; patches].

    ViLT embeds the patches in random order (at most ``config.max_image_length`` of
    them): the adapter runs the model's own ``vilt.embeddings.visual_embed``, keeps where
    each token's patch lies, and passes its output as ``image_embeds`` (the logits are
    the model's; no hook is placed). Read-out: text token 0, the pooler's. Outputs:
    text relevance (B, T), [CLS] 0, and one relevance per cell of the batch's patch grid
    (B, gh * gw), row-major, 0 where no patch was seen (padding, not sampled). The grid
    is the patch embedding's output shape for the last batch (:attr:`grid_size`);
    :meth:`image_grid` reshapes and upsamples. The model runs in eval mode and gets
    its own modes back.

    Args:
        model: A ``ViltForQuestionAnswering`` or ``ViltForImageAndTextRetrieval``.

    Examples:
        >>> from transformers import ViltConfig, ViltForQuestionAnswering
        >>> config = ViltConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=8,
        ...     num_labels=4)
        >>> adapter = ViltAdapter(ViltForQuestionAnswering(config))
        >>> from captum_multimodal import CoAttentionRelevancy
        >>> ids, image = torch.tensor([[2, 5, 6, 3]]), torch.rand(1, 3, 32, 48)
        >>> text, patches = CoAttentionRelevancy(adapter).attribute((ids, image))
        >>> text.shape, patches.shape, adapter.image_grid(patches).shape
        (torch.Size([1, 4]), torch.Size([1, 24]), torch.Size([1, 4, 6]))
    """

    def __init__(self, model: nn.Module) -> None:
        if type(model).__name__ not in _SUPPORTED:
            raise TypeError(
                f"model must be one of {', '.join(_SUPPORTED)} (from transformers), "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.grid_size: tuple[int, int] | None = None

    def image_grid(self, image_rel: torch.Tensor, size: tuple | None = None) -> torch.Tensor:
        """``image_rel`` (B, gh * gw) of the last batch as its patch grid (B, gh, gw), or
        bilinearly upsampled to ``size = (H, W)`` (e.g. the image's) as (B, H, W)."""
        if self.grid_size is None:
            raise ValueError("image_grid needs a recorded batch: explain one first")
        return image_grid(image_rel, self.grid_size, size)

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass; yields the recording (see the class docstring for the inputs)."""
        input_ids, pixels, text_mask, pixel_mask = self._check(inputs, additional_forward_args)
        embeddings = self.model.vilt.embeddings
        with explaining(self.model):
            tokens, token_mask, (patch_index, grid) = embeddings.visual_embed(
                pixels, pixel_mask, max_image_length=self.model.config.max_image_length
            )
            output = self.model(
                input_ids=input_ids,
                attention_mask=text_mask,
                image_embeds=tokens,
                pixel_mask=token_mask,
                output_attentions=True,
            )
            maps = checked_attentions(output.attentions, self.model)
            self.grid_size = (int(grid[0]), int(grid[1]))
            length, batch = input_ids.shape[1], len(input_ids)
            seen = token_mask[:, 1:].bool()
            cells = patch_index[..., 0] * self.grid_size[1] + patch_index[..., 1]
            cells = torch.where(seen, cells, grid[0] * grid[1])  # unseen: a spare column
            positions = torch.full((batch, grid[0] * grid[1] + 1), -1, device=cells.device)
            token = torch.arange(cells.shape[1], device=cells.device) + length + 1
            positions = positions.scatter(1, cells, token.expand_as(cells))[:, :-1]
            yield AttentionRecording(
                logits=output.logits,
                events=[AttentionEvent("joint", "joint", a, layer=i) for i, a in enumerate(maps)],
                valid={"joint": torch.cat([text_mask, token_mask.to(text_mask)], dim=1).bool()},
                readout=("joint", torch.zeros_like(input_ids[:, 0])),
                parts={"text": ("joint", slice(0, length)), "image": ("joint", positions)},
            )

    def _check(self, inputs: Any, additional_forward_args: Any) -> tuple:
        input_ids, pixel_values, args = text_image_inputs(
            inputs, additional_forward_args, self.model, max_args=2
        )
        text_mask, pixel_mask = (*args, None, None)[:2]
        text_mask = batch_mask(text_mask, tuple(input_ids.shape), "attention_mask", input_ids)
        image_shape = (len(pixel_values), *pixel_values.shape[2:])
        if pixel_mask is None:
            pixel_mask = torch.ones(image_shape, dtype=torch.long, device=pixel_values.device)
        elif tuple(pixel_mask.shape) != image_shape or not bool(pixel_mask.flatten(1).any(1).all()):
            raise ValueError(
                f"pixel_mask must be a (B, H, W) = {image_shape} 0/1 tensor with real pixels in "
                f"every image, got {tuple(pixel_mask.shape)}"
            )
        return input_ids, pixel_values, text_mask, pixel_mask

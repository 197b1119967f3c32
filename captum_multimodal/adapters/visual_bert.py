"""Hugging Face VisualBERT: one self-attention stream over [text ; visual tokens]."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from captum._utils.common import _format_additional_forward_args, _format_tensor_into_tuples
from torch import nn

from captum_multimodal._utils.checks import check_finite, check_same_device, named_inputs
from captum_multimodal.adapters._recording import batch_mask, checked_attentions, explaining
from captum_multimodal.attr.relevancy_engine import AttentionEvent, AttentionRecording

_SUPPORTED = ("VisualBertForQuestionAnswering", "VisualBertForVisualReasoning")


class VisualBertAdapter:
    """Records the attention of an unmodified ``transformers`` VisualBERT head.

    Inputs: ``inputs = (input_ids (B, T), visual_embeds (B, N, D_v))`` and
    ``additional_forward_args = (attention_mask (B, T), visual_attention_mask (B, N))``
    (both optional, right-padded text). The model sees one sequence
    [text ; visual tokens]; every layer is a self-attention of that joint stream.

    Read-out: ``VisualBertForQuestionAnswering`` reads the text position
    ``attention_mask.sum(1) - 2`` (right padding assumed, as the model does);
    ``VisualBertForVisualReasoning`` reads token 0. Outputs: text relevance (B, T)
    and visual-token relevance (B, N), padding 0.

    Attention is taken from ``output_attentions=True`` (VisualBERT's maps are the
    softmax outputs, in the autograd graph); no hook is placed on the model. The model
    runs in eval mode and gets its own modes back.

    Args:
        model: A ``VisualBertForQuestionAnswering`` or ``VisualBertForVisualReasoning``.

    Examples:
        >>> from transformers import VisualBertConfig, VisualBertForQuestionAnswering
        >>> config = VisualBertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=32, visual_embedding_dim=8, num_labels=4)
        >>> adapter = VisualBertAdapter(VisualBertForQuestionAnswering(config))
        >>> from captum_multimodal import CoAttentionRelevancy
        >>> ids, regions = torch.tensor([[2, 5, 6, 3]]), torch.randn(1, 3, 8)
        >>> text, image = CoAttentionRelevancy(adapter).attribute((ids, regions))
        >>> text.shape, image.shape
        (torch.Size([1, 4]), torch.Size([1, 3]))
    """

    def __init__(self, model: nn.Module) -> None:
        if type(model).__name__ not in _SUPPORTED:
            raise TypeError(
                f"model must be one of {', '.join(_SUPPORTED)} (from transformers), "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.reads_last_text_token = type(model).__name__ == "VisualBertForQuestionAnswering"

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass; yields the recording (see the class docstring for the inputs)."""
        inputs = _format_tensor_into_tuples(inputs)
        if len(inputs) != 2:
            raise ValueError(
                f"inputs must be (input_ids, visual_embeds), got a tuple of {len(inputs)} tensors"
            )
        input_ids, visual_embeds = inputs
        if input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"input_ids must be an int64 (B, T) tensor, got {tuple(input_ids.shape)}"
            )
        if visual_embeds.dim() != 3 or len(visual_embeds) != len(input_ids):
            raise ValueError(
                f"visual_embeds must be (B, N, D) with B = {len(input_ids)} like input_ids, "
                f"got {tuple(visual_embeds.shape)}"
            )
        args = (*(_format_additional_forward_args(additional_forward_args) or ()), None, None)
        given = named_inputs(inputs, args[:-2])
        check_finite(given)
        check_same_device(self.model, given)
        text_mask = batch_mask(args[0], tuple(input_ids.shape), "attention_mask", input_ids)
        visual_mask = batch_mask(
            args[1], tuple(visual_embeds.shape[:2]), "visual_attention_mask", visual_embeds
        )
        with explaining(self.model):
            output = self.model(
                input_ids=input_ids,
                attention_mask=text_mask,
                visual_embeds=visual_embeds,
                visual_attention_mask=visual_mask,
                output_attentions=True,
            )
            maps = checked_attentions(output.attentions, self.model)
            if self.reads_last_text_token:
                readout = text_mask.sum(dim=1) - 2
            else:
                readout = torch.zeros(len(input_ids), dtype=torch.long, device=input_ids.device)
            length = input_ids.shape[1]
            yield AttentionRecording(
                logits=output.logits,
                events=[AttentionEvent("joint", "joint", a, layer=i) for i, a in enumerate(maps)],
                valid={"joint": torch.cat([text_mask, visual_mask], dim=1).bool()},
                readout=("joint", readout),
                parts={
                    "text": ("joint", slice(0, length)),
                    "image": ("joint", slice(length, length + visual_embeds.shape[1])),
                },
            )

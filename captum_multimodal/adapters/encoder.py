"""Any Hugging Face self-attention encoder with a classification head (BERT, ViT, ...)."""

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


class EncoderAdapter:
    """Records the attention of a single-stream ``transformers`` encoder classifier.

    The model is called as ``model(*inputs, *additional_forward_args,
    output_attentions=True)`` and must return ``logits`` and ``attentions``. For text
    models pass ``additional_forward_args=(attention_mask,)``; image models (ViT) take
    ``inputs = pixel_values`` alone. Read-out: token ``readout_index`` (0, the [CLS]
    token, by default). Output: one relevance per token (B, S), without the leading
    [CLS] when ``skip_first=True`` (ViT patches: (B, N_patches)).

    Args:
        model: e.g. ``BertForSequenceClassification``, ``ViTForImageClassification``
            (build ViT with ``attn_implementation="eager"``).
        readout_index (int): The token the classifier reads.
        skip_first (bool): Leave token 0 out of the output.

    Examples:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1,
        ...                     num_attention_heads=2, intermediate_size=32)
        >>> adapter = EncoderAdapter(BertForSequenceClassification(config))
        >>> with adapter.record(torch.tensor([[2, 5, 3]])) as recording:
        ...     len(recording.events)
        1
    """

    def __init__(self, model: nn.Module, readout_index: int = 0, skip_first: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.readout_index = readout_index
        self.skip_first = skip_first

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass; yields the recording."""
        inputs = _format_tensor_into_tuples(inputs)
        args = tuple(_format_additional_forward_args(additional_forward_args) or ())
        check_finite(named_inputs(inputs, args))
        check_same_device(self.model, named_inputs(inputs, args))
        with explaining(self.model):
            output = self.model(*inputs, *args, output_attentions=True)
            maps = checked_attentions(getattr(output, "attentions", None), self.model)
            batch, length = maps[0].shape[0], maps[0].shape[-1]
            mask = args[0] if args and isinstance(args[0], torch.Tensor) else None
            valid = batch_mask(mask, (batch, length), "attention_mask", maps[0]).bool()
            if not 0 <= self.readout_index < length:
                raise ValueError(
                    f"readout_index must be in [0, {length}), got {self.readout_index}"
                )
            readout = torch.full((batch,), self.readout_index, device=maps[0].device)
            yield AttentionRecording(
                logits=output.logits,
                events=[AttentionEvent("tokens", "tokens", a, layer=i) for i, a in enumerate(maps)],
                valid={"tokens": valid},
                readout=("tokens", readout),
                parts={"tokens": ("tokens", slice(1 if self.skip_first else 0, length))},
            )

"""Baseline: attention rollout (Abnar & Zuidema, 2020)."""

from __future__ import annotations

import torch

from captum_multimodal.attr.attention_attribution import AttentionAttribution
from captum_multimodal.attr.raw_attention import only_readout_stream, self_events


class AttentionRollout(AttentionAttribution):
    """Attention rollout: the product over layers of row-normalised (Ā + I) / 2.

    Ā is the head-mean attention of a layer; the residual connection is modelled by
    the identity. The read-out row of the product is the explanation. No gradients.

    Args:
        adapter: A captum_multimodal attention adapter.
        start_layer (int): Layers before it are skipped.

    Example:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> from captum_multimodal.adapters import EncoderAdapter
        >>> config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2,
        ...                     num_attention_heads=2, intermediate_size=32)
        >>> model = BertForSequenceClassification(config).eval()
        >>> AttentionRollout(EncoderAdapter(model)).attribute(torch.tensor([[2, 5, 3]])).shape
        torch.Size([1, 3])
    """

    needs_gradients = False

    def __init__(self, adapter, start_layer: int = 0) -> None:
        super().__init__(adapter)
        self.start_layer = start_layer

    def relevancy(self, recording, grads):
        rollout = None
        for event, _ in self_events(recording, self.start_layer):
            mean = event.probs.detach().mean(dim=1)
            eye = torch.eye(mean.shape[-1], dtype=mean.dtype, device=mean.device)
            layer = (mean + eye) / 2
            layer = layer / layer.sum(dim=-1, keepdim=True)
            rollout = layer if rollout is None else layer @ rollout
        return only_readout_stream(recording, rollout)

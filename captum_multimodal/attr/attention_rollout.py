"""Baseline: attention rollout (Abnar & Zuidema, 2020)."""

from __future__ import annotations

import torch

from captum_multimodal.attr.attention_attribution import AttentionAttribution
from captum_multimodal.attr.raw_attention import (
    last_cross_events,
    readout_relevancy,
    readout_streams,
    self_events,
)
from captum_multimodal.attr.relevancy_engine import AttentionRecording


def rollout(recording: AttentionRecording, stream: str, events: list) -> torch.Tensor:
    """Product of the row-normalised (Ā + I) / 2 of ``events`` in forward order (the
    identity when there are none); (B, S, S) for ``stream``."""
    size = recording.valid[stream].shape[1]
    reference = recording.logits
    eye = torch.eye(size, dtype=reference.dtype, device=reference.device)
    product = eye.expand(len(reference), size, size)
    for event in events:
        layer = (event.probs.detach().mean(dim=1) + eye) / 2
        product = (layer / layer.sum(dim=-1, keepdim=True)) @ product
    return product


class AttentionRollout(AttentionAttribution):
    r"""Attention rollout: the product over layers of row-normalised (Ā + I) / 2.

    Ā is the head-mean attention of a layer; the residual connection is modelled by
    the identity. The read-out row of the product is the explanation. No gradients.

    In a co-attention model (LXMERT) the read-out stream s's tokens get the rollout of
    its self-attentions; another stream q's tokens get, as in Chefer et al.'s bi-modal
    baseline, :math:`\mathrm{roll}_s^\top \bar A^{sq} \mathrm{roll}_q` with
    :math:`\bar A^{sq}` the last cross-attention from s to q and both rollouts taken
    over the self-attentions before it.

    Args:
        adapter (Any): A captum_multimodal attention adapter.
        start_layer (int): Layers before it are skipped.

    Examples:
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
        rows = {}
        for stream in readout_streams(recording):
            own = [event for event, _ in self_events(recording, stream, self.start_layer)]
            cross = {}
            for key, (event, index) in last_cross_events(recording, stream).items():
                before = [e for e in recording.events[:index] if e.layer >= self.start_layer]
                left = rollout(recording, stream, [e for e in before if e.query == e.key == stream])
                right = rollout(recording, key, [e for e in before if e.query == e.key == key])
                cross[key] = left.transpose(1, 2) @ event.probs.detach().mean(dim=1) @ right
            rows[stream] = (rollout(recording, stream, own), cross)
        return readout_relevancy(recording, rows)

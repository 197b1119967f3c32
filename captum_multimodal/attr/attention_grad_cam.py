"""Baseline: Grad-CAM on the last attention layer (heads weighted by their gradients)."""

from __future__ import annotations

import torch

from captum_multimodal.attr.attention_attribution import AttentionAttribution
from captum_multimodal.attr.raw_attention import (
    last_cross_events,
    readout_relevancy,
    readout_streams,
    self_events,
)


def grad_cam(probs: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
    """max(0, mean_h w_h A_h) with w_h the mean of ∂y/∂A_h over the map; (B, S_q, S_k)."""
    if grad is None:
        return probs.new_zeros(probs[:, 0].shape)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    return (weights * probs).mean(dim=1).clamp(min=0)


class AttentionGradCAM(AttentionAttribution):
    """Grad-CAM for attention: the last layer's heads weighted by their mean gradient.

    w_h = mean over the map of ∂y/∂A_h; relevancy = max(0, mean_h w_h A_h); the
    read-out row is the explanation, as in the baselines of Chefer et al. In a
    co-attention model (LXMERT) the read-out stream's last self-attention gives its own
    tokens and its last cross-attention to another stream gives that stream's tokens.

    Examples:
        >>> import torch
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> from captum_multimodal.adapters import EncoderAdapter
        >>> config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2,
        ...                     num_attention_heads=2, intermediate_size=32)
        >>> model = BertForSequenceClassification(config).eval()
        >>> AttentionGradCAM(EncoderAdapter(model)).attribute(torch.tensor([[2, 5, 3]])).shape
        torch.Size([1, 3])
    """

    def relevancy(self, recording, grads):
        rows = {}
        for stream in readout_streams(recording):
            event, index = self_events(recording, stream)[-1]
            cross = {
                key: grad_cam(cross_event.probs.detach(), grads[i])
                for key, (cross_event, i) in last_cross_events(recording, stream).items()
            }
            rows[stream] = (grad_cam(event.probs.detach(), grads[index]), cross)
        return readout_relevancy(recording, rows)

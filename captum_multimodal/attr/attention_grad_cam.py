"""Baseline: Grad-CAM on the last attention layer (heads weighted by their gradients)."""

from __future__ import annotations

from captum_multimodal.attr.attention_attribution import AttentionAttribution
from captum_multimodal.attr.raw_attention import only_readout_stream, self_events


class AttentionGradCAM(AttentionAttribution):
    """Grad-CAM for attention: the last layer's heads weighted by their mean gradient.

    w_h = mean over the map of ∂y/∂A_h; relevancy = max(0, mean_h w_h A_h); the
    read-out row is the explanation, as in the baselines of Chefer et al.

    Example:
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
        event, index = self_events(recording)[-1]
        probs, grad = event.probs.detach(), grads[index]
        if grad is None:
            return only_readout_stream(recording, probs.new_zeros(probs[:, 0].shape))
        weights = grad.mean(dim=(2, 3), keepdim=True)
        return only_readout_stream(recording, (weights * probs).mean(dim=1).clamp(min=0))

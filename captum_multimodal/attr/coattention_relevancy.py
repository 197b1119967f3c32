"""Relevancy propagation through self-, co- and cross-attention (Chefer, Gur & Wolf)."""

from __future__ import annotations

from typing import Any

import torch

from captum_multimodal.attr.attention_attribution import AttentionAttribution
from captum_multimodal.attr.relevancy_engine import AttentionRecording, propagate


class CoAttentionRelevancy(AttentionAttribution):
    r"""Generic attention-model explainability for bi-modal transformers (ICCV 2021).

    Relevancy matrices start as identities within a stream and zeros across streams.
    Every attention map A of the forward pass, weighted by its gradient,
    :math:`\bar A = \mathbb{E}_h[(\nabla A \odot A)^+]`, updates them: a
    self-attention of stream s adds :math:`\bar A R^{sx}` to every :math:`R^{sx}`; a
    cross-attention from s to q adds :math:`\bar R^{ss\top} \bar A \bar R^{qq}` to
    :math:`R^{sq}` (:math:`\bar R` = identity plus the row-normalised residual) and
    :math:`\bar A R^{qs}` to :math:`R^{ss}`, both from the matrices before that layer.
    The row of the token the model's head reads, with its own entry zeroed, is the
    explanation. One forward and one backward for the whole batch; padding gets 0.

    The rules are written once against recorded attention events; the adapter
    (``VisualBertAdapter``, ``EncoderAdapter``, ...) records them on the unmodified
    model and says which row the head reads.

    Args:
        adapter: A captum_multimodal attention adapter.
        normalize_residual (bool): Row-normalise the residual inside the cross rule.
        contextualize_cross (bool): False adds Ā alone in the cross rule (ablation).
        aggregate (bool): False replaces instead of accumulating, R = Ā R (ablation).
        start_layer (int): Layers before it are skipped; the paper uses all layers.

    Examples:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> from captum_multimodal.adapters import EncoderAdapter
        >>> config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2,
        ...                     num_attention_heads=2, intermediate_size=32)
        >>> model = BertForSequenceClassification(config).eval()
        >>> explainer = CoAttentionRelevancy(EncoderAdapter(model))
        >>> ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
        >>> explainer.attribute(ids, additional_forward_args=((ids != 0).long(),)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        adapter: Any,
        normalize_residual: bool = True,
        contextualize_cross: bool = True,
        aggregate: bool = True,
        start_layer: int = 0,
    ) -> None:
        super().__init__(adapter)
        if isinstance(start_layer, bool) or not isinstance(start_layer, int) or start_layer < 0:
            raise ValueError(f"start_layer must be a non-negative int, got {start_layer!r}")
        self.options = {
            "normalize": bool(normalize_residual),
            "contextualize_cross": bool(contextualize_cross),
            "aggregate": bool(aggregate),
            "start_layer": start_layer,
        }

    def relevancy(
        self, recording: AttentionRecording, grads: list[torch.Tensor | None]
    ) -> dict[tuple[str, str], torch.Tensor]:
        return propagate(recording, grads, **self.options)

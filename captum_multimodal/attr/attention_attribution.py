"""Shared frame of the attention-based methods: record through an adapter, read out."""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.common import _select_targets
from captum._utils.typing import TargetType
from captum.attr._utils.attribution import GradientAttribution
from captum.log import log_usage

from captum_multimodal._utils.checks import check_targets
from captum_multimodal.attr.relevancy_engine import AttentionRecording, read_out


class AttentionAttribution(GradientAttribution):
    """Base of :class:`CoAttentionRelevancy` and the attention baselines.

    An adapter (e.g. ``VisualBertAdapter``) records the attention maps of one forward
    pass; a subclass turns them into relevancy matrices with :meth:`relevancy`; the
    read-out row of the model's head is returned, split by modality.

    Args:
        adapter: Has ``model`` and ``record(inputs, additional_forward_args)``, a
            context manager yielding an :class:`AttentionRecording`.
    """

    def __init__(self, adapter: Any) -> None:
        if not hasattr(adapter, "record") or not hasattr(adapter, "model"):
            raise TypeError(
                "adapter must be a captum_multimodal adapter with `model` and `record` "
                f"(e.g. VisualBertAdapter(model)), got {type(adapter).__name__}"
            )
        GradientAttribution.__init__(self, adapter.model)
        self.adapter = adapter

    def relevancy(
        self, recording: AttentionRecording, grads: list[torch.Tensor | None]
    ) -> dict[tuple[str, str], torch.Tensor]:
        """Relevancy matrices from the recorded events and their gradients."""
        raise NotImplementedError

    needs_gradients = True

    @log_usage()
    def attribute(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        target: TargetType = None,
        additional_forward_args: Any = None,
        return_matrices: bool = False,
    ) -> Any:
        """Relevance of every token for the target logit of each sample.

        Args:
            inputs: The model inputs, in the adapter's documented order.
            target: Captum-style targets (int, list, (B,) tensor); None explains
                each sample's argmax.
            additional_forward_args: Further inputs, in the adapter's order.
            return_matrices (bool): Also return the relevancy matrices
                ``{(query stream, key stream): (B, S_q, S_k)}``.

        Returns:
            One tensor per part of the adapter (VisualBERT: ``(text_rel (B, T),
            image_rel (B, N))``), padding 0; a single tensor when the adapter has one
            part. With ``return_matrices``: ``(that, matrices)``.
        """
        with self.adapter.record(inputs, additional_forward_args) as recording:
            grads: list[torch.Tensor | None] = [None] * len(recording.events)
            if self.needs_gradients:
                logits = recording.logits
                if target is None:
                    target = logits.argmax(dim=1)
                check_targets(target, logits.shape[1])
                selected = _select_targets(logits, target)
                grads = list(
                    torch.autograd.grad(
                        selected.sum(), [e.probs for e in recording.events], allow_unused=True
                    )
                )
            matrices = self.relevancy(recording, grads)
            parts = read_out(recording, matrices)
        result = tuple(value.detach() for value in parts.values())
        result = result[0] if len(result) == 1 else result
        if return_matrices:
            return result, {key: value.detach() for key, value in matrices.items()}
        return result

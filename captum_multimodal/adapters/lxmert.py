"""Hugging Face LXMERT: a language and a vision stream joined by co-attention layers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from captum._utils.common import _format_additional_forward_args, _format_tensor_into_tuples
from torch import nn

from captum_multimodal._utils.checks import check_finite, check_same_device, named_inputs
from captum_multimodal.adapters._recording import attention_calls, batch_mask, explaining
from captum_multimodal.attr.relevancy_engine import AttentionEvent, AttentionRecording

_OUTPUTS = {
    "LxmertModel": ("pooled_output",),
    "LxmertForQuestionAnswering": ("question_answering_score",),
    "LxmertForPreTraining": ("question_answering_score", "cross_relationship_score"),
}


class LxmertAdapter:
    """Records every attention map of an unmodified ``transformers`` LXMERT.

    Inputs: ``inputs = (input_ids (B, T), visual_feats (B, N, D_feat), visual_pos (B, N,
    D_pos))`` and ``additional_forward_args = (attention_mask (B, T),
    visual_attention_mask (B, N))``, both optional (right-padded text; any boxes may be
    padding).

    Streams ``"text"`` and ``"image"``. Events, in the order of the forward pass: each
    language layer (text self-attention), each object-relationship layer (image
    self-attention), then per cross-modality layer both cross directions (language to
    vision, vision to language; one ``group``, so both update from the matrices before
    the layer), then the text and the image self-attention of that layer. The model
    returns only the language-to-vision maps; the vision-to-language direction is the
    second call of the shared ``visual_attention`` module, and the self-attentions of
    the cross layers are not returned at all, so the maps are recorded with hooks on
    every ``LxmertAttention`` (removed before the recording is handed over, also when
    the forward raises); the model's outputs are unchanged. ``layer`` numbers: language
    layer ``i`` is ``i``, object-relationship layer ``j`` is ``j``, cross layer ``k`` is
    ``max(l_layers, r_layers) + k``.

    Read-out: the language [CLS] row (LXMERT's pooler reads text token 0). Outputs:
    text relevance (B, T), the [CLS] entry 0, and one relevance per box (B, N);
    padding 0. Maps that cannot reach the target (in the QA head the last cross
    layer's vision side) get no gradient and contribute nothing.

    Explained output (``output``): ``LxmertForQuestionAnswering``:
    ``question_answering_score``; ``LxmertForPreTraining``: ``question_answering_score``
    when ``config.task_qa`` (the answer logits), else ``cross_relationship_score``
    (image-text match, 2 logits); ``LxmertModel``: ``pooled_output`` (the target picks a
    dimension of the pooled [CLS] feature).

    Args:
        model: An ``LxmertModel``, ``LxmertForQuestionAnswering`` or
            ``LxmertForPreTraining``.
        output (str, optional): The output field whose logits are explained, one of
            the above for the model's class.

    Examples:
        >>> from transformers import LxmertConfig, LxmertForQuestionAnswering
        >>> config = LxmertConfig(vocab_size=30, hidden_size=16, num_attention_heads=2,
        ...     intermediate_size=32, l_layers=1, r_layers=1, x_layers=1,
        ...     visual_feat_dim=8, num_qa_labels=4)
        >>> adapter = LxmertAdapter(LxmertForQuestionAnswering(config))
        >>> from captum_multimodal import CoAttentionRelevancy
        >>> ids, feats = torch.tensor([[2, 5, 6, 3]]), torch.randn(1, 3, 8)
        >>> boxes = torch.rand(1, 3, 4)
        >>> text, image = CoAttentionRelevancy(adapter).attribute((ids, feats, boxes))
        >>> text.shape, image.shape
        (torch.Size([1, 4]), torch.Size([1, 3]))
    """

    def __init__(self, model: nn.Module, output: str | None = None) -> None:
        name = type(model).__name__
        if name not in _OUTPUTS:
            raise TypeError(
                f"model must be one of {', '.join(_OUTPUTS)} (from transformers), got {name}"
            )
        if output is None:
            qa = name != "LxmertForPreTraining" or model.config.task_qa
            output = _OUTPUTS[name][0] if qa else "cross_relationship_score"
        if output not in _OUTPUTS[name]:
            raise ValueError(f"output must be one of {_OUTPUTS[name]} for {name}, got {output!r}")
        self.model = model
        self.output = output
        self.encoder = model.encoder if name == "LxmertModel" else model.lxmert.encoder
        self.attention = [
            m for m in self.encoder.modules() if type(m).__name__ == "LxmertAttention"
        ]

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass; yields the recording (see the class docstring for the inputs)."""
        inputs = _format_tensor_into_tuples(inputs)
        if len(inputs) != 3:
            raise ValueError(
                "inputs must be (input_ids, visual_feats, visual_pos), "
                f"got a tuple of {len(inputs)} tensors"
            )
        input_ids, feats, boxes = inputs
        self._check_shapes(input_ids, feats, boxes)
        args = (*(_format_additional_forward_args(additional_forward_args) or ()), None, None)
        given = named_inputs(inputs, args[:-2])
        check_finite(given)
        check_same_device(self.model, given)
        text_mask = batch_mask(args[0], tuple(input_ids.shape), "attention_mask", input_ids)
        box_mask = batch_mask(args[1], tuple(feats.shape[:2]), "visual_attention_mask", feats)
        with explaining(self.model):
            with self._recorded_attention() as maps:
                output = self.model(
                    input_ids=input_ids,
                    visual_feats=feats,
                    visual_pos=boxes,
                    attention_mask=text_mask,
                    visual_attention_mask=box_mask,
                )
            yield AttentionRecording(
                logits=getattr(output, self.output),
                events=self._events(maps),
                valid={"text": text_mask.bool(), "image": box_mask.bool()},
                readout=("text", torch.zeros_like(input_ids[:, 0])),
                parts={
                    "text": ("text", slice(0, input_ids.shape[1])),
                    "image": ("image", slice(0, feats.shape[1])),
                },
            )

    def _check_shapes(self, input_ids, feats, boxes) -> None:
        config = self.model.config
        if input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"input_ids must be an int64 (B, T) tensor, got {tuple(input_ids.shape)} "
                f"{input_ids.dtype}"
            )
        batch = len(input_ids)
        if feats.dim() != 3 or len(feats) != batch or feats.shape[2] != config.visual_feat_dim:
            raise ValueError(
                f"visual_feats must be (B, N, {config.visual_feat_dim}) with B = {batch} like "
                f"input_ids, got {tuple(feats.shape)}"
            )
        if boxes.shape != (*feats.shape[:2], config.visual_pos_dim):
            raise ValueError(
                f"visual_pos must be (B, N, {config.visual_pos_dim}) = "
                f"{(*feats.shape[:2], config.visual_pos_dim)} like visual_feats, "
                f"got {tuple(boxes.shape)}"
            )

    @contextlib.contextmanager
    def _recorded_attention(self) -> Iterator[dict[nn.Module, list[torch.Tensor]]]:
        """The probabilities of every ``LxmertAttention`` call, per module in call order
        (hooks from :func:`attention_calls`); filled when the forward pass is done."""
        maps: dict[nn.Module, list[torch.Tensor]] = {module: [] for module in self.attention}
        with attention_calls(self.attention) as calls:
            yield maps
        for module, probs in calls:
            maps[module].append(probs)

    def _events(self, maps: dict[nn.Module, list[torch.Tensor]]) -> list[AttentionEvent]:
        encoder = self.encoder

        def calls(module: nn.Module, expected: int) -> list[torch.Tensor]:
            if len(maps[module]) != expected:
                raise RuntimeError(
                    f"expected {expected} call(s) of an LxmertAttention module per forward, "
                    f"recorded {len(maps[module])}; the model's forward differs from "
                    "transformers' LXMERT"
                )
            return maps[module]

        events = [
            AttentionEvent("text", "text", calls(layer.attention.self, 1)[0], layer=i)
            for i, layer in enumerate(encoder.layer)
        ]
        events += [
            AttentionEvent("image", "image", calls(layer.attention.self, 1)[0], layer=j)
            for j, layer in enumerate(encoder.r_layers)
        ]
        first = max(len(encoder.layer), len(encoder.r_layers))
        for k, x_layer in enumerate(encoder.x_layers):
            # LxmertXLayer.cross_att calls the shared module language -> vision first
            to_image, to_text = calls(x_layer.visual_attention.att, 2)
            layer = first + k
            events += [
                AttentionEvent("text", "image", to_image, layer=layer, group=k),
                AttentionEvent("image", "text", to_text, layer=layer, group=k),
                AttentionEvent("text", "text", calls(x_layer.lang_self_att.self, 1)[0], layer),
                AttentionEvent("image", "image", calls(x_layer.visn_self_att.self, 1)[0], layer),
            ]
        return events

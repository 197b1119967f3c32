"""Hugging Face DETR: an encoder over image features and a decoder of object queries."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from captum._utils.common import _format_additional_forward_args, _format_tensor_into_tuples
from torch import nn

from captum_multimodal._utils.checks import check_finite, check_same_device, named_inputs
from captum_multimodal._utils.modules import record_outputs
from captum_multimodal.adapters._grid import image_grid
from captum_multimodal.adapters._recording import checked_attentions, explaining
from captum_multimodal.attr.relevancy_engine import AttentionEvent, AttentionRecording


class DetrAdapter:
    """Records every attention map of an unmodified ``DetrForObjectDetection``.

    Inputs: ``inputs = pixel_values (B, 3, H, W)``, ``additional_forward_args =
    (pixel_mask (B, H, W), query)``, both optional: ``pixel_mask`` marks real pixels (1)
    and padding (0); ``query`` (int or (B,) tensor) picks the object query explained per
    sample, None each sample's most confident one (:meth:`confident_queries`).

    Streams ``"image"`` (the backbone's feature cells, row-major) and ``"queries"``.
    Events: each encoder self-attention, then per decoder layer the queries'
    self-attention and their cross-attention to the image, ``one_way`` (Eq. 10 only: the
    encoder never attends to queries). Explained logits: the chosen query's class logits
    without "no object" (B, num_labels); ``target=None`` takes its most likely class.
    Output: one relevance per feature cell (B, h * w), padding 0; :meth:`image_grid`
    reshapes it to the last batch's grid (``grid_size``) or upsamples it to the image.
    SDPA (DETR's default) computes no maps: the model runs eagerly for the call and gets
    its implementation back. Maps are recorded by hooks that live only during the call.

    Args:
        model: A ``transformers.DetrForObjectDetection``.

    Examples:
        >>> from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig
        >>> from captum_multimodal import CoAttentionRelevancy
        >>> backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
        ...                         layer_type="basic", out_features=["stage2"])
        >>> config = DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False,
        ...     backbone_config=backbone, d_model=16, encoder_layers=1, decoder_layers=1,
        ...     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        ...     decoder_ffn_dim=32, num_queries=5, num_labels=3)
        >>> adapter = DetrAdapter(DetrForObjectDetection(config))
        >>> image = CoAttentionRelevancy(adapter).attribute(torch.rand(2, 3, 64, 48))
        >>> image.shape, adapter.grid_size, adapter.image_grid(image, size=(64, 48)).shape
        (torch.Size([2, 48]), (8, 6), torch.Size([2, 64, 48]))
    """

    def __init__(self, model: nn.Module) -> None:
        if type(model).__name__ != "DetrForObjectDetection":
            raise TypeError(
                f"model must be a transformers DetrForObjectDetection, got {type(model).__name__}"
            )
        self.model = model
        self.grid_size: tuple[int, int] | None = None

    def image_grid(self, image_rel: torch.Tensor, size=None) -> torch.Tensor:
        """``image_rel`` (B, h * w) as the feature grid (B, h, w) of the last recorded
        batch, or upsampled to ``size = (H, W)`` (e.g. the image's)."""
        if self.grid_size is None:
            raise ValueError("image_grid needs a recorded batch first (call attribute)")
        return image_grid(image_rel, self.grid_size, size)

    @staticmethod
    def confident_queries(logits: torch.Tensor) -> torch.Tensor:
        """(B,) query with the highest probability of a real class, from DETR's logits
        (B, num_queries, num_labels + 1), "no object" last."""
        return logits.softmax(dim=-1)[..., :-1].amax(dim=-1).argmax(dim=1)

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass; yields the recording (see the class docstring for the inputs)."""
        pixel_values, pixel_mask, query = self._check(inputs, additional_forward_args)
        detr = self.model.model
        sites = {
            ("image", "image", i): layer.self_attn for i, layer in enumerate(detr.encoder.layers)
        }
        for j, layer in enumerate(detr.decoder.layers):
            sites["queries", "queries", j] = layer.self_attn
            sites["queries", "image", j] = layer.encoder_attn
        with explaining(self.model), record_outputs({**sites, "grid": detr.backbone}) as outputs:
            logits = self.model(pixel_values=pixel_values, pixel_mask=pixel_mask).logits
            maps = {site: outputs[site][0][1] for site in sites}
            if any(a is None for a in maps.values()):  # a fused kernel that could not switch
                checked_attentions(None, self.model)
            grid_mask = outputs["grid"][0][-1][1]  # the model's own mask of feature cells
            self.grid_size = tuple(grid_mask.shape[1:])
            rows = torch.arange(len(logits), device=logits.device)
            if query is None:
                query = self.confident_queries(logits.detach())
            query = torch.as_tensor(query, device=logits.device).expand(len(logits))
            yield AttentionRecording(
                logits=logits[rows, query, :-1],
                events=[
                    AttentionEvent(query_stream, key, a, layer, one_way=query_stream != key)
                    for (query_stream, key, layer), a in maps.items()
                ],
                valid={
                    "image": grid_mask.flatten(1),
                    "queries": torch.ones_like(logits[..., 0], dtype=torch.bool),
                },
                readout=("queries", query),
                parts={"image": ("image", slice(0, grid_mask[0].numel()))},
            )

    def _check(self, inputs: Any, additional_forward_args: Any) -> tuple:
        inputs = _format_tensor_into_tuples(inputs)
        pixel_values = inputs[0]
        if len(inputs) != 1 or pixel_values.dim() != 4 or not pixel_values.is_floating_point():
            raise ValueError("inputs must be pixel_values, one float (B, 3, H, W) tensor")
        args = (*(_format_additional_forward_args(additional_forward_args) or ()), None, None)
        if len(args) > 4:
            raise ValueError("additional_forward_args must be (pixel_mask, query)")
        pixel_mask, query = args[:2]
        check_finite(named_inputs(inputs, args[:2]))
        check_same_device(self.model, named_inputs(inputs, args[:2]))
        batch, _, height, width = pixel_values.shape
        if pixel_mask is not None and (
            not isinstance(pixel_mask, torch.Tensor)
            or tuple(pixel_mask.shape) != (batch, height, width)
            or not bool(pixel_mask.flatten(1).any(dim=1).all())
        ):
            raise ValueError(
                f"pixel_mask must be a (B, H, W) = {(batch, height, width)} 0/1 tensor with real "
                f"pixels in every image, got {getattr(pixel_mask, 'shape', pixel_mask)!r}"
            )
        queries, values = (
            self.model.config.num_queries,
            torch.as_tensor(0 if query is None else query),
        )
        if values.is_floating_point() or values.dim() > 1 or values.numel() not in (1, batch):
            raise ValueError(f"query must be an int or a ({batch},) integer tensor, got {query!r}")
        if not bool(((values >= 0) & (values < queries)).all()):
            raise ValueError(f"query must be in [0, {queries}), got {query!r}")
        return pixel_values, pixel_mask, query

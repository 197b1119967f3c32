"""Hugging Face BLIP image-text matching: a vision tower and a text encoder that
cross-attends to the image tokens in every layer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from captum_multimodal._utils.modules import record_outputs
from captum_multimodal.adapters._grid import image_grid
from captum_multimodal.adapters._recording import batch_mask, explaining, text_image_inputs
from captum_multimodal.attr.relevancy_engine import AttentionEvent, AttentionRecording


class BlipItmAdapter:
    """Records every attention map of an unmodified ``BlipForImageTextRetrieval``.

    Inputs: ``inputs = (input_ids (B, L), pixel_values (B, 3, H, W))`` and
    ``additional_forward_args = (attention_mask (B, L),)`` (optional, right-padded text);
    row b of the captions is paired with row b of the images.

    ``use_itm_head=True`` (default): the explained logits are the ITM head's (B, 2),
    index 1 = "match". Events: each vision layer's self-attention (stream ``"image"``,
    [CLS] + patches), then per text layer its self-attention (``"text"``) and its
    cross-attention from text to image tokens, marked ``one_way`` (image tokens never
    attend to text, so the text self-relevancy gets no update from it). Read-out: text
    token 0, the row the ITM head reads. ``use_itm_head=False``: the cosine path, which
    is the CLIP case (two towers, no cross-attention): the logit (B, 1) is each pair's
    cosine (the diagonal of the model's ``itm_score``); text is read at text token 0
    and the image at the vision [CLS] token, as the model's projections do.

    Outputs: ``text_rel`` (B, L), padding 0; ``image_rel`` (B, N_patches), row-major
    (:meth:`image_grid` reshapes or upsamples it). BLIP's attention is always eager; the
    maps are recorded by forward hooks that live only during the call (eval mode inside).

    Args:
        model: A ``transformers.BlipForImageTextRetrieval``.
        use_itm_head (bool): Explain the ITM head (True) or the cosine similarity.

    Examples:
        >>> from transformers import BlipConfig, BlipForImageTextRetrieval
        >>> from captum_multimodal import CoAttentionRelevancy
        >>> config = BlipConfig(
        ...     text_config={"vocab_size": 20, "hidden_size": 16, "num_hidden_layers": 1,
        ...                  "num_attention_heads": 2, "intermediate_size": 32,
        ...                  "bos_token_id": 1, "sep_token_id": 2, "pad_token_id": 0},
        ...     vision_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        ...                    "intermediate_size": 32, "image_size": 16, "patch_size": 8})
        >>> adapter = BlipItmAdapter(BlipForImageTextRetrieval(config))
        >>> ids = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
        >>> text, image = CoAttentionRelevancy(adapter).attribute(
        ...     (ids, torch.rand(2, 3, 16, 16)), target=1,
        ...     additional_forward_args=((ids != 0).long(),))
        >>> text.shape, adapter.image_grid(image).shape
        (torch.Size([2, 4]), torch.Size([2, 2, 2]))
    """

    def __init__(self, model: nn.Module, use_itm_head: bool = True) -> None:
        if type(model).__name__ != "BlipForImageTextRetrieval":
            raise TypeError(
                "model must be a transformers BlipForImageTextRetrieval, "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.use_itm_head = bool(use_itm_head)
        vision = model.config.vision_config
        self.grid_size = (vision.image_size // vision.patch_size,) * 2

    def image_grid(self, image_rel: torch.Tensor, size=None) -> torch.Tensor:
        """``image_rel`` (B, N_patches) as the patch grid (B, gh, gw), or upsampled to
        ``size = (H, W)``."""
        return image_grid(image_rel, self.grid_size, size)

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass of all pairs; yields the recording (see the class docstring)."""
        input_ids, pixel_values, mask = self._check(inputs, additional_forward_args)
        sites = {
            ("image", "image", i): x.self_attn
            for i, x in enumerate(self.model.vision_model.encoder.layers)
        }
        for k, layer in enumerate(self.model.text_encoder.encoder.layer):
            sites["text", "text", k] = layer.attention.self
            if self.use_itm_head:
                sites["text", "image", k] = layer.crossattention.self
        with explaining(self.model), record_outputs(sites) as outputs:
            output = self.model(
                input_ids=input_ids,
                pixel_values=pixel_values,
                attention_mask=mask,
                use_itm_head=self.use_itm_head,
            )
            events = [
                AttentionEvent(query, key, calls[0][1], layer, one_way=query != key)
                for (query, key, layer), calls in outputs.items()
            ]
            first = torch.zeros_like(input_ids[:, 0])
            tokens = events[0].probs.shape[-1]  # vision [CLS] and the patches
            score = output.itm_score
            yield AttentionRecording(
                logits=score if self.use_itm_head else score.diagonal()[:, None],
                events=events,
                valid={
                    "text": mask.bool(),
                    "image": torch.ones_like(mask[:, :1], dtype=torch.bool).expand(-1, tokens),
                },
                readout=("text", first),
                parts={
                    "text": ("text", slice(0, input_ids.shape[1])),
                    "image": ("image", slice(1, tokens)),
                },
                part_readouts={} if self.use_itm_head else {"image": ("image", first)},
            )

    def _check(self, inputs: Any, additional_forward_args: Any) -> tuple:
        input_ids, pixel_values, args = text_image_inputs(
            inputs, additional_forward_args, self.model, max_args=1
        )
        mask = batch_mask(args[0] if args else None, input_ids.shape, "attention_mask", input_ids)
        if not bool(mask[:, 0].all()):
            raise ValueError("attention_mask must mark token 0 of every row as real (read-out)")
        return input_ids, pixel_values, mask

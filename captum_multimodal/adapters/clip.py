"""Hugging Face CLIP: two self-attention towers joined by a cosine similarity."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from captum_multimodal._utils.modules import record_outputs
from captum_multimodal.adapters._grid import image_grid
from captum_multimodal.adapters._recording import (
    batch_mask,
    checked_attentions,
    eager_attention,
    explaining,
    text_image_inputs,
)
from captum_multimodal.attr.relevancy_engine import AttentionEvent, AttentionRecording
from captum_multimodal.nn import Hadamard


class Normalize(nn.Module):
    """L2 normalisation over the last dimension (CLIP's embedding normalisation).

    Examples:
        >>> Normalize()(torch.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
    """

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return embedding / embedding.norm(dim=-1, keepdim=True)


class PatchGrid(nn.Module):
    """Patch tokens (B, 1 + gh * gw, C), [CLS] first, to the grid (B, C, gh, gw).

    Examples:
        >>> PatchGrid(2, 3)(torch.zeros(5, 7, 16)).shape
        torch.Size([5, 16, 2, 3])
    """

    def __init__(self, rows: int, columns: int) -> None:
        super().__init__()
        self.rows, self.columns = rows, columns

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, 1:].transpose(1, 2)
        return patches.reshape(len(tokens), tokens.shape[2], self.rows, self.columns)


class ClipPairScore(nn.Module):
    """Scores each (caption, image) pair of a batch with an unmodified ``CLIPModel``.

    ``forward(input_ids, pixel_values, attention_mask=None)`` returns the scaled cosine
    similarity of row b's text with row b's image, ``logit_scale.exp() * sum(Q o V)``,
    as (B, 1): the diagonal of the model's ``logits_per_image`` (one output column, so
    Captum's ``target=None`` or ``target=0`` select it). Its submodules name the sites
    the Hadamard methods read: ``textual`` outputs Q, the normalised text embedding
    (B, P); ``visual`` outputs V, the normalised image embedding; ``fusion`` outputs
    F = Q o V; ``patch_grid`` outputs the patch tokens entering the last vision layer's
    attention (the output of its ``layer_norm1``) as a (B, C, gh, gw) grid. The grid
    is spliced back into the forward pass by a hook that lives only during the call,
    so gradients and Grad-CAM read it as a layer of the model; the values are CLIP's.
    The text tower runs with eager attention for the call (a model on SDPA, CLIP's
    default, gets its implementation back): PyTorch's fused attention kernels cannot be
    differentiated twice, which the question sensitivity of
    :class:`~captum_multimodal.QuestionMaskedGradCAM` does through the text tower. The
    vision tower runs as configured.

    Args:
        model: A ``transformers.CLIPModel``; it is not modified.

    Examples:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> config = CLIPConfig(
        ...     text_config={"vocab_size": 20, "hidden_size": 16, "intermediate_size": 32,
        ...                  "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": 3},
        ...     vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        ...                    "num_attention_heads": 2, "image_size": 16, "patch_size": 8},
        ...     projection_dim=8)
        >>> score = ClipPairScore(CLIPModel(config).eval())
        >>> score(torch.tensor([[2, 5, 3]]), torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 1])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.clip = model
        vision = model.config.vision_config
        side = vision.image_size // vision.patch_size
        self.textual = Normalize()
        self.visual = Normalize()
        self.fusion = Hadamard()
        self.patch_grid = PatchGrid(side, side)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        clip = self.clip

        def through_grid(_module, _inputs, tokens):
            patches = self.patch_grid(tokens).flatten(2).transpose(1, 2)
            return torch.cat([tokens[:, :1], patches], dim=1)

        last = clip.vision_model.encoder.layers[-1].layer_norm1
        handle = last.register_forward_hook(through_grid)
        try:
            image = clip.vision_model(pixel_values=pixel_values).pooler_output
        finally:
            handle.remove()
        with eager_attention(clip.text_model):
            text = clip.text_model(input_ids=input_ids, attention_mask=attention_mask)
        text = text.pooler_output
        joint = self.fusion(
            self.textual(clip.text_projection(text)), self.visual(clip.visual_projection(image))
        )
        return clip.logit_scale.exp() * joint.sum(dim=1, keepdim=True)


@dataclasses.dataclass(frozen=True)
class ClipSites:
    """The modules of :class:`ClipPairScore` the Hadamard methods read.

    Attributes:
        textual: Outputs Q, the normalised text embedding (B, P).
        visual: Outputs V, the normalised image embedding (B, P).
        embedding: Outputs the token embeddings q (B, L, D) (before positions are added).
        fusion: Outputs F = Q o V (B, P), the combine layer.
        conv: Outputs the Grad-CAM grid (B, C, gh, gw): the patch tokens of the last
            vision layer (``ClipPairScore.patch_grid``).

    Examples:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> config = CLIPConfig(
        ...     text_config={"vocab_size": 20, "hidden_size": 16, "intermediate_size": 32,
        ...                  "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": 3},
        ...     vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        ...                    "num_attention_heads": 2, "image_size": 16, "patch_size": 8},
        ...     projection_dim=8)
        >>> sites = ClipAdapter(CLIPModel(config)).sites
        >>> type(sites.fusion).__name__, type(sites.conv).__name__
        ('Hadamard', 'PatchGrid')
    """

    textual: nn.Module
    visual: nn.Module
    embedding: nn.Module
    fusion: nn.Module
    conv: nn.Module


class ClipAdapter:
    """Explains an unmodified ``transformers.CLIPModel`` on (caption, image) pairs.

    Inputs for every method: ``inputs = (input_ids (B, L), pixel_values (B, 3, H, W))``
    and ``additional_forward_args = (attention_mask (B, L),)`` (optional, right-padded
    text). Row b of ``input_ids`` is paired with row b of ``pixel_values``; repeat an
    image to pair it with several captions. The explained output is each pair's scaled
    similarity, the diagonal of ``logits_per_image``, presented as (B, 1):
    ``target=None`` (or 0) selects it. ``adapter.model`` is the :class:`ClipPairScore`
    wrapping the CLIP model; ``adapter.clip`` the model itself.

    - :class:`~captum_multimodal.CoAttentionRelevancy`: the self-attention rule runs in
      the text tower (stream ``"text"``) and the vision tower (``"image"``) separately
      (no attention joins them). ``text_rel`` (B, L) is the row of the end-of-text token
      (the model's read-out: the first ``eos_token_id``, or the largest id for legacy
      configs with ``eos_token_id == 2``), its own entry 0, padding 0; ``image_rel``
      (B, N_patches) the vision [CLS] row without [CLS], in row-major patch order
      (:meth:`image_grid` reshapes and upsamples it). All pairs' gradients come from
      one backward of the summed similarities. ``start_layer`` counts layers within
      each tower (both skip their layers before it); the paper's method uses all
      layers (``start_layer=0``).
    - :class:`~captum_multimodal.HadamardDeviation` (``from_adapter``): Q and V are the
      normalised text and image embeddings, F = Q o V (their sum is the cosine);
      :math:`\\nabla_v` reaches the pixels, :math:`\\nabla_q` the token embeddings. Pass
      ``image_index=1`` (the image is the second input). CLIP has no ``nn.ReLU``
      modules, so ``guided`` changes nothing: the gradients are plain.
    - :class:`~captum_multimodal.QuestionMaskedGradCAM` (``from_adapter``): the combine
      layer is Q o V, the question representation is the caption's token embeddings,
      and Grad-CAM runs on the patch tokens entering the last vision layer's attention,
      reshaped to (B, C, gh, gw) by :class:`PatchGrid`. (The last layer's *outputs* at
      patch positions never reach the [CLS] read-out: their gradient is 0.)

    Attention maps are recorded by forward hooks on the ``CLIPAttention`` modules that
    live only during the call (``output_attentions`` is not used, so ``transformers``
    installs no output-capturing hooks of its own). For the relevancy, a model on SDPA
    or another fused attention, which computes no probabilities, runs eagerly in both
    towers for the call and gets its implementation back; if it cannot switch, a
    ``ValueError`` says how to build it (never zeros). The Hadamard methods switch only
    the text tower (see :class:`ClipPairScore`). The model runs in eval mode and gets
    its own modes back.

    Args:
        model: A ``transformers.CLIPModel``.

    Examples:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> from captum_multimodal import CoAttentionRelevancy
        >>> config = CLIPConfig(
        ...     text_config={"vocab_size": 20, "hidden_size": 16, "intermediate_size": 32,
        ...                  "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": 3},
        ...     vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        ...                    "num_attention_heads": 2, "image_size": 16, "patch_size": 8},
        ...     projection_dim=8)
        >>> adapter = ClipAdapter(CLIPModel(config))
        >>> ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
        >>> mask = (ids != 0).long()
        >>> text, image = CoAttentionRelevancy(adapter).attribute(
        ...     (ids, torch.rand(2, 3, 16, 16)), additional_forward_args=(mask,))
        >>> text.shape, image.shape, adapter.image_grid(image).shape
        (torch.Size([2, 4]), torch.Size([2, 4]), torch.Size([2, 2, 2]))
    """

    def __init__(self, model: nn.Module) -> None:
        if type(model).__name__ != "CLIPModel":
            raise TypeError(f"model must be a transformers CLIPModel, got {type(model).__name__}")
        self.clip = model
        self.model = ClipPairScore(model)
        self.sites = ClipSites(
            textual=self.model.textual,
            visual=self.model.visual,
            embedding=model.text_model.embeddings.token_embedding,
            fusion=self.model.fusion,
            conv=self.model.patch_grid,
        )

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patches per column and per row, (gh, gw)."""
        return self.model.patch_grid.rows, self.model.patch_grid.columns

    def image_grid(
        self, image_rel: torch.Tensor, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """``image_rel`` (B, N_patches) as the patch grid (B, gh, gw), or bilinearly
        upsampled to ``size = (H, W)`` (e.g. the image's) as (B, H, W)."""
        return image_grid(image_rel, self.grid_size, size)

    def end_of_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B,) position of the token the text tower reads out, as the model picks it."""
        eos = self.clip.text_model.config.eos_token_id
        if eos == 2:  # legacy configs: the end-of-text token has the largest id
            return input_ids.argmax(dim=1)
        found = input_ids == eos
        if not bool(found.any(dim=1).all()):
            raise ValueError(
                f"input_ids must contain the end-of-text token (eos_token_id={eos}) in every "
                "row; CLIP reads the text embedding there"
            )
        return found.int().argmax(dim=1)

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass of all pairs; yields the recording (see the class docstring)."""
        input_ids, pixel_values, attention_mask = self._check(inputs, additional_forward_args)
        readout = self.end_of_text(input_ids)
        rows = torch.arange(len(input_ids), device=input_ids.device)
        if not bool(attention_mask[rows, readout].all()):
            raise ValueError("attention_mask must mark the end-of-text token of every row as real")
        towers = {"text": self.clip.text_model, "image": self.clip.vision_model}
        attention_modules = {
            f"{stream}.{i}": layer.self_attn
            for stream, tower in towers.items()
            for i, layer in enumerate(tower.encoder.layers)
        }
        with explaining(self.clip), record_outputs(attention_modules) as outputs:
            logits = self.model(input_ids, pixel_values, attention_mask)
            events = []
            for stream in towers:
                keys = [k for k in attention_modules if k.startswith(f"{stream}.")]
                maps = [outputs[k][0][1] for k in keys]
                if any(a is None for a in maps):  # a fused kernel that could not switch
                    checked_attentions(None, self.clip)
                events += [AttentionEvent(stream, stream, a, layer=i) for i, a in enumerate(maps)]
            tokens = events[-1].probs.shape[-1]  # [CLS] and the patches
            cls = torch.zeros_like(readout)
            yield AttentionRecording(
                logits=logits,
                events=events,
                valid={
                    "text": attention_mask.bool(),
                    "image": torch.ones(len(rows), tokens, dtype=torch.bool, device=rows.device),
                },
                readout=("image", cls),
                parts={
                    "text": ("text", slice(0, input_ids.shape[1])),
                    "image": ("image", slice(1, tokens)),
                },
                part_readouts={"text": ("text", readout), "image": ("image", cls)},
            )

    def _check(self, inputs: Any, additional_forward_args: Any) -> tuple:
        input_ids, pixel_values, args = text_image_inputs(
            inputs, additional_forward_args, self.clip, max_args=1
        )
        mask = args[0] if args else None
        attention_mask = batch_mask(mask, tuple(input_ids.shape), "attention_mask", input_ids)
        return input_ids, pixel_values, attention_mask

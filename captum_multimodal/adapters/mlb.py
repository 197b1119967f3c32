"""Where the explanation sites are in MLB-style (Hadamard-fusion) VQA models."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from captum_multimodal._utils.modules import record_outputs, resolve_submodule

_DEFAULT_NAMES = {
    "textual_layer": "fusion.textual",
    "visual_layer": "fusion.visual",
    "fusion_layer": "fusion.hadamard",
    "embedding_layer": "question_encoder.embedding",
    "attention_layer": "attention.probs",
}


@dataclasses.dataclass(frozen=True)
class MLBSites:
    """The modules of an MLB-style model that explanation methods read.

    Attributes:
        textual: Outputs the textual vector Q (B, K).
        visual: Outputs the visual vector V (B, K).
        embedding: Outputs the word vectors q (B, T, D).
        fusion: Outputs F = Q o V (B, K), or None if the model has no such module.
        conv: The last convolution of the image backbone, or None.
        attention: Outputs the attention maps alpha (B, G, S, S), or None.

    Examples:
        >>> from captum_multimodal.models import MLB
        >>> sites = MLBAdapter(MLB(vocab_size=25, num_answers=16)).sites
        >>> sites.fusion is not None and sites.conv is not None
        True
    """

    textual: nn.Module
    visual: nn.Module
    embedding: nn.Module
    fusion: nn.Module | None
    conv: nn.Module | None
    attention: nn.Module | None


class MLBAdapter:
    """Names the sites of an MLB model for the attribution methods.

    For :class:`captum_multimodal.models.MLB` every site is found by itself. For your
    own Hadamard-fusion model pass the modules (or their dotted names); any site you do
    not pass is looked up under the reference model's name, and the convolution
    defaults to the last ``nn.Conv2d`` of ``model.backbone`` when there is one.

    The model is called as ``model(image, question, attention_mask)``: inputs
    ``(image,)`` and additional forward arguments ``(question, attention_mask)``.

    Args:
        model (nn.Module): The VQA model; it is not modified.
        textual_layer (nn.Module or str, optional): Outputs Q. Required unless the
            reference name exists.
        visual_layer (nn.Module or str, optional): Outputs V. Required likewise.
        embedding_layer (nn.Module or str, optional): Outputs the word vectors q.
            Required likewise.
        fusion_layer (nn.Module or str, optional): Outputs F = Q o V.
        conv_layer (nn.Module or str, optional): The last convolution (Grad-CAM).
        attention_layer (nn.Module or str, optional): Outputs the attention maps alpha.

    Examples:
        >>> from captum_multimodal.models import MLB
        >>> adapter = MLBAdapter(MLB(vocab_size=25, num_answers=16))
        >>> type(adapter.sites.textual).__name__
        'Sequential'
    """

    def __init__(
        self,
        model: nn.Module,
        textual_layer: nn.Module | str | None = None,
        visual_layer: nn.Module | str | None = None,
        embedding_layer: nn.Module | str | None = None,
        fusion_layer: nn.Module | str | None = None,
        conv_layer: nn.Module | str | None = None,
        attention_layer: nn.Module | str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        given = {
            "textual_layer": textual_layer,
            "visual_layer": visual_layer,
            "embedding_layer": embedding_layer,
            "fusion_layer": fusion_layer,
            "attention_layer": attention_layer,
        }
        found = {arg: self._find(arg, layer) for arg, layer in given.items()}
        missing = [
            arg
            for arg in ("textual_layer", "visual_layer", "embedding_layer")
            if found[arg] is None
        ]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} must be given for a {type(model).__name__}: it has no "
                f"submodule named {', '.join(repr(_DEFAULT_NAMES[m]) for m in missing)}"
            )
        conv = (
            resolve_submodule(model, conv_layer, "conv_layer")
            if conv_layer is not None
            else _last_conv(model.backbone)
            if isinstance(getattr(model, "backbone", None), nn.Module)
            else None
        )
        self.sites = MLBSites(
            textual=found["textual_layer"],
            visual=found["visual_layer"],
            embedding=found["embedding_layer"],
            fusion=found["fusion_layer"],
            conv=conv,
            attention=found["attention_layer"],
        )

    def _find(self, argument: str, layer: nn.Module | str | None) -> nn.Module | None:
        if layer is not None:
            return resolve_submodule(self.model, layer, argument)
        try:
            return self.model.get_submodule(_DEFAULT_NAMES[argument])
        except AttributeError:
            return None

    @staticmethod
    def forward_arguments(
        batch: dict,
    ) -> tuple[tuple[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Splits a :func:`~captum_multimodal.datasets.collate_vqa` batch into Captum's
        ``inputs`` and ``additional_forward_args``: ``(image,), (question, attention_mask)``."""
        return (batch["image"],), (batch["question"], batch["attention_mask"])

    @torch.no_grad()
    def attention_maps(
        self,
        image: torch.Tensor,
        question: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The model's attention maps alpha for a batch, (B, G, S, S).

        Raises:
            ValueError: The adapter has no attention site.
        """
        if self.sites.attention is None:
            raise ValueError(
                f"attention_layer was not given and {type(self.model).__name__} has no "
                f"{_DEFAULT_NAMES['attention_layer']!r} submodule"
            )
        with record_outputs({"alpha": self.sites.attention}) as outputs:
            self.model(image, question, attention_mask)
        return outputs["alpha"][-1]


def _last_conv(module: nn.Module) -> nn.Module | None:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None

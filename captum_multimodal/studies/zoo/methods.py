"""Attribution methods of the studies, by name: ours, Captum's and the attention baselines.

Each is ``explain(subject, batch, target)`` returning a map or a dict of parts, and the
Captum visualisation sign its metrics read it with.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

from captum.attr import (
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Saliency,
)

from captum_multimodal.attr import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    HadamardDeviation,
    QuestionMaskedGradCAM,
    RawAttention,
)
from captum_multimodal.studies.study import Method


def _clip_relevancy(subject, batch, target):
    inputs, args = subject.arguments(batch)
    _, image = CoAttentionRelevancy(subject.adapter).attribute(
        inputs, target=target, additional_forward_args=args
    )
    return subject.adapter.image_grid(image)


def _clip_hadamard(subject, batch, target):
    inputs, args = subject.arguments(batch)
    visual, _ = HadamardDeviation.from_adapter(subject.adapter).attribute(
        inputs, additional_forward_args=args, image_index=1
    )
    return visual


def _clip_grad_cam(subject, batch, target, top_n: int | None = 8):
    inputs, args = subject.arguments(batch)
    width = subject.model.config.projection_dim if top_n is None else top_n
    return QuestionMaskedGradCAM.from_adapter(subject.adapter).attribute(
        inputs, target=target, top_n=width, additional_forward_args=args
    )


def _saliency(subject, batch, target):
    (image,), args = subject.arguments(batch)
    return Saliency(subject.model).attribute(image, target=target, additional_forward_args=args)


def _integrated_gradients(subject, batch, target, n_steps: int = 32):
    (image,), args = subject.arguments(batch)
    return IntegratedGradients(subject.model).attribute(
        image, target=target, additional_forward_args=args, n_steps=n_steps
    )


def _guided_backprop(subject, batch, target):
    (image,), args = subject.arguments(batch)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return GuidedBackprop(subject.model).attribute(
            image, target=target, additional_forward_args=args
        )


def _layer_grad_cam(subject, batch, target):
    (image,), args = subject.arguments(batch)
    cam = LayerGradCam(subject.model, subject.adapter.sites.conv).attribute(
        image, target=target, additional_forward_args=args, relu_attributions=True
    )
    return LayerAttribution.interpolate(cam, tuple(image.shape[-2:]), "bilinear")


def _hadamard_deviation(subject, batch, target):
    inputs, args = subject.arguments(batch)
    visual, textual = HadamardDeviation.from_adapter(subject.adapter).attribute(
        inputs, additional_forward_args=args
    )
    return {"image": visual, "text": textual.abs().sum(dim=-1)}


def _question_masked_grad_cam(subject, batch, target, top_n: int = 5):
    inputs, args = subject.arguments(batch)
    cam = QuestionMaskedGradCAM.from_adapter(subject.adapter).attribute(
        inputs, target=target, top_n=top_n, additional_forward_args=args
    )
    return LayerAttribution.interpolate(cam, tuple(inputs[0].shape[-2:]), "bilinear")


def _attention_method(cls: type) -> Callable:
    def explain(subject, batch, target):
        inputs, args = subject.arguments(batch)
        text, image = cls(subject.adapter).attribute(
            inputs, target=target, additional_forward_args=args
        )
        length = batch["question"].shape[1]
        side = subject.grid
        return {
            "image": image.view(-1, side, side),
            "image_tokens": image,
            "text": text[:, 1 : 1 + length],  # after [CLS]: aligned with the question
        }

    return explain


MLB_METHODS = {
    "HadamardDeviation": (_hadamard_deviation, "absolute_value"),
    "Saliency": (_saliency, "absolute_value"),
    "GuidedBackprop": (_guided_backprop, "absolute_value"),
    "IntegratedGradients": (_integrated_gradients, "absolute_value"),
    "LayerGradCam": (_layer_grad_cam, "positive"),
    "QuestionMaskedGradCAM": (_question_masked_grad_cam, "positive"),
}
"""Methods that explain an MLB subject: name to (explain, sign)."""

ATTENTION_METHODS = {
    "CoAttentionRelevancy": (_attention_method(CoAttentionRelevancy), "positive"),
    "RawAttention": (_attention_method(RawAttention), "positive"),
    "AttentionRollout": (_attention_method(AttentionRollout), "positive"),
    "AttentionGradCAM": (_attention_method(AttentionGradCAM), "positive"),
}
"""Methods that explain a VisualBERT or LXMERT subject: name to (explain, sign)."""

CLIP_METHODS = {
    "CoAttentionRelevancy": (_clip_relevancy, "positive"),
    "HadamardDeviation": (_clip_hadamard, "absolute_value"),
    "QuestionMaskedGradCAM": (_clip_grad_cam, "positive"),
    "GradCAM": (functools.partial(_clip_grad_cam, top_n=None), "positive"),
}
"""Methods that explain a CLIP subject: name to (explain, sign). The caption plays the
question's part in QuestionMaskedGradCAM (8 of the shipped CLIP's 32 fusion neurons
kept); GradCAM keeps them all."""


METHOD_TABLES = {"mlb": MLB_METHODS, "attention": ATTENTION_METHODS, "clip": CLIP_METHODS}
"""Method tables by family."""


def method(name: str, family: str = "mlb", label: str | None = None, **arguments) -> Method:
    """A study method by name.

    Args:
        name (str): A key of :data:`MLB_METHODS` (``family="mlb"``),
            :data:`ATTENTION_METHODS` (``family="attention"``) or :data:`CLIP_METHODS`
            (``family="clip"``).
        family (str): ``"mlb"``, ``"attention"`` or ``"clip"``.
        label (str, optional): Its name in the tables (default ``name``).
        **arguments (Any): Passed to the method (``n_steps`` of IntegratedGradients,
            ``top_n`` of QuestionMaskedGradCAM).

    Examples:
        >>> method("QuestionMaskedGradCAM", top_n=10).name
        'QuestionMaskedGradCAM'
    """
    table = METHOD_TABLES.get(family)
    if table is None:
        raise ValueError(f'family must be "mlb", "attention" or "clip", got {family!r}')
    if name not in table:
        raise ValueError(f"name must be one of {sorted(table)} for family {family!r}, got {name!r}")
    explain, sign = table[name]
    if arguments:
        base = explain

        def explain(subject, batch, target):
            return base(subject, batch, target, **arguments)

    return Method(label or name, explain, sign)

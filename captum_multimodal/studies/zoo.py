"""Ready-made study parts for the shipped models: subjects, methods, metrics, studies.

Every factory here can be named in a study config file
(``"captum_multimodal.studies.zoo:mlb_study"``); :func:`method` and :func:`metric`
look parts up by name.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from captum.attr import (
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Saliency,
)
from torch import nn

from captum_multimodal.adapters import MLBAdapter, VisualBertAdapter
from captum_multimodal.attr import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    HadamardDeviation,
    QuestionMaskedGradCAM,
    RawAttention,
)
from captum_multimodal.datasets import SyntheticVQA
from captum_multimodal.metrics import (
    PERTURBATION_STEPS,
    energy_pointing_game,
    key_token_rank,
    perturbation_correct,
    pixel_perturbation_curve,
    pointing_game,
)
from captum_multimodal.models import load_pretrained
from captum_multimodal.models.training import visual_bert_batch
from captum_multimodal.studies.study import Method, Metric, Study

TOLERANCE = 4
"""Pointing-game tolerance in pixels: the usual 15 px at 224 px, scaled to 64 px images."""


class MLBSubject:
    """The shipped MLB (or any model :class:`~captum_multimodal.adapters.MLBAdapter` takes)
    as a study subject: called as ``model(image, question, attention_mask)``.

    Args:
        model: The VQA model; default the shipped MLB.
        device: Where the default model goes.
    """

    def __init__(self, model: nn.Module | None = None, device: str | torch.device = "cpu"):
        self.adapter = MLBAdapter(model if model is not None else load_pretrained("mlb", device))
        self.model = self.adapter.model

    def arguments(self, batch: dict) -> tuple[tuple, tuple]:
        """Captum ``inputs`` and ``additional_forward_args`` of a batch."""
        return self.adapter.forward_arguments(batch)

    def logits(self, batch: dict) -> torch.Tensor:
        """(B, answers) logits."""
        return self.model(batch["image"], batch["question"], batch["attention_mask"])

    def image_forward(self, batch: dict) -> Callable[[torch.Tensor], torch.Tensor]:
        """The model as a function of the image alone, the question fixed."""
        return lambda image: self.model(image, batch["question"], batch["attention_mask"])


class VisualBertSubject:
    """The shipped VisualBERT (grid features of the shipped MLB's backbone as visual
    tokens) as a study subject.

    Args:
        model: A ``VisualBertForQuestionAnswering`` trained on the synthetic data;
            default the shipped one.
        backbone: Image backbone giving the grid features; default the shipped MLB's.
        device: Where the default models go.
    """

    grid = 4

    def __init__(
        self,
        model: nn.Module | None = None,
        backbone: nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model if model is not None else load_pretrained("visual_bert", device)
        self.backbone = (
            backbone if backbone is not None else load_pretrained("mlb", device).backbone
        )
        self.adapter = VisualBertAdapter(self.model)

    def arguments(self, batch: dict) -> tuple[tuple, tuple]:
        """``(input_ids, visual_embeds), (attention_mask, visual_attention_mask)``."""
        return visual_bert_batch(batch, self.backbone)

    def logits(self, batch: dict, visual_keep: torch.Tensor | None = None) -> torch.Tensor:
        """(B, answers) logits; ``visual_keep`` (B, N) masks visual tokens out."""
        (ids, visual), (mask, visual_mask) = self.arguments(batch)
        if visual_keep is not None:
            visual_mask = visual_keep.long()
        return self.model(
            input_ids=ids,
            attention_mask=mask,
            visual_embeds=visual,
            visual_attention_mask=visual_mask,
        ).logits


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
"""Methods that explain a VisualBERT subject: name to (explain, sign)."""


def method(name: str, family: str = "mlb", label: str | None = None, **arguments) -> Method:
    """A study method by name.

    Args:
        name (str): A key of :data:`MLB_METHODS` (``family="mlb"``) or
            :data:`ATTENTION_METHODS` (``family="attention"``).
        family (str): ``"mlb"`` or ``"attention"``.
        label (str, optional): Its name in the tables (default ``name``).
        **arguments: Passed to the method (``n_steps`` of IntegratedGradients,
            ``top_n`` of QuestionMaskedGradCAM).

    Example:
        >>> method("QuestionMaskedGradCAM", top_n=10).name
        'QuestionMaskedGradCAM'
    """
    table = {"mlb": MLB_METHODS, "attention": ATTENTION_METHODS}.get(family)
    if table is None:
        raise ValueError(f'family must be "mlb" or "attention", got {family!r}')
    if name not in table:
        raise ValueError(f"name must be one of {sorted(table)} for family {family!r}, got {name!r}")
    explain, sign = table[name]
    if arguments:
        base = explain

        def explain(subject, batch, target):
            return base(subject, batch, target, **arguments)

    return Method(label or name, explain, sign)


def _pointing(subject, batch, explanation, target):
    if "image" not in explanation:
        return {}
    maps = explanation["image"]
    return {
        "pointing_game": pointing_game(maps, batch["mask"]),
        f"pointing_game_{TOLERANCE}px": pointing_game(maps, batch["mask"], tolerance=TOLERANCE),
    }


def _energy(subject, batch, explanation, target):
    if "image" not in explanation:
        return {}
    return {"energy_pointing_game": energy_pointing_game(explanation["image"], batch["mask"])}


def _key_token(subject, batch, explanation, target):
    if "text" not in explanation:
        return {}
    rank = key_token_rank(explanation["text"], batch["key_tokens"], batch["attention_mask"])
    return {
        "key_token_hit": torch.where(rank.isnan(), rank, (rank == 1).to(rank.dtype)),
        "key_token_rank": rank,
    }


def _deletion_insertion(subject, batch, explanation, target, steps=PERTURBATION_STEPS):
    if "image" not in explanation or not hasattr(subject, "image_forward"):
        return {}
    values = {}
    for mode in ("deletion", "insertion"):
        curve, area = pixel_perturbation_curve(
            subject.image_forward(batch),
            batch["image"],
            explanation["image"],
            target,
            mode=mode,
            steps=steps,
        )
        values[f"{mode}_auc"] = area
        values |= {f"{mode}@{s:g}": curve[:, i] for i, s in enumerate(steps)}
    return values


def _token_perturbation(subject, batch, explanation, target, steps=PERTURBATION_STEPS):
    if "image_tokens" not in explanation or not isinstance(subject, VisualBertSubject):
        return {}

    def predict(keep):
        return subject.logits(batch, visual_keep=keep).argmax(dim=1)

    values = {}
    for test, first in (("positive", True), ("negative", False)):
        correct = perturbation_correct(
            predict,
            explanation["image_tokens"],
            batch["answer"],
            most_relevant_first=first,
            steps=steps,
        ).to(torch.float64)
        grid = torch.tensor(list(steps), dtype=correct.dtype, device=correct.device)
        values[f"{test}_auc"] = torch.trapezoid(correct, grid, dim=1)
        values |= {f"{test}@{s:g}": correct[:, i] for i, s in enumerate(steps)}
    return values


METRICS = {
    "pointing_game": _pointing,
    "energy_pointing_game": _energy,
    "key_token": _key_token,
    "deletion_insertion": _deletion_insertion,
    "token_perturbation": _token_perturbation,
}
"""Metrics by name. Each applies where the explanation has the parts it needs (an
``"image"`` map against ``batch["mask"]``; ``"text"`` against ``batch["key_tokens"]``;
deletion/insertion on subjects with ``image_forward``; the token perturbation test on
visual tokens of a VisualBERT subject, against the true answer) and reports nothing
otherwise."""


def metric(name: str) -> Metric:
    """A study metric by name (a key of :data:`METRICS`).

    Example:
        >>> metric("pointing_game").name
        'pointing_game'
    """
    if name not in METRICS:
        raise ValueError(f"name must be one of {sorted(METRICS)}, got {name!r}")
    return Metric(name, METRICS[name])


def mlb_study(
    size: int = 64,
    seed: int = 2,
    methods: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> Study:
    """The shipped MLB on ``size`` fresh synthetic questions (data ``seed``), every MLB
    method (or those named) and every applicable metric (or those named)."""
    names = list(MLB_METHODS) if methods is None else list(methods)
    return Study(
        name="MLB",
        subject=MLBSubject(device=device),
        dataset=SyntheticVQA(size, seed=seed),
        methods=[
            method(n, label="QuestionMaskedGradCAM (n=5)" if n == "QuestionMaskedGradCAM" else None)
            for n in names
        ],
        metrics=[metric(n) for n in (metrics or list(METRICS))],
        batch_size=batch_size,
        arguments={"size": size, "seed": seed, "methods": names, "device": device},
    )


def visual_bert_study(
    size: int = 64,
    seed: int = 2,
    methods: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> Study:
    """The shipped VisualBERT on ``size`` fresh synthetic questions with the relevancy
    method and the attention baselines (or those named)."""
    names = list(ATTENTION_METHODS) if methods is None else list(methods)
    return Study(
        name="VisualBERT",
        subject=VisualBertSubject(device=device),
        dataset=SyntheticVQA(size, seed=seed),
        methods=[method(n, family="attention") for n in names],
        metrics=[metric(n) for n in (metrics or list(METRICS))],
        batch_size=batch_size,
        arguments={"size": size, "seed": seed, "methods": names, "device": device},
    )

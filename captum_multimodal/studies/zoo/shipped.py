"""Studies of the shipped models, by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from captum_multimodal.datasets import CaptionPairs, SyntheticVQA, collate_captions, collate_vqa
from captum_multimodal.studies.study import Study
from captum_multimodal.studies.zoo.methods import METHOD_TABLES, method
from captum_multimodal.studies.zoo.metrics import METRICS, metric
from captum_multimodal.studies.zoo.subjects import (
    ClipSubject,
    LxmertSubject,
    MLBSubject,
    VisualBertSubject,
)


@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """How a shipped model is studied: its subject, data, method family and metrics."""

    title: str
    subject: Callable[..., object]
    dataset: Callable[[int, int], torch.utils.data.Dataset]
    family: str
    metrics: tuple[str, ...]
    collate: Callable = collate_vqa
    labels: dict = dataclasses.field(default_factory=dict)


SHIPPED = {
    "mlb": ShippedModel(
        "MLB",
        MLBSubject,
        lambda size, seed: SyntheticVQA(size, seed=seed),
        "mlb",
        tuple(METRICS),
        labels={"QuestionMaskedGradCAM": "QuestionMaskedGradCAM (n=5)"},
    ),
    "visual_bert": ShippedModel(
        "VisualBERT",
        VisualBertSubject,
        lambda size, seed: SyntheticVQA(size, seed=seed),
        "attention",
        tuple(METRICS),
    ),
    "lxmert": ShippedModel(
        "LXMERT",
        LxmertSubject,
        lambda size, seed: SyntheticVQA(size, seed=seed),
        "attention",
        tuple(METRICS),
    ),
    "clip": ShippedModel(
        "CLIP",
        ClipSubject,
        lambda size, seed: CaptionPairs(size // 2, seed=seed),
        "clip",
        ("pointing_game", "energy_pointing_game", "caption_shift"),
        collate=collate_captions,
    ),
}
"""The shipped models a study can be built for by name (:func:`shipped_study`)."""


def shipped_study(
    model: str = "mlb",
    size: int = 64,
    seed: int = 2,
    methods: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> Study:
    """A study of a shipped model on fresh synthetic data.

    MLB, VisualBERT and LXMERT: ``size`` synthetic questions of data ``seed``; CLIP: ``size``
    image-caption pairs (``size // 2`` scenes, two captioned objects each; ``size`` and
    ``batch_size`` even). Every method of the model's family and every metric that
    applies, or those named.

    Args:
        model (str): A key of :data:`SHIPPED`: ``"mlb"``, ``"visual_bert"``, ``"lxmert"``,
            ``"clip"``.
        size (int): Examples.
        seed (int): Data seed (2 and above are unseen in training).
        methods (sequence of str, optional): Names in the family's method table.
        metrics (sequence of str, optional): Names in :data:`METRICS`.
        batch_size (int): Examples per chunk.
        device (str): Where the model runs.

    Returns:
        Study: Ready for :func:`~captum_multimodal.studies.study.run_study`.

    Examples:
        >>> study = shipped_study("mlb", size=4, methods=["Saliency"])
        >>> study.name, len(study.dataset), [m.name for m in study.methods]
        ('MLB', 4, ['Saliency'])
    """
    if model not in SHIPPED:
        raise ValueError(f"model must be one of {sorted(SHIPPED)}, got {model!r}")
    shipped = SHIPPED[model]
    if model == "clip" and (size < 2 or size % 2 or batch_size % 2):
        raise ValueError(
            f"size and batch_size must be even for clip (two captions per image), got {size} "
            f"and {batch_size}"
        )
    names = list(METHOD_TABLES[shipped.family]) if methods is None else list(methods)
    return Study(
        name=shipped.title,
        subject=shipped.subject(device=device),
        dataset=shipped.dataset(size, seed),
        methods=[method(n, family=shipped.family, label=shipped.labels.get(n)) for n in names],
        metrics=[metric(n) for n in (metrics or shipped.metrics)],
        collate=shipped.collate,
        batch_size=batch_size,
        arguments={"model": model, "size": size, "seed": seed, "methods": names, "device": device},
    )

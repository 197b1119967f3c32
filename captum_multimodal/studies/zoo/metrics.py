"""Metrics of the studies, by name; each reports nothing where it does not apply."""

from __future__ import annotations

import torch

from captum_multimodal.metrics import (
    PERTURBATION_STEPS,
    energy_pointing_game,
    key_token_rank,
    perturbation_correct,
    pixel_perturbation_curve,
    pointing_game,
    top_fraction_iou,
)
from captum_multimodal.studies.study import Metric
from captum_multimodal.studies.zoo.subjects import GridTokenSubject

TOLERANCE = 4
"""Pointing-game tolerance in pixels: the usual 15 px at 224 px, scaled to 64 px images."""


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
    if not isinstance(subject, GridTokenSubject):
        return {}
    tests = {
        "image": ("image_tokens", None, "visual_keep"),
        "text": ("text", batch["attention_mask"], "word_keep"),
    }
    values = {}
    for modality, (part, valid, keyword) in tests.items():
        if part not in explanation:
            continue

        def predict(keep, keyword=keyword):
            return subject.logits(batch, **{keyword: keep}).argmax(dim=1)

        for test, first in (("positive", True), ("negative", False)):
            correct = perturbation_correct(
                predict,
                explanation[part],
                batch["answer"],
                valid,
                most_relevant_first=first,
                steps=steps,
            ).to(torch.float64)
            grid = torch.tensor(list(steps), dtype=correct.dtype, device=correct.device)
            name = f"{modality}_{test}"
            values[f"{name}_auc"] = torch.trapezoid(correct, grid, dim=1)
            values |= {f"{name}@{s:g}": correct[:, i] for i, s in enumerate(steps)}
    return values


def _caption_shift(subject, batch, explanation, target):
    if "image" not in explanation or "other_mask" not in batch:
        return {}
    maps = explanation["image"]
    if len(maps) % 2:
        raise ValueError(
            f"caption_shift needs both captions of an image in one chunk: an even batch_size, "
            f"got a chunk of {len(maps)}"
        )
    iou = top_fraction_iou(maps[0::2], maps[1::2]).repeat_interleave(2)
    return {"pointing_other_object": pointing_game(maps, batch["other_mask"]), "top20_iou": iou}


METRICS = {
    "pointing_game": _pointing,
    "energy_pointing_game": _energy,
    "key_token": _key_token,
    "deletion_insertion": _deletion_insertion,
    "token_perturbation": _token_perturbation,
    "caption_shift": _caption_shift,
}
"""Metrics by name. Each applies where the explanation has the parts it needs (an
``"image"`` map against ``batch["mask"]``; ``"text"`` against ``batch["key_tokens"]``;
deletion/insertion on subjects with ``image_forward``; the perturbation tests of
Chefer et al. on the visual tokens and on the question words of a VisualBERT or LXMERT
subject (removed most relevant first, "positive", or least relevant first, "negative";
accuracy against the true answer); the caption shift on
:class:`CaptionPairs`: pointing at the other caption's object, and the top-20% IoU of
the two captions' maps of one image) and reports nothing otherwise."""


def metric(name: str) -> Metric:
    """A study metric by name (a key of :data:`METRICS`).

    Examples:
        >>> metric("pointing_game").name
        'pointing_game'
    """
    if name not in METRICS:
        raise ValueError(f"name must be one of {sorted(METRICS)}, got {name!r}")
    return Metric(name, METRICS[name])

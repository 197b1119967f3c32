"""Ready-made study parts for the shipped models: subjects, methods, metrics, studies.

Every factory here can be named in a study config file
(``"captum_multimodal.studies.zoo:mlb_study"``); :func:`method` and :func:`metric`
look parts up by name.
"""

from __future__ import annotations

import dataclasses
import functools
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

from captum_multimodal.adapters import ClipAdapter, LxmertAdapter, MLBAdapter, VisualBertAdapter
from captum_multimodal.attr import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    HadamardDeviation,
    QuestionMaskedGradCAM,
    RawAttention,
)
from captum_multimodal.datasets import CaptionPairs, SyntheticVQA, collate_captions, collate_vqa
from captum_multimodal.metrics import (
    PERTURBATION_STEPS,
    energy_pointing_game,
    key_token_rank,
    perturbation_correct,
    pixel_perturbation_curve,
    pointing_game,
    top_fraction_iou,
)
from captum_multimodal.models import load_pretrained
from captum_multimodal.models.lxmert import lxmert_batch
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


class GridTokenSubject:
    """A shipped transformer VQA model whose visual tokens are a 4 x 4 grid of the
    shipped MLB backbone's features (VisualBERT, LXMERT), as a study subject.

    Args:
        model: The model trained on the synthetic data; default the shipped one.
        backbone: Image backbone giving the grid features; default the shipped MLB's.
        device: Where the default models go.
    """

    grid = 4
    shipped = ""

    def __init__(
        self,
        model: nn.Module | None = None,
        backbone: nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model if model is not None else load_pretrained(self.shipped, device)
        self.backbone = (
            backbone if backbone is not None else load_pretrained("mlb", device).backbone
        )

    def arguments(self, batch: dict) -> tuple[tuple, tuple]:
        """Captum ``inputs`` and ``additional_forward_args`` (the adapter's order)."""
        raise NotImplementedError

    def logits(
        self,
        batch: dict,
        visual_keep: torch.Tensor | None = None,
        word_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, answers) logits. ``visual_keep`` (B, 16) masks visual tokens out;
        ``word_keep`` (B, T), aligned with ``batch["question"]``, masks question words
        out ([CLS], [SEP] and padding keep their mask)."""
        inputs, (mask, visual_mask) = self.arguments(batch)
        if visual_keep is not None:
            visual_mask = visual_keep.long()
        if word_keep is not None:
            words = slice(1, 1 + word_keep.shape[1])
            real = batch["attention_mask"].bool()
            mask = mask.clone()
            mask[:, words] = mask[:, words] * (word_keep | ~real).long()
        return self.answer(inputs, mask, visual_mask)

    def answer(self, inputs: tuple, mask: torch.Tensor, visual_mask: torch.Tensor):
        """The model's answer logits for its inputs and masks."""
        raise NotImplementedError


class VisualBertSubject(GridTokenSubject):
    """The shipped VisualBERT as a study subject (see :class:`GridTokenSubject`).

    Examples:
        >>> VisualBertSubject().adapter.reads_last_text_token
        True
    """

    shipped = "visual_bert"

    def __init__(self, model=None, backbone=None, device="cpu") -> None:
        super().__init__(model, backbone, device)
        self.adapter = VisualBertAdapter(self.model)

    def arguments(self, batch: dict) -> tuple[tuple, tuple]:
        """``(input_ids, visual_embeds), (attention_mask, visual_attention_mask)``."""
        return visual_bert_batch(batch, self.backbone)

    def answer(self, inputs, mask, visual_mask):
        ids, visual = inputs
        return self.model(
            input_ids=ids,
            attention_mask=mask,
            visual_embeds=visual,
            visual_attention_mask=visual_mask,
        ).logits


class LxmertSubject(GridTokenSubject):
    """The shipped LXMERT (grid cells as boxes) as a study subject (see
    :class:`GridTokenSubject`).

    Examples:
        >>> type(LxmertSubject().model).__name__
        'LxmertForQuestionAnswering'
    """

    shipped = "lxmert"

    def __init__(self, model=None, backbone=None, device="cpu") -> None:
        super().__init__(model, backbone, device)
        self.adapter = LxmertAdapter(self.model)

    def arguments(self, batch: dict) -> tuple[tuple, tuple]:
        """``(input_ids, visual_feats, visual_pos), (attention_mask, visual_attention_mask)``."""
        return lxmert_batch(batch, self.backbone)

    def answer(self, inputs, mask, visual_mask):
        ids, feats, pos = inputs
        return self.model(
            input_ids=ids,
            visual_feats=feats,
            visual_pos=pos,
            attention_mask=mask,
            visual_attention_mask=visual_mask,
        ).question_answering_score


class ClipSubject:
    """The shipped CLIP (or any ``CLIPModel`` taking our captions) as a study subject:
    each example's logit is the scaled similarity of its image and its caption.

    Args:
        model: A ``CLIPModel``; default the shipped one.
        device: Where the default model goes.
    """

    def __init__(self, model: nn.Module | None = None, device: str | torch.device = "cpu"):
        self.adapter = ClipAdapter(model if model is not None else load_pretrained("clip", device))
        self.model = self.adapter.clip

    def arguments(self, batch: dict) -> tuple[tuple, tuple]:
        """``(input_ids, pixel_values), (attention_mask,)``."""
        return (batch["input_ids"], batch["image"]), (batch["attention_mask"],)

    def logits(self, batch: dict) -> torch.Tensor:
        """(B, 1) similarity logits of the pairs."""
        inputs, args = self.arguments(batch)
        return self.adapter.model(*inputs, *args)


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

"""Study subjects: a model and how to feed it a collated batch.

A subject has ``model`` and ``logits(batch)``; methods and metrics use the rest
(``arguments(batch)`` in the adapter's order, ``image_forward``, token masking). A
subject may have ``prepare(batch)``, which the runner calls once per chunk to add what
every method of the chunk needs (the grid features of the transformer VQA models), so
that nothing is computed once per method.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from captum_multimodal.adapters import ClipAdapter, LxmertAdapter, MLBAdapter, VisualBertAdapter
from captum_multimodal.models import load_pretrained
from captum_multimodal.models.lxmert import lxmert_answer, lxmert_inputs
from captum_multimodal.models.visual_bert import (
    grid_features,
    visual_bert_answer,
    visual_bert_inputs,
)


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
    """A transformer VQA model whose visual tokens are a 4 x 4 grid of an image
    backbone's features (VisualBERT, LXMERT), as a study subject.

    Subclasses name the shipped model, the adapter, how a batch and its features become
    the model's inputs (``inputs``) and how the model answers (``answer``).

    Args:
        model: The model trained on the synthetic data; default the shipped one.
        backbone: Image backbone giving the grid features; default the shipped MLB's.
        device: Where the default models go.
    """

    grid = 4
    shipped = ""
    adapter_type: type
    inputs: Callable[[dict, torch.Tensor], tuple[tuple, tuple]]
    answer: Callable[..., torch.Tensor]

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
        self.adapter = self.adapter_type(self.model)

    def prepare(self, batch: dict) -> dict:
        """The batch with its ``grid_features`` (B, 16, C), computed once per chunk."""
        return batch | {"grid_features": grid_features(batch["image"], self.backbone)}

    def arguments(self, batch: dict) -> tuple[tuple, tuple]:
        """Captum ``inputs`` and ``additional_forward_args`` in the adapter's order."""
        return self.inputs(batch, batch["grid_features"])

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
        return self.answer(self.model, *inputs, mask, visual_mask)


class VisualBertSubject(GridTokenSubject):
    """The shipped VisualBERT as a study subject (see :class:`GridTokenSubject`).

    Examples:
        >>> VisualBertSubject().adapter.reads_last_text_token
        True
    """

    shipped = "visual_bert"
    adapter_type = VisualBertAdapter
    inputs = staticmethod(visual_bert_inputs)
    answer = staticmethod(visual_bert_answer)


class LxmertSubject(GridTokenSubject):
    """The shipped LXMERT (grid cells as boxes) as a study subject (see
    :class:`GridTokenSubject`).

    Examples:
        >>> type(LxmertSubject().model).__name__
        'LxmertForQuestionAnswering'
    """

    shipped = "lxmert"
    adapter_type = LxmertAdapter
    inputs = staticmethod(lxmert_inputs)
    answer = staticmethod(lxmert_answer)


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

"""A small Hugging Face LXMERT for the synthetic VQA data, and its training.

The model is the unmodified ``transformers.LxmertForQuestionAnswering``. Its "objects"
are the cells of a 4 x 4 grid: each cell's feature vector comes from the shipped MLB's
frozen image backbone (:func:`~captum_multimodal.models.visual_bert.grid_features`) and
its box is the cell's normalised corners ``(x0, y0, x1, y1)`` in [0, 1], the way LXMERT
normally reads detector regions and their boxes.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import LxmertConfig, LxmertForQuestionAnswering

from captum_multimodal.datasets import ANSWERS, Vocabulary, add_special_tokens
from captum_multimodal.models.training import evaluate_on_grid_features, train_on_grid_features
from captum_multimodal.models.visual_bert import GRID


def lxmert_config(**overrides) -> dict:
    """Constructor arguments of the synthetic-data LXMERT (an ``LxmertConfig``): two
    language layers, one object-relationship layer, two cross-modality layers, hidden
    size 128, no dropout."""
    config = {
        "vocab_size": len(Vocabulary()),
        "hidden_size": 128,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": 32,
        "l_layers": 2,
        "r_layers": 1,
        "x_layers": 2,
        "visual_feat_dim": 64,
        "visual_pos_dim": 4,
        "num_qa_labels": len(ANSWERS),
        "pad_token_id": Vocabulary.pad_id,
    }
    return config | overrides


def build_lxmert(**config) -> LxmertForQuestionAnswering:
    """A randomly initialised ``LxmertForQuestionAnswering`` from :func:`lxmert_config`.

    Examples:
        >>> model = build_lxmert(**lxmert_config(hidden_size=16, intermediate_size=32))
        >>> type(model).__name__, model.config.x_layers
        ('LxmertForQuestionAnswering', 2)
    """
    return LxmertForQuestionAnswering(LxmertConfig(**config))


def grid_boxes(grid: int = GRID, device: torch.device | str | None = None) -> torch.Tensor:
    """The boxes of the grid cells, row-major like :func:`grid_features`: (grid², 4)
    normalised ``(x0, y0, x1, y1)``.

    Examples:
        >>> grid_boxes(2).tolist()
        [[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]]
    """
    edges = torch.arange(grid + 1, dtype=torch.float32, device=device) / grid
    y0, x0 = torch.meshgrid(edges[:-1], edges[:-1], indexing="ij")
    y1, x1 = torch.meshgrid(edges[1:], edges[1:], indexing="ij")
    return torch.stack([x0, y0, x1, y1], dim=-1).reshape(grid * grid, 4)


def lxmert_inputs(batch: dict, features: torch.Tensor) -> tuple[tuple, tuple]:
    """A :func:`~captum_multimodal.datasets.collate_vqa` batch and its grid features
    (:func:`~captum_multimodal.models.visual_bert.grid_features`) as LXMERT inputs, in
    :class:`~captum_multimodal.adapters.LxmertAdapter`'s order: ``(input_ids,
    visual_feats, visual_pos), (attention_mask, visual_attention_mask)``, the grid
    cells (:func:`grid_boxes`) as the boxes.

    Examples:
        >>> from captum_multimodal.datasets import SyntheticVQA, collate_vqa
        >>> data = SyntheticVQA(2, seed=5)
        >>> (ids, feats, pos), (mask, box_mask) = lxmert_inputs(
        ...     collate_vqa([data[0], data[1]]), torch.zeros(2, 16, 64))
        >>> feats.shape, pos.shape, box_mask.shape
        (torch.Size([2, 16, 64]), torch.Size([2, 16, 4]), torch.Size([2, 16]))
    """
    ids, mask = add_special_tokens(batch["question"], batch["attention_mask"])
    pos = grid_boxes(device=features.device).expand(len(features), -1, -1)
    box_mask = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
    return (ids, features, pos), (mask, box_mask)


def lxmert_answer(
    model: nn.Module,
    input_ids: torch.Tensor,
    visual_feats: torch.Tensor,
    visual_pos: torch.Tensor | None,
    attention_mask: torch.Tensor,
    visual_attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The answer logits (B, answers) of an LXMERT QA model; ``visual_pos`` None: the
    grid cells as boxes.

    Examples:
        >>> model = build_lxmert(**lxmert_config(l_layers=1, x_layers=1, r_layers=1))
        >>> ids = torch.tensor([[2, 5, 3]])
        >>> lxmert_answer(model, ids, torch.rand(1, 16, 64), None, torch.ones_like(ids)).shape
        torch.Size([1, 14])
    """
    if visual_pos is None:
        visual_pos = grid_boxes(device=visual_feats.device).expand(len(visual_feats), -1, -1)
    return model(
        input_ids=input_ids,
        visual_feats=visual_feats,
        visual_pos=visual_pos,
        attention_mask=attention_mask,
        visual_attention_mask=visual_attention_mask,
    ).question_answering_score


def evaluate_lxmert(model: nn.Module, backbone: nn.Module, batch: dict) -> dict[str, float]:
    """Accuracy of a synthetic-data LXMERT on a materialised batch, per template too."""
    return evaluate_on_grid_features(model, backbone, batch, lxmert_inputs, lxmert_answer)


def train_lxmert(
    backbone: nn.Module,
    images: int = 8000,
    questions_per_image: int = 8,
    steps: int = 3000,
    images_per_step: int = 16,
    eval_size: int = 2000,
    lr: float = 5e-4,
    seed: int = 0,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, float]]:
    """Trains the synthetic-data LXMERT on a frozen backbone's grid features and boxes.

    Same data as :func:`~captum_multimodal.models.training.train_visual_bert` (seed 0,
    held-out seed 1), cross-entropy on ``question_answering_score``, AdamW with a
    one-cycle schedule (10% warm-up).

    Args:
        backbone: Frozen image backbone (the shipped MLB's ``backbone``).
        images (int): Training images (rendered once).
        questions_per_image (int): Questions drawn per training image.
        steps (int): Optimiser steps.
        images_per_step (int): Images per step (all their questions are answered).
        eval_size (int): Held-out questions for the reported accuracy.
        lr (float): Peak learning rate.
        seed (int): Seed of the initialisation and the sampling.
        progress (bool): Show progress bars.

    Returns:
        The trained ``LxmertForQuestionAnswering`` in eval mode and its held-out metrics
        (``"accuracy"`` and ``"accuracy/<template>"``).

    Examples:
        >>> from captum_multimodal.models import load_pretrained
        >>> model, metrics = train_lxmert(load_pretrained("mlb").backbone, images=4,
        ...     questions_per_image=2, steps=1, images_per_step=2, eval_size=4, progress=False)
        >>> model.training, 0.0 <= metrics["accuracy"] <= 1.0
        (False, True)
    """
    return train_on_grid_features(
        lambda: build_lxmert(**lxmert_config()),
        lambda model, ids, feats, mask: lxmert_answer(model, ids, feats, None, mask),
        evaluate_lxmert,
        backbone,
        images=images,
        questions_per_image=questions_per_image,
        steps=steps,
        images_per_step=images_per_step,
        eval_size=eval_size,
        lr=lr,
        seed=seed,
        progress=progress,
        description="training LXMERT",
    )

"""A small Hugging Face VisualBERT for the synthetic VQA data.

The model is the unmodified ``transformers.VisualBertForQuestionAnswering``; its
visual tokens are a 4 x 4 grid of feature vectors (the shipped MLB's frozen image
backbone, average-pooled from 8 x 8; each token covers 16 x 16 pixels), the way
VisualBERT normally reads detector region features.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import VisualBertConfig, VisualBertForQuestionAnswering

from captum_multimodal._utils.modules import eval_mode
from captum_multimodal.datasets import ANSWERS, Vocabulary, add_special_tokens


def visual_bert_config(**overrides) -> dict:
    """Constructor arguments of the synthetic-data VisualBERT (a ``VisualBertConfig``)."""
    config = {
        "vocab_size": len(Vocabulary()),
        "hidden_size": 128,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "visual_embedding_dim": 64,
        "max_position_embeddings": 32,
        "num_labels": len(ANSWERS),
        "pad_token_id": Vocabulary.pad_id,
    }
    return config | overrides


def build_visual_bert(**config) -> VisualBertForQuestionAnswering:
    """A randomly initialised ``VisualBertForQuestionAnswering`` from :func:`visual_bert_config`."""
    return VisualBertForQuestionAnswering(VisualBertConfig(**config))


GRID = 4
"""Visual tokens per side."""


@torch.no_grad()
def grid_features(images: torch.Tensor, backbone: nn.Module, grid: int = GRID) -> torch.Tensor:
    """Visual tokens: a frozen backbone's map pooled to (B, C, grid, grid), as
    (B, grid * grid, C) in row-major order."""
    with eval_mode(backbone):
        pooled = nn.functional.adaptive_avg_pool2d(backbone(images), grid)
    return pooled.flatten(2).transpose(1, 2).contiguous()


def visual_bert_inputs(batch: dict, features: torch.Tensor) -> tuple[tuple, tuple]:
    """A :func:`~captum_multimodal.datasets.collate_vqa` batch and its grid features
    (:func:`grid_features`) as VisualBERT inputs, in :class:`VisualBertAdapter`'s order:
    ``(input_ids, visual_embeds), (attention_mask, visual_attention_mask)``.

    Examples:
        >>> from captum_multimodal.datasets import SyntheticVQA, collate_vqa
        >>> batch = collate_vqa([SyntheticVQA(2, seed=5)[i] for i in range(2)])
        >>> (ids, visual), (mask, visual_mask) = visual_bert_inputs(batch, torch.zeros(2, 16, 64))
        >>> ids.shape[1] == batch["question"].shape[1] + 2, visual_mask.shape
        (True, torch.Size([2, 16]))
    """
    ids, mask = add_special_tokens(batch["question"], batch["attention_mask"])
    visual_mask = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
    return (ids, features), (mask, visual_mask)


def visual_bert_answer(
    model: nn.Module,
    input_ids: torch.Tensor,
    visual_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    visual_attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The answer logits (B, answers) of a VisualBERT QA model (all visual tokens real
    when ``visual_attention_mask`` is None).

    Examples:
        >>> model = build_visual_bert(**visual_bert_config(num_hidden_layers=1))
        >>> ids = torch.tensor([[2, 5, 3]])
        >>> visual_bert_answer(model, ids, torch.rand(1, 16, 64), torch.ones_like(ids)).shape
        torch.Size([1, 14])
    """
    if visual_attention_mask is None:
        visual_attention_mask = torch.ones(
            visual_embeds.shape[:2], dtype=torch.long, device=visual_embeds.device
        )
    return model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        visual_embeds=visual_embeds,
        visual_attention_mask=visual_attention_mask,
    ).logits

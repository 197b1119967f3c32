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
from captum_multimodal.datasets import ANSWERS, Vocabulary


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

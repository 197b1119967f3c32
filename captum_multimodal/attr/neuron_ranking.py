"""Ranking fusion neurons by their sensitivity to the question (the seed's tables)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from captum_multimodal._utils.ranking import spearman


def check_top_ns(top_ns: Sequence[int], width: int, clip: bool) -> list[int]:
    """Validated neuron counts in [0, width], duplicates merged; above ``width`` they are
    clipped when ``clip`` and rejected otherwise."""
    counts = []
    for n in top_ns:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"top_n must be an int, got {type(n).__name__}")
        if n < 0 or (n > width and not clip):
            raise ValueError(f"top_n must be in [0, {width}] (the fusion width K), got {n}")
        counts.append(min(n, width))
    return list(dict.fromkeys(counts))


def top_mask(scores: torch.Tensor, n: int) -> torch.Tensor:
    """(B, K) 0/1 mask of each row's n largest scores."""
    mask = torch.zeros_like(scores)
    return mask.scatter(1, scores.topk(n, dim=1).indices, 1.0) if n else mask


def top_neurons(sensitivity: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The n most sensitive neurons per sample, largest first (the seed's tables 1-4).

    Args:
        sensitivity (Tensor): (B, K), e.g. from ``neuron_sensitivity``.
        n (int): How many, 0 <= n <= K.

    Returns:
        tuple: values (B, n) and indices (B, n).

    Examples:
        >>> values, indices = top_neurons(torch.tensor([[0.1, 3.0, -2.0, 1.0]]), 2)
        >>> indices
        tensor([[1, 3]])
    """
    if not isinstance(sensitivity, torch.Tensor) or sensitivity.dim() != 2:
        raise ValueError(
            "sensitivity must be a (B, K) tensor, "
            f"got {getattr(sensitivity, 'shape', type(sensitivity).__name__)}"
        )
    check_top_ns([n], sensitivity.shape[1], clip=False)
    values, indices = sensitivity.topk(n, dim=1)
    return values, indices


def rank_correlation(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of two sensitivity vectors per sample (tables 5-6).

    Ties get average ranks, as in ``scipy.stats.spearmanr``.

    Args:
        first (Tensor): (B, K).
        second (Tensor): (B, K).

    Returns:
        Tensor: (B,).

    Examples:
        >>> rank_correlation(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 3.0, 2.0]]))
        tensor([0.5000])
    """
    return spearman(first, second)

"""Agreement between two attribution maps of the same examples."""

from __future__ import annotations

import math

import torch

from captum_multimodal._utils.ranking import spearman


def top_fraction_iou(
    first: torch.Tensor, second: torch.Tensor, fraction: float = 0.2
) -> torch.Tensor:
    """Intersection over union of the top-``fraction`` entries of two maps per example.

    Each map keeps its ``ceil(fraction * N)`` highest entries (N entries per example,
    ties broken by position); the score is |A and B| / |A or B|.

    Args:
        first (Tensor): (B, ...) maps.
        second (Tensor): (B, ...) maps with as many entries per example.
        fraction (float): Share of entries kept, in (0, 1].

    Returns:
        Tensor: (B,) in [0, 1].

    Examples:
        >>> first = torch.tensor([[4.0, 3.0, 1.0, 0.0]])
        >>> second = torch.tensor([[4.0, 0.0, 3.0, 1.0]])
        >>> top_fraction_iou(first, second, 0.5)
        tensor([0.3333])
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    a, b = first.flatten(1), second.flatten(1)
    if a.shape != b.shape:
        raise ValueError(
            "first and second must have the same batch size and number of entries per "
            f"example, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    keep = math.ceil(fraction * a.shape[1])

    def top(maps: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(maps, dtype=torch.bool).scatter(
            1, maps.argsort(dim=1, descending=True, stable=True)[:, :keep], True
        )

    in_a, in_b = top(a), top(b)
    return (in_a & in_b).sum(1).float() / (in_a | in_b).sum(1).float()


def pair_similarity(
    first: torch.Tensor, second: torch.Tensor, fraction: float = 0.2
) -> dict[str, torch.Tensor]:
    """How alike the maps of two questions with the same answer are (lower = told apart).

    The comparison behind Question-masked Grad-CAM: plain Grad-CAM gives nearly the
    same map for two questions about one image with the same answer; a map that
    follows the question should differ. Both agreement measures, per pair.

    Args:
        first (Tensor): (B, ...) maps of the first question of each pair.
        second (Tensor): (B, ...) maps of the second question.
        fraction (float): Share of entries kept by :func:`top_fraction_iou`.

    Returns:
        dict: ``"spearman"`` (B,) rank correlation and ``"top_iou"`` (B,) IoU of the
        top-``fraction`` regions.

    Examples:
        >>> a, b = torch.tensor([[4.0, 3.0, 1.0, 0.0]]), torch.tensor([[0.0, 1.0, 3.0, 4.0]])
        >>> {k: v.tolist() for k, v in pair_similarity(a, b, 0.5).items()}
        {'spearman': [-1.0], 'top_iou': [0.0]}
    """
    return {
        "spearman": spearman(first, second),
        "top_iou": top_fraction_iou(first, second, fraction),
    }

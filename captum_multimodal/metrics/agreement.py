"""Agreement between two attribution maps of the same examples."""

from __future__ import annotations

import math

import torch


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

    Example:
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
            1, maps.topk(keep, dim=1).indices, True
        )

    in_a, in_b = top(a), top(b)
    return (in_a & in_b).sum(1).float() / (in_a | in_b).sum(1).float()

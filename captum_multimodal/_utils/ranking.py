"""Tie-aware rank correlation, shared by the metrics and the attribution helpers."""

from __future__ import annotations

import torch


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N along the last dimension, ties sharing their average rank."""
    ordered, _ = values.sort(dim=-1)
    below = torch.searchsorted(ordered, values.contiguous(), right=False)
    up_to = torch.searchsorted(ordered, values.contiguous(), right=True)
    return (below + up_to + 1).to(values.dtype) / 2


def spearman(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation between two maps of each example.

    Maps are flattened after the batch dimension; ties get their average rank
    (as ``scipy.stats.spearmanr`` does). A constant map gives NaN for its row.

    Args:
        first (Tensor): (B, ...) maps.
        second (Tensor): (B, ...) maps with as many entries per example.

    Returns:
        Tensor: (B,) correlations in [-1, 1].

    Examples:
        >>> spearman(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[10.0, 30.0, 20.0]]))
        tensor([0.5000])
    """
    if not isinstance(first, torch.Tensor) or not isinstance(second, torch.Tensor):
        raise TypeError("first and second must be tensors")
    a, b = first.flatten(1).double(), second.flatten(1).double()
    if a.shape != b.shape:
        raise ValueError(
            "first and second must have the same batch size and number of entries per "
            f"example, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(dim=1, keepdim=True), rb - rb.mean(dim=1, keepdim=True)
    correlation = (ra * rb).sum(dim=1) / (ra.norm(dim=1) * rb.norm(dim=1))
    return correlation.to(first.dtype if first.is_floating_point() else torch.float32)

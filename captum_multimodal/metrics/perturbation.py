"""Perturbation tests: remove tokens in relevance order and watch the accuracy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

PERTURBATION_STEPS = (0.0, 0.25, 0.5, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
"""Shares of a modality's tokens removed, as in Chefer et al.'s evaluation."""


def perturbation_curve(
    predict: Callable[[torch.Tensor], torch.Tensor],
    relevance: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor | None = None,
    most_relevant_first: bool = True,
    steps: Sequence[float] = PERTURBATION_STEPS,
) -> tuple[torch.Tensor, float]:
    """Accuracy while tokens are removed most- (or least-) relevant first.

    At each step, ``round(step * n)`` of each sample's n real tokens are removed
    (ties in relevance broken by position) and ``predict(keep)`` answers with the
    rest. Positive test (most relevant first): a lower area is better; negative
    test (least relevant first): a higher area is better.

    Args:
        predict: Maps a (B, N) bool mask of kept tokens to (B,) predicted classes.
        relevance (Tensor): (B, N) relevance of each token.
        labels (Tensor): (B,) correct classes.
        valid (Tensor, optional): (B, N) bool, real tokens; padding is never removed
            and never counted. Default: all real.
        most_relevant_first (bool): The order of removal.
        steps (sequence of float): Shares removed, from 0 to 1.

    Returns:
        tuple: accuracy per step (len(steps),) and the area under that curve by the
        trapezoid rule over ``steps`` (step 0 included).

    Example:
        >>> relevance = torch.tensor([[0.9, 0.1, 0.5]])
        >>> predict = lambda keep: keep[:, 0].long()  # right while token 0 is kept
        >>> labels = torch.tensor([1])
        >>> accuracy, area = perturbation_curve(predict, relevance, labels, steps=[0, 0.5, 1])
        >>> accuracy.tolist(), area
        ([1.0, 0.0, 0.0], 0.25)
    """
    if relevance.dim() != 2:
        raise ValueError(f"relevance must be (B, N), got {tuple(relevance.shape)}")
    if labels.shape != relevance.shape[:1]:
        raise ValueError(f"labels must be ({len(relevance)},), got {tuple(labels.shape)}")
    valid = torch.ones_like(relevance, dtype=torch.bool) if valid is None else valid.bool()
    fill = float("-inf") if most_relevant_first else float("inf")
    order = relevance.masked_fill(~valid, fill).argsort(
        dim=1, descending=most_relevant_first, stable=True
    )
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(relevance.shape[1], device=order.device).expand_as(order)
    )
    counts = valid.sum(dim=1, keepdim=True).float()
    accuracy = []
    for share in steps:
        removed = rank < torch.round(share * counts)
        with torch.no_grad():
            predictions = predict(valid & ~removed)
        accuracy.append((predictions == labels).float().mean())
    accuracy = torch.stack(accuracy)
    area = torch.trapezoid(accuracy, torch.tensor(list(steps), dtype=accuracy.dtype)).item()
    return accuracy, area

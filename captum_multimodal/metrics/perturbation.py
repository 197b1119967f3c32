"""Perturbation tests: remove tokens in relevance order and watch the accuracy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from captum_multimodal.metrics.localization import to_pixel_map

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

    Examples:
        >>> relevance = torch.tensor([[0.9, 0.1, 0.5]])
        >>> predict = lambda keep: keep[:, 0].long()  # right while token 0 is kept
        >>> labels = torch.tensor([1])
        >>> accuracy, area = perturbation_curve(predict, relevance, labels, steps=[0, 0.5, 1])
        >>> accuracy.tolist(), area
        ([1.0, 0.0, 0.0], 0.25)
    """
    correct = perturbation_correct(
        predict, relevance, labels, valid, most_relevant_first=most_relevant_first, steps=steps
    )
    accuracy = correct.float().mean(dim=0)
    grid = torch.tensor(list(steps), dtype=accuracy.dtype, device=accuracy.device)
    area = torch.trapezoid(accuracy, grid).item()
    return accuracy, area


def perturbation_correct(
    predict: Callable[[torch.Tensor], torch.Tensor],
    relevance: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor | None = None,
    most_relevant_first: bool = True,
    steps: Sequence[float] = PERTURBATION_STEPS,
) -> torch.Tensor:
    """Per example and step, whether the answer is still right: the curves of
    :func:`perturbation_curve` before averaging over examples (same arguments).

    Returns:
        Tensor: (B, len(steps)) bool; one ``predict`` call per step for the whole batch.

    Examples:
        >>> relevance = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
        >>> predict = lambda keep: keep[:, 0].long()  # right while token 0 is kept
        >>> perturbation_correct(predict, relevance, torch.tensor([1, 1]), steps=[0, 0.5])
        tensor([[ True, False],
                [ True,  True]])
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
    correct = []
    for share in steps:
        removed = rank < torch.round(share * counts)
        with torch.no_grad():
            predictions = predict(valid & ~removed)
        correct.append(predictions == labels)
    return torch.stack(correct, dim=1)


def pixel_perturbation_curve(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    attributions: torch.Tensor,
    target: torch.Tensor,
    mode: str = "deletion",
    baseline: float | torch.Tensor = 0.0,
    steps: Sequence[float] = PERTURBATION_STEPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves of pixel maps (Petsiuk et al., RISE).

    Pixels are ranked by the map (channels summed, upsampled with
    :func:`~captum_multimodal.metrics.localization.to_pixel_map`; ties broken by
    position). Deletion replaces the top ``step`` share of pixels by ``baseline``
    (a lower area is better); insertion starts from ``baseline`` and puts the top
    share back (a higher area is better). The score at each step is the softmax
    probability of ``target``. One forward per step for the whole batch.

    Args:
        forward: Maps (B, C, H, W) images to (B, classes) logits (bind the other
            inputs of a multimodal model, e.g. ``lambda x: model(x, question, mask)``).
        images (Tensor): (B, C, H, W) images.
        attributions (Tensor): (B, H, W), (B, C, H, W) or lower-resolution maps.
        target (Tensor): (B,) class whose probability is tracked.
        mode (str): ``"deletion"`` or ``"insertion"``.
        baseline (float or Tensor): The value of removed pixels (broadcast to images).
        steps (sequence of float): Shares of pixels deleted or inserted, from 0 to 1.

    Returns:
        tuple: (B, len(steps)) probabilities and (B,) areas under the curves by the
        trapezoid rule over ``steps``.

    Examples:
        >>> images = torch.tensor([[[[1.0, 0.0]]]])  # one 1 x 2 image
        >>> forward = lambda x: torch.stack([torch.zeros(len(x)), 10 * x[:, 0, 0, 0]], 1)
        >>> probs, area = pixel_perturbation_curve(
        ...     forward, images, torch.tensor([[[5.0, 1.0]]]), torch.tensor([1]), steps=[0, 0.5, 1])
        >>> [round(p, 3) for p in probs[0].tolist()], round(area.item(), 3)
        ([1.0, 0.5, 0.5], 0.625)
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f'mode must be "deletion" or "insertion", got {mode!r}')
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    if target.shape != images.shape[:1]:
        raise ValueError(f"target must be ({len(images)},), got {tuple(target.shape)}")
    scores = to_pixel_map(attributions, tuple(images.shape[-2:])).flatten(1)
    order = scores.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(scores.shape[1], device=order.device).expand_as(order)
    )
    rank = rank.view(len(images), 1, *images.shape[-2:])
    filler = torch.as_tensor(baseline, dtype=images.dtype, device=images.device).expand_as(images)
    probabilities = []
    for share in steps:
        top = rank < round(share * scores.shape[1])
        changed = top if mode == "deletion" else ~top
        with torch.no_grad():
            logits = forward(torch.where(changed, filler, images))
        probabilities.append(logits.softmax(dim=1).gather(1, target[:, None])[:, 0])
    probabilities = torch.stack(probabilities, dim=1)
    grid = torch.tensor(list(steps), dtype=probabilities.dtype, device=probabilities.device)
    return probabilities, torch.trapezoid(probabilities, grid, dim=1)

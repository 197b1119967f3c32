"""Localisation of attribution maps against ground-truth masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_pixel_map(attributions: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Brings a map to one score per pixel, (B, H, W).

    (B, C, h, w) maps are summed over channels; maps of another resolution (a
    Grad-CAM layer map, say) are upsampled bilinearly to ``size``.

    Examples:
        >>> to_pixel_map(torch.ones(2, 3, 4, 4), (8, 8)).shape
        torch.Size([2, 8, 8])
    """
    if not isinstance(attributions, torch.Tensor):
        raise TypeError(f"attributions must be a tensor, got {type(attributions).__name__}")
    if attributions.dim() not in (3, 4):
        raise ValueError(
            "attributions must have shape (B, H, W) or (B, C, H, W), "
            f"got {tuple(attributions.shape)}"
        )
    maps = attributions.sum(dim=1) if attributions.dim() == 4 else attributions
    if tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(
            maps[:, None].float(), size=size, mode="bilinear", align_corners=False
        )[:, 0]
    return maps


def grow_mask(masks: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Dilates (B, H, W) boolean masks by ``tolerance`` pixels (square neighbourhood).

    Examples:
        >>> mask = torch.zeros(1, 5, 5, dtype=torch.bool); mask[0, 2, 2] = True
        >>> int(grow_mask(mask, 1).sum())
        9
    """
    region = masks.bool()
    if tolerance == 0:
        return region
    grown = F.max_pool2d(region[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)
    return grown[:, 0].bool()


def check_masks(attributions: torch.Tensor, masks: torch.Tensor) -> None:
    """Ground-truth masks must be (B, H, W) with the maps' batch size."""
    if not isinstance(masks, torch.Tensor) or masks.dim() != 3:
        raise ValueError(
            f"masks must be a (B, H, W) tensor, got {getattr(masks, 'shape', type(masks))}"
        )
    if len(attributions) != len(masks):
        raise ValueError(
            f"attributions and masks must have the same batch size, got {len(attributions)} "
            f"and {len(masks)}"
        )


def pointing_game(
    attributions: torch.Tensor, masks: torch.Tensor, tolerance: int = 0
) -> torch.Tensor:
    """Whether each map's maximum falls on the ground-truth object.

    Zhang et al.'s pointing game: a hit when the highest-scoring pixel lies inside
    the mask, grown by ``tolerance`` pixels. Maps are first brought to the mask's
    resolution with :func:`to_pixel_map` (channels summed, then upsampled). Reduce
    signed maps yourself first if only their magnitude should count
    (``attributions.abs()``).

    Args:
        attributions (Tensor): (B, H, W), (B, C, H, W) or a lower-resolution map.
        masks (Tensor): (B, H, W) bool, the referred object.
        tolerance (int): Pixels the mask is dilated by (square neighbourhood).

    Returns:
        Tensor: (B,) float, 1.0 for a hit, 0.0 for a miss and NaN where the mask is
        empty (nothing to point at); average with ``torch.nanmean``. A constant map
        (all zero, say) points at its first pixel: it scores as a miss unless the object
        covers that pixel, so methods that often return empty maps are not rewarded.

    Examples:
        >>> maps = torch.zeros(1, 4, 4); maps[0, 1, 2] = 1.0
        >>> masks = torch.zeros(1, 4, 4, dtype=torch.bool); masks[0, 1, 2] = True
        >>> pointing_game(maps, masks)
        tensor([1.])
    """
    check_masks(attributions, masks)
    if not isinstance(tolerance, int) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative int, got {tolerance!r}")
    maps = to_pixel_map(attributions, tuple(masks.shape[-2:]))
    region = masks.bool()
    if tolerance:
        grown = F.max_pool2d(
            region[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance
        )
        region = grown[:, 0].bool()
    peak = maps.flatten(1).argmax(dim=1)
    hits = region.flatten(1).gather(1, peak[:, None])[:, 0].float()
    return torch.where(masks.flatten(1).any(dim=1), hits, torch.full_like(hits, float("nan")))


def energy_pointing_game(attributions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's positive mass that falls on the ground-truth object.

    The energy-based pointing game of Wang et al. (Score-CAM): negative scores are
    clamped to 0 (reduce signed maps first, e.g. ``attributions.abs()``, if their
    magnitude should count), maps are brought to the mask's resolution with
    :func:`to_pixel_map`, and the score is the mass inside the mask over the total.

    Args:
        attributions (Tensor): (B, H, W), (B, C, H, W) or a lower-resolution map.
        masks (Tensor): (B, H, W) bool, the referred object.

    Returns:
        Tensor: (B,) in [0, 1]; NaN where the mask is empty or the map has no
        positive mass. A random map scores about the mask's share of the image.

    Examples:
        >>> maps = torch.tensor([[[3.0, 1.0], [0.0, -2.0]]])
        >>> masks = torch.tensor([[[True, False], [False, True]]])
        >>> energy_pointing_game(maps, masks)
        tensor([0.7500])
    """
    check_masks(attributions, masks)
    mass = to_pixel_map(attributions, tuple(masks.shape[-2:])).clamp(min=0).flatten(1)
    inside = (mass * masks.flatten(1).to(mass.dtype)).sum(dim=1)
    total = mass.sum(dim=1)
    defined = (total > 0) & masks.flatten(1).any(dim=1)
    return torch.where(defined, inside / total.clamp(min=torch.finfo(mass.dtype).tiny), torch.nan)


def key_token_rank(
    relevance: torch.Tensor, key_tokens: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Rank of the best-scoring key token among each example's real tokens.

    Rank 1 means a key token (the word that identifies the referred object, say)
    has the highest relevance of all real tokens; ties count against the key token
    (a key token tied with another word for first place gets rank 2). ``rank == 1``
    is the key-token hit.

    Args:
        relevance (Tensor): (B, T) token relevance.
        key_tokens (Tensor): (B, T) bool, the key tokens.
        valid (Tensor, optional): (B, T) bool, real tokens; default all.

    Returns:
        Tensor: (B,) float ranks starting at 1; NaN where an example has no real key
        token.

    Examples:
        >>> relevance = torch.tensor([[0.1, 0.7, 0.5, 0.9], [0.4, 0.2, 0.3, 0.0]])
        >>> key = torch.tensor([[False, True, True, False], [True, False, False, False]])
        >>> key_token_rank(relevance, key)
        tensor([2., 1.])
    """
    if relevance.dim() != 2 or key_tokens.shape != relevance.shape:
        raise ValueError(
            "relevance and key_tokens must both be (B, T) with the same shape, got "
            f"{tuple(relevance.shape)} and {tuple(key_tokens.shape)}"
        )
    valid = torch.ones_like(key_tokens, dtype=torch.bool) if valid is None else valid.bool()
    if valid.shape != relevance.shape:
        raise ValueError(f"valid must be {tuple(relevance.shape)}, got {tuple(valid.shape)}")
    keys = key_tokens.bool() & valid
    best = relevance.masked_fill(~keys, float("-inf")).max(dim=1, keepdim=True).values
    beaten = ((relevance >= best) & valid & ~keys).sum(dim=1).float()
    return torch.where(keys.any(dim=1), beaten + 1, torch.nan)

"""Token relevances of an image laid out on the model's grid of patches or features."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def image_grid(
    image_rel: torch.Tensor, grid: tuple[int, int], size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Row-major relevances (B, gh * gw) as the grid (B, gh, gw), or bilinearly
    upsampled to ``size = (H, W)`` as (B, H, W).

    Examples:
        >>> image_grid(torch.arange(6.0)[None], (2, 3))
        tensor([[[0., 1., 2.],
                 [3., 4., 5.]]])
        >>> image_grid(torch.ones(1, 6), (2, 3), size=(4, 6)).shape
        torch.Size([1, 4, 6])
    """
    rows, columns = grid
    if image_rel.dim() != 2 or image_rel.shape[1] != rows * columns:
        raise ValueError(
            f"image_rel must be (B, {rows * columns}) relevances of the {rows}x{columns} grid, "
            f"got {tuple(image_rel.shape)}"
        )
    grid_rel = image_rel.reshape(len(image_rel), rows, columns)
    if size is None:
        return grid_rel
    return F.interpolate(grid_rel[:, None], size=tuple(size), mode="bilinear")[:, 0]

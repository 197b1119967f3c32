"""A grid of examples (rows) by attribution methods (columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.figure import Figure

from captum_multimodal.visualization.image import image_heatmap, image_to_numpy


def attribution_grid(
    images: torch.Tensor,
    attributions: Mapping[str, torch.Tensor],
    questions: Sequence[str] | None = None,
    masks: torch.Tensor | None = None,
    signs: Mapping[str, str] | None = None,
    cell_size: float = 2.2,
) -> Figure:
    """Draws each example's image, its ground-truth mask and one heat map per method.

    Args:
        images (Tensor): (B, 3, H, W) in [0, 1].
        attributions (Mapping[str, Tensor]): Method name to its maps, each (B, C, H, W),
            (B, H, W) or coarser (B, h, w) (upsampled).
        questions (sequence of str, optional): One caption per row (question and answer).
        masks (Tensor, optional): (B, H, W) ground truth, drawn as its own column.
        signs (Mapping[str, str], optional): Captum ``sign`` per method
            (default ``"absolute_value"``).
        cell_size (float): Inches per cell.

    Returns:
        Figure: B rows, 1 + (mask column) + len(attributions) columns.

    Examples:
        >>> fig = attribution_grid(torch.rand(2, 3, 8, 8), {"saliency": torch.rand(2, 3, 8, 8)})
        >>> len(fig.axes)
        4
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be a (B, 3, H, W) tensor, got {getattr(images, 'shape', images)}"
        )
    batch = len(images)
    for name, maps in attributions.items():
        if len(maps) != batch:
            raise ValueError(
                f"attributions[{name!r}] must have {batch} rows like images, got {len(maps)}"
            )
    if questions is not None and len(questions) != batch:
        raise ValueError(f"questions must have {batch} entries like images, got {len(questions)}")
    if masks is not None and (masks.dim() != 3 or len(masks) != batch):
        raise ValueError(f"masks must be a ({batch}, H, W) tensor, got {tuple(masks.shape)}")
    signs = signs or {}
    columns = 1 + (masks is not None) + len(attributions)
    figure = Figure(figsize=(cell_size * columns, cell_size * batch + 0.4))
    axes = figure.subplots(batch, columns, squeeze=False)
    for row in range(batch):
        cells = iter(axes[row])
        ax = next(cells)
        ax.imshow(image_to_numpy(images[row]))
        ax.set_xticks([])
        ax.set_yticks([])
        if questions is not None:
            ax.set_title(questions[row], fontsize=7)
        if masks is not None:
            ax = next(cells)
            ax.imshow(masks[row].detach().cpu().float().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title("ground truth" if row == 0 else None, fontsize=8)
        for name, maps in attributions.items():
            image_heatmap(
                images[row],
                maps[row],
                sign=signs.get(name, "absolute_value"),
                ax=next(cells),
                title=name if row == 0 else None,
            )
    figure.tight_layout()
    return figure

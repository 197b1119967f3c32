"""Heat maps of attributions over images, drawn with Captum's own image visualiser."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import visualization as captum_viz
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def image_to_numpy(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (H, W, 3) tensor in [0, 1] to an (H, W, 3) float array, clipped to [0, 1].

    Examples:
        >>> array = image_to_numpy(torch.full((3, 4, 5), 2.0))
        >>> array.shape, float(array.max())
        ((4, 5, 3), 1.0)
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError(
            f"image must be a (3, H, W) tensor, got {getattr(image, 'shape', type(image).__name__)}"
        )
    array = image.detach().float().cpu()
    if array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.permute(1, 2, 0)
    return array.clamp(0, 1).numpy()


def attribution_to_numpy(attribution: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """An attribution of shape (C, H, W), (H, W) or a coarser (h, w) as an (H, W, C) array.

    Coarse maps (from a Grad-CAM layer, say) are upsampled bilinearly to ``size``.

    Examples:
        >>> attribution_to_numpy(torch.rand(4, 4), (16, 16)).shape
        (16, 16, 1)
    """
    if not isinstance(attribution, torch.Tensor) or attribution.dim() not in (2, 3):
        raise ValueError(
            "attribution must be a (C, H, W) or (H, W) tensor, got "
            f"{getattr(attribution, 'shape', type(attribution).__name__)}"
        )
    values = attribution.detach().float().cpu()
    values = values[None] if values.dim() == 2 else values
    if tuple(values.shape[-2:]) != tuple(size):
        values = F.interpolate(values[None], size=size, mode="bilinear", align_corners=False)[0]
    return values.permute(1, 2, 0).numpy()


def image_heatmap(
    image: torch.Tensor,
    attribution: torch.Tensor,
    sign: str = "absolute_value",
    method: str = "blended_heat_map",
    ax: Axes | None = None,
    title: str | None = None,
    outlier_perc: float = 2,
    alpha_overlay: float = 0.6,
    cmap: str | None = None,
) -> Figure:
    """Draws an attribution over its image.

    Follows :func:`captum.attr.visualization.visualize_image_attr` (which draws it):
    channels are summed, the scale is set by the ``100 - outlier_perc`` percentile,
    and ``sign`` is one of ``"all"``, ``"positive"``, ``"negative"``,
    ``"absolute_value"``.

    Args:
        image (Tensor): (3, H, W) in [0, 1].
        attribution (Tensor): (C, H, W), (H, W), or a coarser (h, w) map, upsampled.
        sign (str): Which part of the attribution to show.
        method (str): Captum's method: ``"blended_heat_map"``, ``"heat_map"``, ...
        ax (Axes, optional): Draw here; a new figure is made otherwise.
        title (str, optional): Axes title.
        outlier_perc (float): Percentile clipped at the top of the scale.
        alpha_overlay (float): Opacity of the heat map over the image.
        cmap (str, optional): Colour map; default ``"turbo"`` for one-signed maps
            (``"positive"``, ``"negative"``, ``"absolute_value"``), Captum's own for ``"all"``.

    Returns:
        Figure: The figure holding the axes.

    Examples:
        >>> fig = image_heatmap(torch.rand(3, 16, 16), torch.randn(3, 16, 16))
        >>> len(fig.axes)
        1
    """
    picture = image_to_numpy(image)
    values = attribution_to_numpy(attribution, picture.shape[:2])
    if ax is None:
        figure = Figure(figsize=(3, 3))
        ax = figure.add_subplot()
    if not np.any(values):
        # Captum cannot scale an all-zero map; show the image alone rather than a warning.
        ax.imshow(picture)
        ax.set_xticks([])
        ax.set_yticks([])
        if title:
            ax.set_title(title)
        return ax.figure
    captum_viz.visualize_image_attr(
        values,
        picture,
        method=method,
        sign=sign,
        plt_fig_axis=(ax.figure, ax),
        outlier_perc=outlier_perc,
        alpha_overlay=alpha_overlay,
        cmap=cmap if cmap is not None or sign == "all" else "turbo",
        title=title,
        use_pyplot=False,
    )
    return ax.figure

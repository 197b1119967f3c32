"""The n-sweep of question-masked Grad-CAM for one image and several questions."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from matplotlib.figure import Figure

from captum_multimodal.visualization.image import image_heatmap, image_to_numpy


def sweep_grid(
    image: torch.Tensor,
    sweeps: Mapping[str, Mapping[int, torch.Tensor]],
    full_width: int | None = None,
    cell_size: float = 1.8,
) -> Figure:
    """One row per question: the image, then the masked Grad-CAM map for each ``top_n``.

    Two rows with the same answer make the paper's comparison: plain Grad-CAM (the
    column ``top_n = K``) looks alike for both questions; the masked maps should not.

    Args:
        image (Tensor): (3, H, W) in [0, 1].
        sweeps (Mapping[str, Mapping[int, Tensor]]): Row caption (question and
            answer) to ``{top_n: map}``, each map (1, h, w) or (h, w), e.g. one sample
            of :meth:`QuestionMaskedGradCAM.sweep`. Every row has the same ``top_n`` keys.
        full_width (int, optional): K; its column is titled as plain Grad-CAM.
        cell_size (float): Inches per cell.

    Returns:
        Figure

    Examples:
        >>> maps = {n: torch.rand(1, 4, 4) for n in (5, 10)}
        >>> fig = sweep_grid(torch.rand(3, 16, 16), {"q1": maps, "q2": maps}, full_width=10)
        >>> len(fig.axes)
        6
    """
    if not sweeps:
        raise ValueError("sweeps must hold at least one question")
    counts = list(next(iter(sweeps.values())))
    for caption, maps in sweeps.items():
        if list(maps) != counts:
            raise ValueError(
                f"sweeps[{caption!r}] must have the top_n values {counts}, got {list(maps)}"
            )
    figure = Figure(figsize=(cell_size * (len(counts) + 1), cell_size * len(sweeps) + 0.5))
    axes = figure.subplots(len(sweeps), len(counts) + 1, squeeze=False)
    for row, (caption, maps) in enumerate(sweeps.items()):
        axes[row, 0].imshow(image_to_numpy(image))
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_title(caption, fontsize=7)
        for column, n in enumerate(counts, start=1):
            cam = maps[n][0] if maps[n].dim() == 3 else maps[n]
            title = "Grad-CAM (n = K)" if n == full_width else f"n = {n}"
            image_heatmap(image, cam, sign="positive", ax=axes[row, column], title=title)
            axes[row, column].title.set_fontsize(8)
    figure.tight_layout()
    return figure

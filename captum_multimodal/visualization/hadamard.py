"""The figure layout of Kim & Zhang: image, attention maps, Hadamard explanation, question."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from captum_multimodal.visualization.image import image_heatmap, image_to_numpy
from captum_multimodal.visualization.text import token_strip


def hadamard_figure(
    image: torch.Tensor,
    attention_maps: torch.Tensor,
    visual_attr: torch.Tensor,
    tokens: Sequence[str],
    token_z: torch.Tensor | Sequence[float],
    title: str | None = None,
    cell_size: float = 2.0,
) -> Figure:
    """One example in the paper's layout (its Figure 2).

    Top row: the input image, each attention map alpha_g over the image, and the
    visual explanation (absolute value, blended over the image). Bottom row: the
    question, each word coloured by its z-score (red high, blue low).

    Args:
        image (Tensor): (3, H, W) in [0, 1].
        attention_maps (Tensor): (G, S, S), the model's attention alpha.
        visual_attr (Tensor): (C, H, W), e.g. from ``HadamardDeviation``.
        tokens (sequence of str): The question's words.
        token_z (Tensor): (len(tokens),) scores, e.g. from ``token_scores``.
        title (str, optional): Figure title (the answer, say).
        cell_size (float): Inches per image panel.

    Returns:
        Figure

    Examples:
        >>> fig = hadamard_figure(torch.rand(3, 16, 16), torch.rand(2, 4, 4),
        ...                       torch.randn(3, 16, 16), ["what", "color", "?"], [0.0, 1.0, -1.0])
        >>> len(fig.axes)
        5
    """
    if not isinstance(attention_maps, torch.Tensor) or attention_maps.dim() != 3:
        raise ValueError(
            "attention_maps must be a (G, S, S) tensor, "
            f"got {getattr(attention_maps, 'shape', type(attention_maps).__name__)}"
        )
    glimpses = len(attention_maps)
    columns = glimpses + 2
    figure = Figure(figsize=(cell_size * columns, cell_size + 0.9))
    grid = figure.add_gridspec(2, columns, height_ratios=[cell_size, 0.5])
    ax = figure.add_subplot(grid[0, 0])
    ax.imshow(image_to_numpy(image))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("input", fontsize=9)
    for g in range(glimpses):
        image_heatmap(
            image,
            attention_maps[g],
            sign="positive",
            ax=figure.add_subplot(grid[0, 1 + g]),
            title=f"attention α{g + 1}",
            outlier_perc=0,
        )
    image_heatmap(
        image,
        visual_attr,
        sign="absolute_value",
        ax=figure.add_subplot(grid[0, columns - 1]),
        title="Hadamard ∇v",
    )
    token_strip(tokens, token_z, ax=figure.add_subplot(grid[1, :]))
    if title:
        figure.suptitle(title, fontsize=10)
    return figure

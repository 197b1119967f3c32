"""Token strips: the words of a question coloured by a score each."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure


def token_strip(
    tokens: Sequence[str],
    scores: torch.Tensor | Sequence[float],
    ax: Axes | None = None,
    cmap: str = "bwr",
    title: str | None = None,
    symmetric: bool = True,
) -> Figure:
    """Draws tokens left to right, each on a box coloured by its score.

    With ``symmetric=True`` the colour scale is centred on 0 (blue low, white 0,
    red high), which suits z-scores and signed attributions.

    Args:
        tokens (sequence of str): The T words.
        scores: (T,) one score per word.
        ax (Axes, optional): Draw here; a new figure is made otherwise.
        cmap (str): A matplotlib colour map.
        title (str, optional): Axes title.
        symmetric (bool): Centre the colour scale on 0.

    Returns:
        Figure: The figure holding the axes.

    Examples:
        >>> fig = token_strip(["what", "color", "?"], [0.1, 2.0, -1.0])
        >>> len(fig.axes)
        1
    """
    values = np.asarray(
        scores.detach().float().cpu() if isinstance(scores, torch.Tensor) else scores, dtype=float
    ).reshape(-1)
    if len(values) != len(tokens):
        raise ValueError(f"scores must have one value per token ({len(tokens)}), got {len(values)}")
    if ax is None:
        figure = Figure(figsize=(max(2.0, 0.8 * len(tokens)), 0.8))
        ax = figure.add_subplot()
    limit = float(np.abs(values).max()) if len(values) else 1.0
    limit = limit or 1.0
    norm = Normalize(-limit, limit) if symmetric else Normalize(values.min(), values.max() or 1.0)
    colormap = matplotlib.colormaps[cmap]
    widths = np.array([max(len(t), 1) + 1.0 for t in tokens])
    starts = np.concatenate([[0.0], np.cumsum(widths)[:-1]])
    for token, value, start, width in zip(tokens, values, starts, widths, strict=True):
        ax.add_patch(
            matplotlib.patches.Rectangle((start, 0), width - 0.2, 1, color=colormap(norm(value)))
        )
        ax.text(start + (width - 0.2) / 2, 0.5, token, ha="center", va="center", fontsize=9)
    ax.set_xlim(0, max(widths.sum(), 1.0))
    ax.set_ylim(0, 1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure

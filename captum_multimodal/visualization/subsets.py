"""Bar charts of per-subset quantities (relevances, variance shares) of multimodal models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure


def subset_bars(
    panels: Mapping[str, Mapping[str, torch.Tensor | Sequence[float]]],
    subsets: Sequence[str],
    ylabel: str = "share",
    panel_size: tuple[float, float] = (3.2, 2.4),
) -> Figure:
    """One panel per entry of ``panels``, grouped bars per subset, one series per model.

    Use it for the variance shares or relevances of :class:`TensorFusionDisentangle`
    (``variance_share``) and :class:`ModalityWeights` (``relevance``): a panel per
    dataset, a series per normaliser.

    Args:
        panels (Mapping[str, Mapping[str, Tensor or Sequence[float]]]): Panel title to
            ``{series name: values}``, each with one value per subset.
        subsets (Sequence[str]): Bar-group labels (e.g. ``"1"``, ``"12"``, ...).
        ylabel (str): Label of the y axes.
        panel_size (tuple of float): Inches per panel.

    Returns:
        Figure

    Examples:
        >>> fig = subset_bars({"data A": {"IBN": [0.9, 0.1, 0.0], "none": [0.2, 0.3, 0.5]}},
        ...                   ["1", "2", "12"])
        >>> len(fig.axes), len(fig.axes[0].patches)
        (1, 6)
    """
    if not panels:
        raise ValueError("panels must hold at least one panel")
    for title, series in panels.items():
        for name, values in series.items():
            if len(values) != len(subsets):
                raise ValueError(
                    f"panels[{title!r}][{name!r}] must have one value per subset "
                    f"({len(subsets)}), got {len(values)}"
                )
    figure = Figure(figsize=(panel_size[0] * len(panels), panel_size[1]), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    positions = np.arange(len(subsets))
    for ax, (title, series) in zip(axes, panels.items(), strict=True):
        width = 0.8 / max(len(series), 1)
        for index, (name, values) in enumerate(series.items()):
            values = torch.as_tensor(values, dtype=torch.float64).cpu().numpy()
            ax.bar(positions + (index - (len(series) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(positions, list(subsets))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("subset of modalities", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_ylim(0, 1.05)
    axes[0].legend(fontsize=7)
    return figure

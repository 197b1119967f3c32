"""Matplotlib figures of attributions: image overlays, token strips and grids."""

from captum_multimodal.visualization.grid import attribution_grid
from captum_multimodal.visualization.hadamard import hadamard_figure
from captum_multimodal.visualization.image import (
    attribution_to_numpy,
    image_heatmap,
    image_to_numpy,
)
from captum_multimodal.visualization.subsets import subset_bars
from captum_multimodal.visualization.sweep import sweep_grid
from captum_multimodal.visualization.text import token_strip

__all__ = [
    "attribution_grid",
    "attribution_to_numpy",
    "hadamard_figure",
    "image_heatmap",
    "image_to_numpy",
    "subset_bars",
    "sweep_grid",
    "token_strip",
]

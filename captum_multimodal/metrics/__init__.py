"""Faithfulness, localisation and agreement metrics for attribution maps."""

from captum_multimodal.metrics.agreement import spearman
from captum_multimodal.metrics.localization import pointing_game, to_pixel_map

__all__ = ["pointing_game", "spearman", "to_pixel_map"]

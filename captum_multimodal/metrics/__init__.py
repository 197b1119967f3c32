"""Faithfulness, localisation and agreement metrics for attribution maps."""

from captum_multimodal._utils.ranking import spearman
from captum_multimodal.metrics.agreement import top_fraction_iou
from captum_multimodal.metrics.localization import grow_mask, pointing_game, to_pixel_map

__all__ = ["grow_mask", "pointing_game", "spearman", "to_pixel_map", "top_fraction_iou"]

"""Faithfulness, localisation and agreement metrics for attribution maps."""

from captum_multimodal._utils.ranking import spearman
from captum_multimodal.metrics.agreement import top_fraction_iou
from captum_multimodal.metrics.localization import grow_mask, pointing_game, to_pixel_map
from captum_multimodal.metrics.perturbation import PERTURBATION_STEPS, perturbation_curve

__all__ = [
    "PERTURBATION_STEPS",
    "grow_mask",
    "perturbation_curve",
    "pointing_game",
    "spearman",
    "to_pixel_map",
    "top_fraction_iou",
]

"""Faithfulness, localisation and agreement metrics for attribution maps."""

from captum_multimodal._utils.ranking import spearman
from captum_multimodal.metrics.agreement import pair_similarity, top_fraction_iou
from captum_multimodal.metrics.localization import (
    energy_pointing_game,
    grow_mask,
    key_token_rank,
    pointing_game,
    to_pixel_map,
)
from captum_multimodal.metrics.perturbation import (
    PERTURBATION_STEPS,
    perturbation_correct,
    perturbation_curve,
    pixel_perturbation_curve,
)

__all__ = [
    "PERTURBATION_STEPS",
    "energy_pointing_game",
    "grow_mask",
    "key_token_rank",
    "pair_similarity",
    "perturbation_correct",
    "perturbation_curve",
    "pixel_perturbation_curve",
    "pointing_game",
    "spearman",
    "to_pixel_map",
    "top_fraction_iou",
]

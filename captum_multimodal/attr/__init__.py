"""Attribution methods, one per module, written against sites rather than model families."""

from captum_multimodal.attr.hadamard_deviation import (
    HadamardDeviation,
    standardize_image,
    token_scores,
)
from captum_multimodal.attr.question_masked_grad_cam import (
    QuestionMaskedGradCAM,
    rank_correlation,
    top_neurons,
)

__all__ = [
    "HadamardDeviation",
    "QuestionMaskedGradCAM",
    "rank_correlation",
    "standardize_image",
    "token_scores",
    "top_neurons",
]

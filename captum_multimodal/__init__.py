"""captum-multimodal: Captum attribution methods for multimodal PyTorch models."""

from captum_multimodal.adapters import MLBAdapter
from captum_multimodal.attr import (
    HadamardDeviation,
    QuestionMaskedGradCAM,
    rank_correlation,
    standardize_image,
    token_scores,
    top_neurons,
)

__version__ = "0.1.0"

__all__ = [
    "HadamardDeviation",
    "MLBAdapter",
    "QuestionMaskedGradCAM",
    "__version__",
    "rank_correlation",
    "standardize_image",
    "token_scores",
    "top_neurons",
]

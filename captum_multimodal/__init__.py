"""captum-multimodal: Captum attribution methods for multimodal PyTorch models."""

from captum_multimodal.adapters import EncoderAdapter, MLBAdapter, VisualBertAdapter
from captum_multimodal.attr import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    HadamardDeviation,
    QuestionMaskedGradCAM,
    RawAttention,
    rank_correlation,
    standardize_image,
    token_scores,
    top_neurons,
)

__version__ = "0.1.0"

__all__ = [
    "AttentionGradCAM",
    "AttentionRollout",
    "CoAttentionRelevancy",
    "EncoderAdapter",
    "HadamardDeviation",
    "MLBAdapter",
    "QuestionMaskedGradCAM",
    "RawAttention",
    "VisualBertAdapter",
    "__version__",
    "rank_correlation",
    "standardize_image",
    "token_scores",
    "top_neurons",
]

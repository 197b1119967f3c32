"""captum-multimodal: Captum attribution methods for multimodal PyTorch models."""

from captum_multimodal.adapters import (
    AttentionRolesAdapter,
    BlipItmAdapter,
    ClipAdapter,
    DetrAdapter,
    EncoderAdapter,
    LxmertAdapter,
    MLBAdapter,
    ViltAdapter,
    VisualBertAdapter,
)
from captum_multimodal.attr import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    HadamardDeviation,
    ModalityInteractions,
    QuestionMaskedGradCAM,
    RawAttention,
    TensorFusionDisentangle,
    rank_correlation,
    standardize_image,
    token_scores,
    top_neurons,
)

__version__ = "0.1.0"

__all__ = [
    "AttentionGradCAM",
    "AttentionRolesAdapter",
    "AttentionRollout",
    "BlipItmAdapter",
    "ClipAdapter",
    "CoAttentionRelevancy",
    "DetrAdapter",
    "EncoderAdapter",
    "HadamardDeviation",
    "LxmertAdapter",
    "MLBAdapter",
    "ModalityInteractions",
    "QuestionMaskedGradCAM",
    "RawAttention",
    "TensorFusionDisentangle",
    "ViltAdapter",
    "VisualBertAdapter",
    "__version__",
    "rank_correlation",
    "standardize_image",
    "token_scores",
    "top_neurons",
]

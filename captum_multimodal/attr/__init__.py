"""Attribution methods, one per module, written against sites rather than model families."""

from captum_multimodal.attr.attention_grad_cam import AttentionGradCAM
from captum_multimodal.attr.attention_rollout import AttentionRollout
from captum_multimodal.attr.coattention_relevancy import CoAttentionRelevancy
from captum_multimodal.attr.hadamard_deviation import (
    HadamardDeviation,
    standardize_image,
    token_scores,
)
from captum_multimodal.attr.modality_interactions import ModalityInteractions
from captum_multimodal.attr.neuron_ranking import rank_correlation, top_neurons
from captum_multimodal.attr.question_masked_grad_cam import QuestionMaskedGradCAM
from captum_multimodal.attr.raw_attention import RawAttention
from captum_multimodal.attr.tensor_fusion_disentangle import (
    TensorFusionDisentangle,
    shapley_values,
    variance_share,
)

__all__ = [
    "AttentionGradCAM",
    "AttentionRollout",
    "CoAttentionRelevancy",
    "HadamardDeviation",
    "ModalityInteractions",
    "QuestionMaskedGradCAM",
    "RawAttention",
    "TensorFusionDisentangle",
    "rank_correlation",
    "shapley_values",
    "standardize_image",
    "token_scores",
    "top_neurons",
    "variance_share",
]

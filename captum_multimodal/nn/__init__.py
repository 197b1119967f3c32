"""Fusion building blocks to put in your own models; imports nothing else of this package."""

from captum_multimodal.nn.batch_norm import IterativeBatchNorm, VectorBatchNorm
from captum_multimodal.nn.mlb import Hadamard, LatticeSoftmax, LowRankBilinearAttention, MLBFusion
from captum_multimodal.nn.modality_weights import ModalityWeights
from captum_multimodal.nn.tensor_fusion import TensorFusion, block_assignment, modality_subsets

__all__ = [
    "Hadamard",
    "IterativeBatchNorm",
    "LatticeSoftmax",
    "LowRankBilinearAttention",
    "MLBFusion",
    "ModalityWeights",
    "TensorFusion",
    "VectorBatchNorm",
    "block_assignment",
    "modality_subsets",
]

"""Fusion building blocks to put in your own models; imports nothing else of this package."""

from captum_multimodal.nn.mlb import Hadamard, LatticeSoftmax, LowRankBilinearAttention, MLBFusion

__all__ = ["Hadamard", "LatticeSoftmax", "LowRankBilinearAttention", "MLBFusion"]

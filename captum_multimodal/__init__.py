"""captum-multimodal: Captum attribution methods for multimodal PyTorch models."""

from captum_multimodal.adapters import MLBAdapter
from captum_multimodal.attr import HadamardDeviation, standardize_image, token_scores

__version__ = "0.1.0"

__all__ = ["HadamardDeviation", "MLBAdapter", "__version__", "standardize_image", "token_scores"]

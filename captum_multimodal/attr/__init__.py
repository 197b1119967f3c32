"""Attribution methods, one per module, written against sites rather than model families."""

from captum_multimodal.attr.hadamard_deviation import (
    HadamardDeviation,
    standardize_image,
    token_scores,
)

__all__ = ["HadamardDeviation", "standardize_image", "token_scores"]

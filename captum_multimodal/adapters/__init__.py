"""Model-family adapters: the only code that knows where a family keeps its sites."""

from captum_multimodal.adapters.mlb import MLBAdapter, MLBSites

__all__ = ["MLBAdapter", "MLBSites"]

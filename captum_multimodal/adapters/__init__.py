"""Model-family adapters: the only code that knows where a family keeps its sites."""

from captum_multimodal.adapters.encoder import EncoderAdapter
from captum_multimodal.adapters.mlb import MLBAdapter, MLBSites
from captum_multimodal.adapters.visual_bert import VisualBertAdapter

__all__ = ["EncoderAdapter", "MLBAdapter", "MLBSites", "VisualBertAdapter"]

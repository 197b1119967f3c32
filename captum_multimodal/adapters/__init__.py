"""Model-family adapters: the only code that knows where a family keeps its sites."""

from captum_multimodal.adapters.clip import ClipAdapter, ClipPairScore, ClipSites
from captum_multimodal.adapters.encoder import EncoderAdapter
from captum_multimodal.adapters.lxmert import LxmertAdapter
from captum_multimodal.adapters.mlb import MLBAdapter, MLBSites
from captum_multimodal.adapters.visual_bert import VisualBertAdapter

__all__ = [
    "ClipAdapter",
    "ClipPairScore",
    "ClipSites",
    "EncoderAdapter",
    "LxmertAdapter",
    "MLBAdapter",
    "MLBSites",
    "VisualBertAdapter",
]

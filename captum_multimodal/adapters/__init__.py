"""Model-family adapters: the only code that knows where a family keeps its sites."""

from captum_multimodal.adapters.blip import BlipItmAdapter
from captum_multimodal.adapters.clip import ClipAdapter, ClipPairScore, ClipSites
from captum_multimodal.adapters.detr import DetrAdapter
from captum_multimodal.adapters.encoder import EncoderAdapter
from captum_multimodal.adapters.lxmert import LxmertAdapter
from captum_multimodal.adapters.mlb import MLBAdapter, MLBSites
from captum_multimodal.adapters.roles import AttentionRolesAdapter
from captum_multimodal.adapters.vilt import ViltAdapter
from captum_multimodal.adapters.visual_bert import VisualBertAdapter

__all__ = [
    "AttentionRolesAdapter",
    "BlipItmAdapter",
    "ClipAdapter",
    "ClipPairScore",
    "ClipSites",
    "DetrAdapter",
    "EncoderAdapter",
    "LxmertAdapter",
    "MLBAdapter",
    "MLBSites",
    "ViltAdapter",
    "VisualBertAdapter",
]

"""Small reference models built from :mod:`captum_multimodal.nn`, and their shipped checkpoints."""

from captum_multimodal.models.mlb import MLB, QuestionEncoder, SmallConvNet, torchvision_trunk
from captum_multimodal.models.pretrained import (
    load_checkpoint,
    load_pretrained,
    save_checkpoint,
    shipped_metrics,
)

__all__ = [
    "MLB",
    "QuestionEncoder",
    "SmallConvNet",
    "load_checkpoint",
    "load_pretrained",
    "save_checkpoint",
    "shipped_metrics",
    "torchvision_trunk",
]

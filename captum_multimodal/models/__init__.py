"""Small reference models built from :mod:`captum_multimodal.nn`, and their shipped checkpoints."""

from captum_multimodal.models.mlb import MLB, QuestionEncoder, SmallConvNet, torchvision_trunk
from captum_multimodal.models.pretrained import (
    load_checkpoint,
    load_pretrained,
    save_checkpoint,
    shipped_metrics,
)
from captum_multimodal.models.tensor_fusion import (
    SequenceEncoder,
    TensorFusionClassifier,
    run_tensor_fusion_toy,
    toy_classifier,
    toy_views,
    train_toy,
)

__all__ = [
    "MLB",
    "QuestionEncoder",
    "SequenceEncoder",
    "SmallConvNet",
    "TensorFusionClassifier",
    "load_checkpoint",
    "load_pretrained",
    "run_tensor_fusion_toy",
    "save_checkpoint",
    "shipped_metrics",
    "torchvision_trunk",
    "toy_classifier",
    "toy_views",
    "train_toy",
]

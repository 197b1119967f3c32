"""Synthetic multimodal data with ground truth; nothing is ever downloaded."""

from captum_multimodal.datasets.captions import (
    CAPTIONS,
    COLOR_SHAPE_CAPTIONS,
    CaptionPairs,
    caption_matches,
    collate_captions,
    encode_captions,
    object_caption,
)
from captum_multimodal.datasets.scenes import (
    COLORS,
    SHAPES,
    SIZES,
    SceneObject,
    render_scene,
    sample_scene,
    shape_mask,
)
from captum_multimodal.datasets.synthetic_vqa import (
    ANSWERS,
    TEMPLATES,
    Question,
    SyntheticVQA,
    SyntheticVQAPairs,
    Vocabulary,
    add_special_tokens,
    collate_pairs,
    collate_vqa,
    scene_questions,
)

__all__ = [
    "ANSWERS",
    "CAPTIONS",
    "COLORS",
    "COLOR_SHAPE_CAPTIONS",
    "SHAPES",
    "SIZES",
    "TEMPLATES",
    "CaptionPairs",
    "Question",
    "SceneObject",
    "SyntheticVQA",
    "SyntheticVQAPairs",
    "Vocabulary",
    "add_special_tokens",
    "caption_matches",
    "collate_captions",
    "collate_pairs",
    "collate_vqa",
    "encode_captions",
    "object_caption",
    "render_scene",
    "sample_scene",
    "scene_questions",
    "shape_mask",
]

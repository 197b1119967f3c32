"""Synthetic multimodal data with ground truth; nothing is ever downloaded."""

from captum_multimodal.datasets.synthetic_vqa import (
    ANSWERS,
    COLORS,
    SHAPES,
    SIZES,
    TEMPLATES,
    Question,
    SceneObject,
    SyntheticVQA,
    SyntheticVQAPairs,
    Vocabulary,
    collate_pairs,
    collate_vqa,
    render_scene,
    sample_scene,
    scene_questions,
    shape_mask,
)

__all__ = [
    "ANSWERS",
    "COLORS",
    "SHAPES",
    "SIZES",
    "TEMPLATES",
    "Question",
    "SceneObject",
    "SyntheticVQA",
    "SyntheticVQAPairs",
    "Vocabulary",
    "collate_pairs",
    "collate_vqa",
    "render_scene",
    "sample_scene",
    "scene_questions",
    "shape_mask",
]

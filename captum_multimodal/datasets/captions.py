"""Synthetic image-caption data: captions that name one object of a scene."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from captum_multimodal.datasets.scenes import COLORS, SHAPES, SceneObject
from captum_multimodal.datasets.synthetic_vqa import SyntheticVQA, Vocabulary, add_special_tokens

COLOR_SHAPE_CAPTIONS: tuple[str, ...] = tuple(f"a {c} {s}" for c in COLORS for s in SHAPES)
"""The 24 captions naming colour and shape; retrieval is measured on these."""

CAPTIONS: tuple[str, ...] = (
    *COLOR_SHAPE_CAPTIONS,
    *(f"the {s}" for s in SHAPES),
    *(f"a {c} thing" for c in COLORS),
)
"""Every caption the model is trained on."""


def encode_captions(captions: list[str] | tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS] caption [SEP]``, right-padded: ``input_ids`` and ``attention_mask`` (B, L).

    Examples:
        >>> ids, mask = encode_captions(["a red circle", "the cross"])
        >>> ids.shape, mask.tolist()
        (torch.Size([2, 5]), [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    """
    vocab = Vocabulary()
    words = [torch.tensor(vocab.encode(caption)) for caption in captions]
    ids = nn.utils.rnn.pad_sequence(words, batch_first=True, padding_value=vocab.pad_id)
    return add_special_tokens(ids, (ids != vocab.pad_id).long())


def caption_matches(caption: str, obj: SceneObject) -> bool:
    """Whether ``caption`` (one of :data:`CAPTIONS`) describes ``obj``.

    Examples:
        >>> red_circle = SceneObject("circle", "red", "small", (8.0, 8.0))
        >>> caption_matches("the circle", red_circle), caption_matches("a red square", red_circle)
        (True, False)
    """
    words = caption.split()
    if words[0] == "the":
        return words[1] == obj.shape
    if words[2] == "thing":
        return words[1] == obj.color
    return words[1] == obj.color and words[2] == obj.shape


def object_caption(obj: SceneObject) -> str:
    """The colour-shape caption of one object.

    Examples:
        >>> object_caption(SceneObject("circle", "red", "small", (8.0, 8.0)))
        'a red circle'
    """
    return f"a {obj.color} {obj.shape}"


class CaptionPairs(Dataset):
    """Synthetic image-caption pairs: two captioned objects per scene.

    Examples ``2i`` and ``2i + 1`` share scene i of ``SyntheticVQA(n_images, seed)``
    and caption two different objects of it ("a red circle"); each carries the
    captioned object's mask and the other caption's object's mask.

    Args:
        n_images (int): Scenes (2 * ``n_images`` examples).
        seed (int): Data seed (the shipped CLIP was trained on seed 0).

    Examples:
        >>> pairs = CaptionPairs(2, seed=3)
        >>> len(pairs), pairs[0]["caption_text"].startswith("a "), bool(pairs[0]["mask"].any())
        (4, True, True)
    """

    def __init__(self, n_images: int, seed: int = 2) -> None:
        self.scenes = SyntheticVQA(n_images, seed=seed)
        self.choices = np.random.default_rng([seed, 7])
        self.pairs = [
            tuple(self.choices.choice(len(self.scenes.scene(i)[0]), 2, replace=False))
            for i in range(n_images)
        ]

    def __len__(self) -> int:
        return 2 * len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        objects, image, masks = self.scenes.scene(index // 2)
        own, other = self.pairs[index // 2][:: 1 if index % 2 == 0 else -1]
        return {
            "image": torch.from_numpy(image),
            "caption_text": object_caption(objects[own]),
            "mask": torch.from_numpy(masks[own]),
            "other_mask": torch.from_numpy(masks[other]),
        }


def collate_captions(examples: Sequence[dict]) -> dict:
    """Stacks :class:`CaptionPairs` examples; captions become ``input_ids`` and
    ``attention_mask`` (B, L) ([CLS] caption [SEP], right-padded).

    Examples:
        >>> batch = collate_captions([CaptionPairs(1, seed=3)[i] for i in range(2)])
        >>> batch["input_ids"].shape[0], batch["image"].shape
        (2, torch.Size([2, 3, 64, 64]))
    """
    ids, mask = encode_captions([e["caption_text"] for e in examples])
    return {
        "image": torch.stack([e["image"] for e in examples]),
        "input_ids": ids,
        "attention_mask": mask,
        "mask": torch.stack([e["mask"] for e in examples]),
        "other_mask": torch.stack([e["other_mask"] for e in examples]),
        "caption_text": [e["caption_text"] for e in examples],
    }

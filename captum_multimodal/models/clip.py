"""A tiny Hugging Face CLIP trained contrastively on the synthetic scenes.

The model is the unmodified ``transformers.CLIPModel`` (64 x 64 images, 8 x 8 patches,
a causal text tower over the synthetic vocabulary, ``[CLS]`` as begin- and ``[SEP]`` as
end-of-text token). Every caption names one object of a scene: ``"a red circle"``,
``"the circle"`` or ``"a red thing"`` (colours and shapes are unique within a scene, so
each caption picks exactly one object).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import CLIPConfig, CLIPModel

from captum_multimodal._utils.modules import eval_mode
from captum_multimodal.datasets import (
    CAPTIONS,
    COLOR_SHAPE_CAPTIONS,
    SyntheticVQA,
    Vocabulary,
    caption_matches,
    encode_captions,
    object_caption,
)


def clip_config(**overrides) -> dict:
    """Constructor arguments of the synthetic-data CLIP (see :func:`build_clip`)."""
    vocab = Vocabulary()
    config = {
        "text_config": {
            "vocab_size": len(vocab),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 8,
            "pad_token_id": vocab.pad_id,
            "bos_token_id": vocab.index["[CLS]"],
            "eos_token_id": vocab.index["[SEP]"],
        },
        "vision_config": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "image_size": 64,
            "patch_size": 8,
        },
        "projection_dim": 32,
    }
    return config | overrides


def build_clip(**config) -> CLIPModel:
    """A randomly initialised ``CLIPModel`` from :func:`clip_config`'s arguments.

    Examples:
        >>> model = build_clip(**clip_config())
        >>> model.config.vision_config.patch_size
        8
    """
    return CLIPModel(CLIPConfig(**config))


def scene_set(dataset: SyntheticVQA, n_images: int, progress: bool = False) -> dict:
    """Images (N, 3, H, W), their objects and which ``CAPTIONS`` each matches (N, C)."""
    images, objects = [], []
    for i in tqdm(range(n_images), desc="generating scenes", disable=not progress):
        scene_objects, image, _ = dataset.scene(i)
        images.append(torch.from_numpy(image))
        objects.append(scene_objects)
    positives = torch.tensor(
        [[any(caption_matches(c, o) for o in scene) for c in CAPTIONS] for scene in objects]
    )
    return {"image": torch.stack(images), "objects": objects, "positives": positives}


def _soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the uniform distribution over each row's positives (rows with
    at least one positive)."""
    rows = positives.any(dim=1)
    targets = positives[rows].float()
    targets = targets / targets.sum(dim=1, keepdim=True)
    return -(targets * logits[rows].log_softmax(dim=1)).sum(dim=1).mean()


def train_clip(
    images: int = 6000,
    steps: int = 4000,
    batch_size: int = 64,
    eval_size: int = 500,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[CLIPModel, dict[str, float]]:
    """Trains :func:`build_clip` contrastively on scenes of data seed 0.

    Each step takes ``batch_size`` images and all the data's ``CAPTIONS``; the symmetric
    contrastive loss (image to captions and caption to images, as in CLIP) has several
    positives per row (an image matches the captions of each of its objects, a caption
    every image holding its object), so its targets are uniform over the positives.

    Returns:
        The model in eval mode and its held-out metrics (:func:`evaluate_clip` on
        ``eval_size`` scenes of data seed 1).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_clip(**clip_config()).to(device)
    train = scene_set(SyntheticVQA(images, seed=0), images, progress)
    ids, mask = (t.to(device) for t in encode_captions(CAPTIONS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-3, total_steps=steps)
    model.train()
    bar = tqdm(range(steps), desc="training CLIP", disable=not progress)
    for _ in bar:
        index = torch.from_numpy(rng.choice(images, min(batch_size, images), replace=False))
        pixels, positives = train["image"][index].to(device), train["positives"][index].to(device)
        logits = model(input_ids=ids, pixel_values=pixels, attention_mask=mask).logits_per_image
        loss = (
            _soft_cross_entropy(logits, positives) + _soft_cross_entropy(logits.T, positives.T)
        ) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model, evaluate_clip(model, SyntheticVQA(eval_size, seed=1), eval_size)


@torch.no_grad()
def caption_scores(model: CLIPModel, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Scaled similarity of every image with every ``COLOR_SHAPE_CAPTIONS`` entry, (N, 24)."""
    device = next(model.parameters()).device
    ids, mask = (t.to(device) for t in encode_captions(COLOR_SHAPE_CAPTIONS))
    with eval_mode(model):
        return torch.cat(
            [
                model(
                    input_ids=ids, pixel_values=chunk.to(device), attention_mask=mask
                ).logits_per_image.cpu()
                for chunk in images.split(batch_size)
            ]
        )


def evaluate_clip(model: CLIPModel, dataset: SyntheticVQA, n_images: int) -> dict[str, float]:
    """Caption retrieval on fresh scenes, over the (image, present object) pairs.

    - ``retrieval_scene``: the object's caption scores above every wrong pairing of the
      scene's own colours and shapes ("a red square" when the scene holds a red circle
      and a blue square): binding, among the captions built from the scene's objects.
    - ``retrieval_all``: the object's caption scores above every colour-shape caption of
      an object absent from the scene (all 24 captions).
    - ``top1``: the best of all 24 captions names an object of the scene (per image).
    """
    scenes = scene_set(dataset, n_images)
    scores = caption_scores(model, scenes["image"])
    index = {c: i for i, c in enumerate(COLOR_SHAPE_CAPTIONS)}
    scene_hits, all_hits, top1 = [], [], []
    for row, objects in zip(scores, scenes["objects"], strict=True):
        present = [index[object_caption(o)] for o in objects]
        combos = [index[f"a {a.color} {b.shape}"] for a in objects for b in objects]
        wrong_in_scene = [i for i in combos if i not in present]
        absent = [i for i in range(len(COLOR_SHAPE_CAPTIONS)) if i not in present]
        for i in present:
            scene_hits.append(bool((row[i] > row[wrong_in_scene]).all()))
            all_hits.append(bool((row[i] > row[absent]).all()))
        top1.append(int(row.argmax()) in present)
    return {
        "retrieval_scene": float(np.mean(scene_hits)),
        "retrieval_all": float(np.mean(all_hits)),
        "top1": float(np.mean(top1)),
    }

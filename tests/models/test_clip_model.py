import torch

from captum_multimodal.datasets import (
    CAPTIONS,
    COLOR_SHAPE_CAPTIONS,
    COLORS,
    SHAPES,
    SceneObject,
    SyntheticVQA,
    Vocabulary,
    caption_matches,
    encode_captions,
    object_caption,
)
from captum_multimodal.models import load_checkpoint, load_pretrained, shipped_metrics
from captum_multimodal.studies.cli import main


def test_captions_are_wrapped_in_begin_and_end_tokens():
    vocab = Vocabulary()
    ids, mask = encode_captions(["a red circle", "the cross"])
    words = [["[CLS]", "a", "red", "circle", "[SEP]"], ["[CLS]", "the", "cross", "[SEP]", "[PAD]"]]
    assert ids.tolist() == [[vocab.index[w] for w in row] for row in words]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert ids.max() < len(vocab) and not (ids == vocab.unk_id).any()


def test_each_caption_names_one_kind_of_object():
    red_circle = SceneObject("circle", "red", "small", (10.0, 10.0))
    matching = [c for c in CAPTIONS if caption_matches(c, red_circle)]
    assert matching == ["a red circle", "the circle", "a red thing"]
    assert object_caption(red_circle) == "a red circle"
    assert len(COLOR_SHAPE_CAPTIONS) == len(COLORS) * len(SHAPES)


def test_shipped_clip_retrieves_captions_of_fresh_scenes():
    model = load_pretrained("clip")
    assert type(model).__name__ == "CLIPModel" and not model.training
    data = SyntheticVQA(300, seed=1234)  # neither the training nor the held-out seed
    scenes = [data.scene(i) for i in range(300)]
    ids, mask = encode_captions(COLOR_SHAPE_CAPTIONS)
    images = torch.stack([torch.from_numpy(image) for _, image, _ in scenes])
    with torch.no_grad():
        scores = model(input_ids=ids, pixel_values=images, attention_mask=mask).logits_per_image
    hits = []
    for row, (objects, _, _) in zip(scores, scenes, strict=True):
        present = [COLOR_SHAPE_CAPTIONS.index(f"a {o.color} {o.shape}") for o in objects]
        absent = [i for i in range(len(COLOR_SHAPE_CAPTIONS)) if i not in present]
        hits += [bool((row[i] > row[absent]).all()) for i in present]
    accuracy = sum(hits) / len(hits)
    recorded = shipped_metrics("clip")["retrieval_all"]
    assert accuracy >= recorded - 0.05, (accuracy, recorded)


def test_train_clip_command_writes_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "clip.pt"
    args = ["train", "clip", "--steps", "2", "--images", "8", "--eval-size", "4"]
    assert main([*args, "--out", str(path), "--quiet"]) == 0
    model = load_checkpoint("clip", path)
    assert type(model).__name__ == "CLIPModel" and not model.training
    metrics = torch.load(path, weights_only=True)["metrics"]
    assert {"retrieval_scene", "retrieval_all", "top1", "train_seconds"} <= set(metrics)

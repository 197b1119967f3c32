"""The CLIP study parts: caption pairs, the caption-shift metric, the study end to end."""

import math

import torch

from captum_multimodal.datasets import CaptionPairs, collate_captions
from captum_multimodal.studies import zoo
from captum_multimodal.studies.study import run_study


def test_caption_pairs_caption_two_objects_of_one_image():
    batch = collate_captions([CaptionPairs(5, seed=3)[i] for i in range(10)])
    assert batch["image"].shape == (10, 3, 64, 64)
    assert torch.equal(batch["image"][0::2], batch["image"][1::2])
    assert torch.equal(batch["mask"][0::2], batch["other_mask"][1::2])
    assert not (batch["mask"] & batch["other_mask"]).any()  # different objects
    captions = batch["caption_text"]
    assert all(a != b for a, b in zip(captions[0::2], captions[1::2], strict=True))
    assert batch["input_ids"].shape == batch["attention_mask"].shape


def test_caption_shift_of_maps_that_follow_or_ignore_the_caption():
    batch = collate_captions([CaptionPairs(4, seed=3)[i] for i in range(8)])
    score = zoo.metric("caption_shift").score
    following = {"image": batch["mask"].float()}  # peaks on the captioned object
    fixed = {"image": batch["mask"][0::2].float().repeat_interleave(2, dim=0)}
    follows = score(None, batch, following, None)
    ignores = score(None, batch, fixed, None)
    assert follows["pointing_other_object"].sum() == 0
    assert ignores["pointing_other_object"].tolist() == [0.0, 1.0] * 4
    assert ignores["top20_iou"].tolist() == [1.0] * 8
    assert (follows["top20_iou"] < 1).all()
    try:
        score(None, {**batch, "other_mask": batch["other_mask"][:3]}, {"image": torch.rand(3)}, 0)
    except ValueError as error:
        assert "even batch_size" in str(error)
    else:
        raise AssertionError("an odd chunk must be refused")


def test_clip_study_scores_relevancy_as_computed_by_hand(tmp_path):
    from captum_multimodal import CoAttentionRelevancy
    from captum_multimodal.metrics import pointing_game

    study = zoo.shipped_study(
        "clip", size=8, batch_size=4, methods=["CoAttentionRelevancy", "GradCAM"]
    )
    summary = run_study(study, tmp_path, progress=False)
    batch = collate_captions([study.dataset[i] for i in range(8)])
    adapter = study.subject.adapter
    _, image = CoAttentionRelevancy(adapter).attribute(
        (batch["input_ids"], batch["image"]), additional_forward_args=(batch["attention_mask"],)
    )
    expected = pointing_game(image.view(8, *adapter.grid_size), batch["mask"]).mean().item()
    (row,) = [
        r
        for r in summary
        if r["method"] == "CoAttentionRelevancy" and r["metric"] == "pointing_game"
    ]
    assert math.isclose(row["mean"], expected)
    assert (tmp_path / "examples.png").exists()

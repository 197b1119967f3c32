import math

import torch

from captum_multimodal.studies.demo_clip import caption_pairs, run_clip_demo, score_maps


def test_caption_pairs_caption_two_objects_of_one_image():
    pairs = caption_pairs(5, seed=3)
    assert pairs["pixel_values"].shape == (10, 3, 64, 64)
    assert torch.equal(pairs["pixel_values"][0::2], pairs["pixel_values"][1::2])
    assert torch.equal(pairs["masks"][0::2], pairs["other_masks"][1::2])
    assert not (pairs["masks"] & pairs["other_masks"]).any()  # different objects
    assert all(
        a != b for a, b in zip(pairs["captions"][0::2], pairs["captions"][1::2], strict=True)
    )


def test_scores_of_maps_peaking_on_each_captions_own_object():
    pairs = caption_pairs(4, seed=3)
    following = pairs["masks"].float()  # peaks on the captioned object
    fixed = pairs["masks"][0::2].float().repeat_interleave(2, dim=0)  # ignores the caption
    rows = {r["method"]: r for r in score_maps({"follows": following, "fixed": fixed}, pairs)}
    assert rows["follows"]["pointing_game"] == 1.0 and rows["follows"]["pointing_other"] == 0.0
    assert rows["follows"]["both_hit"] == 1.0
    assert rows["fixed"]["pointing_game"] == 0.5 and rows["fixed"]["both_hit"] == 0.0
    assert rows["fixed"]["top20_iou"] == 1.0
    area = pairs["masks"].float().mean().item()
    assert math.isclose(rows["chance"]["pointing_game"], area, rel_tol=1e-6)


def test_clip_demo_writes_its_grid_and_table(tmp_path):
    rows = run_clip_demo(tmp_path, n_examples=4, progress=False)
    assert [r["method"] for r in rows] == [
        "relevancy",
        "hadamard",
        "masked grad-cam",
        "grad-cam",
        "chance",
    ]
    assert (tmp_path / "clip_grid.png").stat().st_size > 0
    table = (tmp_path / "clip_table.md").read_text()
    assert "| relevancy |" in table and "pointing game" in table

import torch

from captum_multimodal.datasets import SyntheticVQA, collate_vqa
from captum_multimodal.models import load_pretrained
from captum_multimodal.models.lxmert import grid_boxes, lxmert_inputs
from captum_multimodal.models.visual_bert import GRID, grid_features


def test_each_box_is_the_region_its_feature_was_pooled_from():
    backbone = load_pretrained("mlb").backbone
    data = SyntheticVQA(2, seed=9)
    batch = collate_vqa([data[0], data[1]])
    features = grid_features(batch["image"], backbone)
    (ids, feats, boxes), (mask, box_mask) = lxmert_inputs(batch, features)
    with torch.no_grad():
        full = backbone(batch["image"])  # (2, 64, 8, 8)
    side = full.shape[-1]
    for token in range(GRID * GRID):
        x0, y0, x1, y1 = (boxes[0, token] * side).round().long().tolist()
        region = full[:, :, y0:y1, x0:x1].mean(dim=(2, 3))
        torch.testing.assert_close(feats[:, token], region)
    assert torch.equal(boxes[1], grid_boxes())
    assert ((boxes >= 0) & (boxes <= 1)).all() and (boxes[..., 2:] > boxes[..., :2]).all()
    assert box_mask.shape == (2, GRID * GRID) and bool(box_mask.all())
    assert (
        ids[:, 0].eq(2).all()
        and mask.sum(1).tolist() == (batch["attention_mask"].sum(1) + 2).tolist()
    )

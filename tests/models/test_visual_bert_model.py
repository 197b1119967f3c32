import torch

from captum_multimodal.models import load_pretrained
from captum_multimodal.models.visual_bert import GRID, add_special_tokens, grid_features


def test_special_tokens_wrap_each_question():
    question = torch.tensor([[9, 8, 7], [9, 8, 0]])
    ids, mask = add_special_tokens(question, (question != 0).long())
    assert ids.tolist() == [[2, 9, 8, 7, 3], [2, 9, 8, 3, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]


def test_grid_features_are_the_pooled_backbone_map():
    backbone = load_pretrained("mlb").backbone
    images = torch.rand(2, 3, 64, 64)
    tokens = grid_features(images, backbone)
    with torch.no_grad():
        full = backbone(images)  # (2, 64, 8, 8)
    cell = full[:, :, 2:4, 4:6].mean(dim=(2, 3))  # the token of grid row 1, column 2
    torch.testing.assert_close(tokens[:, 1 * GRID + 2], cell)
    assert tokens.shape == (2, GRID * GRID, 64)

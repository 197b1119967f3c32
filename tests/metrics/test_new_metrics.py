"""Energy pointing game, key-token rank, pair similarity and pixel deletion/insertion curves
against hand-computed cases."""

import math

import pytest
import torch

from captum_multimodal.metrics import (
    energy_pointing_game,
    key_token_rank,
    pair_similarity,
    pixel_perturbation_curve,
)


def test_energy_pointing_game_exact_map_scores_one_and_random_map_the_mask_area():
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[:, 2:6, 3:11] = True
    exact = masks.float() * torch.rand(2, 16, 16)
    assert torch.allclose(energy_pointing_game(exact, masks), torch.ones(2))
    torch.manual_seed(0)
    noise = torch.rand(400, 16, 16)
    area = masks[0].float().mean()
    score = energy_pointing_game(noise, masks[:1].expand(400, -1, -1)).mean()
    assert abs(score - area) < 0.01


def test_energy_pointing_game_by_hand_and_undefined_cases():
    maps = torch.tensor([[[2.0, -5.0], [1.0, 1.0]], [[-1.0, -1.0], [-1.0, -1.0]]])
    masks = torch.tensor([[[True, True], [False, False]], [[True, False], [False, False]]])
    result = energy_pointing_game(maps, masks)
    assert result[0] == pytest.approx(2 / 4)  # negative mass ignored
    assert math.isnan(result[1])  # nothing positive to share out
    assert math.isnan(energy_pointing_game(maps[:1], torch.zeros(1, 2, 2, dtype=bool))[0])
    with pytest.raises(ValueError, match="masks"):
        energy_pointing_game(maps, masks[0])


def test_key_token_rank_by_hand():
    relevance = torch.tensor(
        [[0.9, 0.3, 0.8, 0.1], [0.2, 0.9, 0.9, 0.0], [0.5, 0.6, 0.7, 9.0], [1.0, 0.0, 0.0, 0.0]]
    )
    key = torch.tensor(
        [
            [False, False, True, False],
            [False, True, False, False],
            [True, False, False, False],
            [False, False, False, False],
        ]
    )
    valid = torch.tensor([[True] * 4, [True] * 4, [True, True, True, False], [True] * 4])
    rank = key_token_rank(relevance, key, valid)
    assert rank[:3].tolist() == [2.0, 2.0, 3.0]  # a tie counts against the key; padding ignored
    assert math.isnan(rank[3])
    with pytest.raises(ValueError, match="key_tokens"):
        key_token_rank(relevance, key[:, :3])


def test_pair_similarity_identical_and_reversed_maps():
    first = torch.arange(10.0).view(1, 10).repeat(2, 1)
    second = torch.stack([torch.arange(10.0), -torch.arange(10.0)])
    result = pair_similarity(first, second, fraction=0.3)
    assert result["spearman"].tolist() == pytest.approx([1.0, -1.0])
    assert result["top_iou"].tolist() == [1.0, 0.0]


def test_deletion_and_insertion_on_a_model_that_counts_pixels():
    # the logit of class 1 is 4 x (mean of the kept "evidence" pixels): removing the
    # evidence first (a perfect map) drops the probability fastest
    evidence = torch.zeros(1, 1, 4, 4)
    evidence[0, 0, :2, :2] = 1.0

    def forward(x):
        score = 4 * x.flatten(1).sum(1)
        return torch.stack([torch.zeros_like(score), score], dim=1)

    steps = [0.0, 0.25, 0.5, 1.0]
    perfect = evidence[:, 0]
    reverse = 1 - evidence[:, 0]
    target = torch.tensor([1])
    deleted, area_good = pixel_perturbation_curve(forward, evidence, perfect, target, steps=steps)
    _, area_bad = pixel_perturbation_curve(forward, evidence, reverse, target, steps=steps)
    sigmoid = torch.sigmoid
    expected = torch.stack([sigmoid(torch.tensor(16.0)), *[torch.tensor(0.5)] * 3])
    assert torch.allclose(deleted[0], expected)
    assert area_good < area_bad
    inserted, _ = pixel_perturbation_curve(
        forward, evidence, perfect, target, mode="insertion", steps=steps
    )
    assert torch.allclose(inserted[0], torch.stack([torch.tensor(0.5), *[expected[0]] * 3]))
    with pytest.raises(ValueError, match="mode"):
        pixel_perturbation_curve(forward, evidence, perfect, target, mode="erase")

import math

import pytest
import torch

from captum_multimodal.metrics import pointing_game, to_pixel_map


def test_hits_misses_and_empty_masks():
    maps = torch.zeros(3, 5, 5)
    maps[0, 1, 1] = 1  # inside
    maps[1, 4, 4] = 1  # outside
    maps[2, 2, 2] = 1  # empty mask
    masks = torch.zeros(3, 5, 5, dtype=torch.bool)
    masks[:2, 0:2, 0:2] = True
    result = pointing_game(maps, masks)
    assert result[0] == 1 and result[1] == 0 and math.isnan(result[2])


def test_tolerance_grows_the_mask():
    maps = torch.zeros(1, 6, 6)
    maps[0, 3, 3] = 1
    masks = torch.zeros(1, 6, 6, dtype=torch.bool)
    masks[0, 1, 1] = True
    assert pointing_game(maps, masks, tolerance=1)[0] == 0
    assert pointing_game(maps, masks, tolerance=2)[0] == 1


def test_channels_are_summed_and_coarse_maps_upsampled():
    maps = torch.zeros(1, 3, 4, 4)
    maps[0, 0, 0, 0] = 1.0
    maps[0, 1, 3, 3] = 0.6
    maps[0, 2, 3, 3] = 0.6  # the sum makes (3, 3) the peak
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, 3, 3] = True
    assert pointing_game(maps, masks)[0] == 1
    coarse = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])  # peak in the bottom-right quarter
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 4:, 4:] = True
    assert pointing_game(coarse, masks)[0] == 1
    assert to_pixel_map(coarse, (8, 8)).shape == (1, 8, 8)


@pytest.mark.parametrize(
    ("maps", "masks", "kwargs", "error", "name"),
    [
        (torch.zeros(2, 4), torch.zeros(2, 4, 4, dtype=torch.bool), {}, ValueError, "attributions"),
        ([[0.0]], torch.zeros(1, 4, 4, dtype=torch.bool), {}, TypeError, "attributions"),
        (torch.zeros(2, 4, 4), torch.zeros(3, 4, 4, dtype=torch.bool), {}, ValueError, "batch"),
        (torch.zeros(2, 4, 4), torch.zeros(2, 16, dtype=torch.bool), {}, ValueError, "masks"),
        (
            torch.zeros(2, 4, 4),
            torch.zeros(2, 4, 4, dtype=torch.bool),
            {"tolerance": -1},
            ValueError,
            "tolerance",
        ),
    ],
)
def test_bad_input_is_named(maps, masks, kwargs, error, name):
    with pytest.raises(error, match=name):
        pointing_game(maps, masks, **kwargs)

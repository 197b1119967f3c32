import io

import matplotlib.image
import numpy as np
import pytest
import torch

from captum_multimodal.visualization import attribution_grid, image_heatmap, token_strip


def render(figure, dpi=50) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    assert buffer.getbuffer().nbytes > 200
    buffer.seek(0)
    return matplotlib.image.imread(buffer, format="png")


def test_heatmap_renders_at_the_figure_size_and_shows_the_peak():
    image = torch.zeros(3, 32, 32)
    attribution = torch.zeros(3, 32, 32)
    attribution[:, 4:8, 4:8] = 1.0
    figure = image_heatmap(image, attribution, method="heat_map", sign="positive")
    pixels = render(figure)
    assert pixels.shape[:2] == (150, 150)  # 3 in x 3 in at 50 dpi
    assert pixels[..., :3].std() > 0.05


def test_coarse_and_zero_maps_render():
    assert render(image_heatmap(torch.rand(3, 16, 16), torch.rand(4, 4))).size
    assert render(image_heatmap(torch.rand(3, 16, 16), torch.zeros(16, 16))).size


def test_token_strip_colours_follow_scores():
    figure = token_strip(["low", "mid", "high"], torch.tensor([-2.0, 0.0, 2.0]))
    patches = figure.axes[0].patches
    low, mid, high = (p.get_facecolor() for p in patches)
    assert low[2] > low[0] and high[0] > high[2]  # blue for low, red for high
    assert mid[0] == pytest.approx(mid[2], abs=0.02)
    assert render(figure).shape[1] == int(figure.get_size_inches()[0] * 50)


def test_grid_has_a_cell_per_example_and_method():
    figure = attribution_grid(
        torch.rand(3, 3, 16, 16),
        {"a": torch.rand(3, 3, 16, 16), "b": torch.rand(3, 4, 4)},
        questions=["q1", "q2", "q3"],
        masks=torch.zeros(3, 16, 16, dtype=torch.bool),
    )
    assert len(figure.axes) == 3 * 4
    pixels = render(figure)
    width, height = figure.get_size_inches() * 50
    assert pixels.shape[:2] == (round(height), round(width))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: image_heatmap(torch.rand(3, 4, 4, 1), torch.rand(4, 4)), "image"),
        (lambda: image_heatmap(torch.rand(3, 4, 4), torch.rand(4)), "attribution"),
        (lambda: token_strip(["a", "b"], [1.0]), "scores"),
        (
            lambda: attribution_grid(torch.rand(2, 3, 4, 4), {"m": torch.rand(3, 4, 4)}),
            "attributions",
        ),
        (lambda: attribution_grid(torch.rand(2, 3, 4, 4), {}, questions=["q"]), "questions"),
    ],
)
def test_bad_input_is_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_hadamard_figure_has_the_papers_panels():
    from captum_multimodal.visualization import hadamard_figure

    figure = hadamard_figure(
        torch.rand(3, 32, 32),
        torch.rand(2, 8, 8),
        torch.randn(3, 32, 32),
        ["what", "color", "is", "the", "circle", "?"],
        torch.linspace(-1, 1, 6),
        title="red",
    )
    assert len(figure.axes) == 1 + 2 + 1 + 1
    assert [a.get_title() for a in figure.axes[:4]] == [
        "input",
        "attention α1",
        "attention α2",
        "Hadamard ∇v",
    ]
    assert render(figure).shape[1] == int(figure.get_size_inches()[0] * 50)
    with pytest.raises(ValueError, match="attention_maps"):
        hadamard_figure(torch.rand(3, 8, 8), torch.rand(8, 8), torch.rand(3, 8, 8), ["a"], [0.0])


def test_sweep_grid_rows_and_columns():
    from captum_multimodal.visualization import sweep_grid

    maps = {n: torch.rand(1, 4, 4) for n in (2, 8, 16)}
    figure = sweep_grid(torch.rand(3, 16, 16), {"a": maps, "b": maps}, full_width=16)
    assert len(figure.axes) == 2 * 4
    assert figure.axes[3].get_title() == "Grad-CAM (n = K)"
    assert render(figure).size
    with pytest.raises(ValueError, match="top_n"):
        sweep_grid(torch.rand(3, 8, 8), {"a": maps, "b": {2: torch.rand(4, 4)}})

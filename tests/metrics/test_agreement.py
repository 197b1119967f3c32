import math

import pytest
import torch

from captum_multimodal.metrics import spearman


def pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def ranks(values):
    """Average ranks by counting, the textbook way."""
    return [sum(v < w for v in values) + (sum(v == w for v in values) + 1) / 2 for w in values]


def test_matches_pearson_of_ranks_with_ties():
    torch.manual_seed(0)
    a = torch.randint(0, 4, (5, 3, 3)).float()  # many ties
    b = torch.randn(5, 9)
    result = spearman(a, b)
    for row in range(5):
        expected = pearson(ranks(a[row].flatten().tolist()), ranks(b[row].tolist()))
        assert result[row].item() == pytest.approx(expected, abs=1e-6)


def test_extremes_and_errors():
    x = torch.arange(10.0)[None]
    assert spearman(x, x.exp()).item() == pytest.approx(1.0)
    assert spearman(x, -x).item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="same batch size"):
        spearman(torch.zeros(2, 4), torch.zeros(2, 5))


def test_top_fraction_iou_by_hand():
    from captum_multimodal.metrics import top_fraction_iou

    a = torch.tensor([[9.0, 8.0, 1.0, 0.0, 0.5], [1.0, 2.0, 3.0, 4.0, 5.0]])
    b = torch.tensor([[9.0, 0.0, 8.0, 1.0, 0.2], [1.0, 2.0, 3.0, 4.0, 5.0]])
    # fraction 0.4 of 5 entries keeps 2: {0, 1} vs {0, 2} -> 1 / 3; identical maps -> 1
    result = top_fraction_iou(a, b, 0.4)
    assert result.tolist() == pytest.approx([1 / 3, 1.0])
    with pytest.raises(ValueError, match="fraction"):
        top_fraction_iou(a, b, 0.0)

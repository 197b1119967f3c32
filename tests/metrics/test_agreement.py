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

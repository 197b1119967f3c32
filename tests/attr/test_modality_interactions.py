import itertools

import pytest
import torch
from torch import nn

from captum_multimodal import ModalityInteractions
from captum_multimodal.models import toy_classifier, toy_views


class Late(nn.Module):
    """A non-linear late-fusion model with a batch norm (so that eval mode matters)."""

    def __init__(self):
        super().__init__()
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.BatchNorm1d(5))
        self.text = nn.Linear(4, 5)
        self.audio = nn.Linear(2, 5)
        self.out = nn.Sequential(nn.Tanh(), nn.Linear(5, 3))

    def forward(self, image, text, audio):
        return self.out(self.image(image) * self.text(text) + self.audio(audio).relu())


def make(batch, seed):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(3, 2, 2), (4,), (2,)]
    return tuple(torch.randn(batch, *shape, generator=generator) for shape in shapes)


def brute_force(model, inputs, background, target):
    """v_x(S) by looping over samples, subsets and background rows one forward each, then
    m_x(S) = sum over L in S of (-1)^{|S \\ L|} v_x(L)."""
    subsets = [s for n in range(4) for s in itertools.combinations(range(3), n)]
    out = torch.zeros(len(inputs[0]), len(subsets))
    with torch.no_grad():
        for i in range(len(inputs[0])):
            value = {}
            for subset in subsets:
                total = 0.0
                for k in range(len(background[0])):
                    row = [
                        (inputs[m][i] if m in subset else background[m][k])[None] for m in range(3)
                    ]
                    total += model(*row)[0, target[i]]
                value[subset] = total / len(background[0])
            for column, subset in enumerate(subsets):
                for size in range(len(subset) + 1):
                    for inner in itertools.combinations(subset, size):
                        out[i, column] += (-1) ** (len(subset) - size) * value[inner]
    return out


def test_equals_the_brute_force_loop():
    torch.manual_seed(0)
    model = Late().eval()
    model.image[2].running_mean.uniform_(-1, 1)
    inputs, background, target = make(4, 1), make(5, 2), torch.tensor([0, 2, 1, 2])
    explainer = ModalityInteractions(model)
    terms = explainer.attribute(inputs, baselines=background, target=target)
    assert explainer.subsets == [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    torch.testing.assert_close(
        terms, brute_force(model, inputs, background, target), atol=1e-5, rtol=1e-4
    )
    logits = model(*inputs).gather(1, target[:, None])[:, 0].detach()
    torch.testing.assert_close(terms.sum(1), logits, atol=1e-5, rtol=0)
    with torch.no_grad():
        mean_background = model(*background)[:, target].mean(0)
    torch.testing.assert_close(terms[:, 0], mean_background)
    assert terms[:, 4].abs().max() > 1e-3  # the image-text product interacts


def test_additive_model_has_no_interactions():
    def additive(a, b, c):
        return a.sum(1, keepdim=True) ** 2 + b.sin().sum(1, keepdim=True) + c.prod(1, keepdim=True)

    generator = torch.Generator().manual_seed(3)
    inputs = tuple(torch.randn(6, 3, generator=generator) for _ in range(3))
    background = tuple(torch.randn(7, 3, generator=generator) for _ in range(3))
    terms = ModalityInteractions(additive).attribute(inputs, baselines=background)
    assert terms[:, 4:].abs().max() < 1e-5
    torch.testing.assert_close(
        terms[:, 1], inputs[0].sum(1) ** 2 - (background[0].sum(1) ** 2).mean()
    )


def test_long_token_inputs_and_model_left_as_found(model_state):
    model = toy_classifier("ibn").train()
    state = model_state(model)
    (a, b, c), _ = toy_views(3, relevant=(0,), seed=4)
    (x, y, z), _ = toy_views(4, relevant=(0,), seed=5)
    copies = [t.clone() for t in (a, b, c)]
    terms = ModalityInteractions(model).attribute((a, b, c), baselines=(x, y, z))
    assert terms.shape == (3, 8)
    state.assert_unchanged()
    assert all(torch.equal(s, t) for s, t in zip((a, b, c), copies, strict=True))


def test_bad_inputs_name_the_argument():
    model = Late().eval()
    inputs, background = make(2, 0), make(3, 1)
    explainer = ModalityInteractions(model)
    with pytest.raises(ValueError, match="one tensor per modality"):
        explainer.attribute(inputs, baselines=background[:2], target=0)
    with pytest.raises(ValueError, match="baselines\\[1\\] must have shape \\(K, 4\\)"):
        explainer.attribute(
            inputs, baselines=(background[0], torch.zeros(3, 5), background[2]), target=0
        )
    with pytest.raises(ValueError, match="same number of rows"):
        explainer.attribute(
            inputs, baselines=(background[0], background[1][:2], background[2]), target=0
        )
    with pytest.raises(ValueError, match=r"baselines .* is required"):
        explainer.attribute(inputs, baselines=None, target=0)
    with pytest.raises(ValueError, match="target is required"):
        explainer.attribute(inputs, baselines=background)
    with pytest.raises(ValueError, match="inputs\\[2\\] must be a tensor"):
        explainer.attribute((inputs[0], inputs[1], inputs[2][:1]), baselines=background, target=0)
    with pytest.raises(TypeError, match="forward_func"):
        ModalityInteractions(3)

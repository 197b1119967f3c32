import itertools
import math

import pytest
import torch
from torch import nn

from captum_multimodal import ModalityInteractions, TensorFusionDisentangle
from captum_multimodal.attr import shapley_values, variance_share
from captum_multimodal.models import TensorFusionClassifier

DIMS = [2, 3, 2]
INPUTS = [4, 5, 3]
LETTERS = "ijk"


def make_model(normalization, classes=3, seed=0):
    """Non-linear encoders, a few training-mode steps (so that VBN/IBN statistics are
    non-trivial), then eval mode."""
    torch.manual_seed(seed)
    encoders = [
        nn.Sequential(nn.Linear(n, d), nn.Tanh(), nn.Linear(d, d))
        for n, d in zip(INPUTS, DIMS, strict=True)
    ]
    model = TensorFusionClassifier(encoders, DIMS, classes, normalization=normalization)
    with torch.no_grad():
        for layer in (model.encoders[0][2], model.encoders[2][2]):
            layer.bias.add_(1.0)  # non-centred raw features
        model.head.weight.mul_(3.0)
        for seed in range(3):
            model(*make_inputs(32, seed=10 + seed))
    return model.eval()


def make_inputs(batch, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, n, generator=generator) for n in INPUTS)


def block_weight(weight, subset):
    """W_S of one output row: the entries of W reshaped (d+1, ...) with index >= 1 on S
    and 0 elsewhere, shaped over S's modalities."""
    shaped = weight.reshape([d + 1 for d in DIMS])
    where = tuple(slice(1, None) if m in subset else 0 for m in range(len(DIMS)))
    return shaped[where]


def by_definition(model, inputs, baselines, target):
    """c_T(x) = <sum_{S >= T} W_S x_{S\\T} nu_{S\\T}, (x)_{T} (f^m(x) - nu_m)>, per sample."""
    with torch.no_grad():
        features = [
            norm(enc(x)) for enc, norm, x in zip(model.encoders, model.norms, inputs, strict=True)
        ]
        nu = [
            norm(enc(b)).mean(0)
            for enc, norm, b in zip(model.encoders, model.norms, baselines, strict=True)
        ]
    subsets = [s for n in range(4) for s in itertools.combinations(range(3), n)]
    out = torch.zeros(len(inputs[0]), len(subsets))
    for i in range(len(inputs[0])):
        weight = model.head.weight[target[i]].detach()
        for column, t in enumerate(subsets):
            total = 0.0
            for s in subsets:
                if not set(t) <= set(s):
                    continue
                factors = [nu[m] if m not in t else features[m][i] - nu[m] for m in s]
                spec = ",".join(LETTERS[m] for m in s) + "," + "".join(LETTERS[m] for m in s) + "->"
                total += torch.einsum(spec, *factors, block_weight(weight, s)) if s else weight[0]
            out[i, column] = total
        out[i, 0] += model.head.bias[target[i]].detach()
    return out


@pytest.mark.parametrize("normalization", ["none", "vbn", "ibn"])
def test_completeness(normalization):
    model = make_model(normalization)
    inputs, target = make_inputs(7, seed=1), torch.tensor([0, 1, 2, 0, 1, 2, 2])
    baselines = None if normalization == "ibn" else make_inputs(20, seed=2)
    explainer = TensorFusionDisentangle(model, model.fusion, model.head)
    contributions = explainer.attribute(inputs, target=target, baselines=baselines)
    assert contributions.shape == (7, 8)
    assert explainer.subsets == [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    logits = model(*inputs).gather(1, target[:, None])[:, 0]
    torch.testing.assert_close(contributions.sum(1), logits, atol=1e-5, rtol=0)
    assert (contributions[:, 1:].abs().amax(0) > 1e-3).all()  # every subset matters


@pytest.mark.parametrize("normalization", ["none", "vbn"])
def test_equals_the_definition_per_sample(normalization):
    model = make_model(normalization)
    inputs, baselines, target = make_inputs(5, seed=3), make_inputs(11, seed=4), [2, 0, 1, 1, 0]
    explainer = TensorFusionDisentangle(model, model.fusion, model.head)
    contributions = explainer.attribute(inputs, target=target, baselines=baselines)
    torch.testing.assert_close(
        contributions, by_definition(model, inputs, baselines, target), atol=1e-5, rtol=1e-4
    )


def test_ibn_contributions_are_the_head_on_each_block():
    """For IBN, c_T = <W_T, block T of the IBN output> with the running statistics; a head
    reading one block only puts everything but the bias in that block's column."""
    model = make_model("ibn")
    inputs = make_inputs(6, seed=5)
    explainer = TensorFusionDisentangle(model, model.fusion, model.head)
    with torch.no_grad():
        features = [enc(x) for enc, x in zip(model.encoders, inputs, strict=True)]
        fused = model.fusion(*features)
        for column, subset in enumerate(explainer.subsets):
            weight = torch.zeros_like(model.head.weight)
            blocks = model.fusion.block_indices(subset)
            weight[:, blocks] = torch.randn(3, len(blocks))
            model.head.weight.copy_(weight)
            contributions = explainer.attribute(inputs, target=1)
            expected = fused[:, blocks] @ weight[1, blocks] + (
                model.head.bias[1] if column == 0 else 0
            )
            torch.testing.assert_close(contributions[:, column], expected)
            others = [c for c in range(8) if c not in (0, column)]
            assert contributions[:, others].abs().max() < 1e-6
            if column:
                torch.testing.assert_close(contributions[:, 0], model.head.bias[1].expand(6))


def test_centring_undoes_degree_inflation():
    """A model storing a function of modality 0 in block (0, 1) by a constant feature of
    modality 1: the uncentred block says (0, 1), the decomposition says (0,)."""
    torch.manual_seed(0)
    encoders = [nn.Linear(4, 2), nn.Linear(5, 3), nn.Linear(3, 2)]
    model = TensorFusionClassifier(encoders, DIMS, 1, normalization="none").eval()
    with torch.no_grad():
        encoders[1].weight.zero_()
        encoders[1].bias.copy_(torch.tensor([1.0, -2.0, 0.5]))
        model.head.weight.zero_()
        model.head.weight[0, model.fusion.block_indices((0, 1))] = torch.randn(6)
    explainer = TensorFusionDisentangle(model, model.fusion, model.head)
    contributions = explainer.attribute(make_inputs(50, seed=6), baselines=make_inputs(30, seed=7))
    shares = variance_share(contributions)
    assert shares[0] > 1 - 1e-6
    assert contributions[:, [2, 3, 4, 5, 6, 7]].abs().max() < 1e-5


@pytest.mark.parametrize("normalization", ["none", "vbn"])
def test_agrees_with_modality_interactions_on_a_product_background(normalization):
    model = make_model(normalization, classes=2)
    rows = make_inputs(4, seed=8)
    combinations = torch.cartesian_prod(*[torch.arange(4)] * 3)  # every (i, j, k): 64 rows
    background = tuple(x[combinations[:, m]] for m, x in enumerate(rows))
    inputs, target = make_inputs(6, seed=9), torch.tensor([1, 0, 1, 1, 0, 0])
    exact = TensorFusionDisentangle(model, model.fusion, model.head).attribute(
        inputs, target, baselines=rows
    )
    estimate = ModalityInteractions(model).attribute(inputs, baselines=background, target=target)
    torch.testing.assert_close(estimate, exact, atol=1e-5, rtol=1e-4)


def test_user_fusion_module():
    class Zadeh(nn.Module):
        def forward(self, a, b):
            one = torch.ones(len(a), 1)
            return torch.einsum(
                "bi,bj->bij", torch.cat([one, a], 1), torch.cat([one, b], 1)
            ).flatten(1)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.fusion, self.head = (
                nn.Linear(4, 2),
                nn.Linear(3, 3),
                Zadeh(),
                nn.Linear(12, 2),
            )

        def forward(self, x, y):
            return self.head(self.fusion(self.a(x), self.b(y)))

    model = Model()
    explainer = TensorFusionDisentangle(model, "fusion", "head")
    assert explainer.subsets is None
    inputs = (torch.randn(5, 4), torch.randn(5, 3))
    contributions = explainer.attribute(
        inputs, target=0, baselines=(torch.randn(8, 4), torch.randn(8, 3))
    )
    assert explainer.subsets == [(), (0,), (1,), (0, 1)]
    torch.testing.assert_close(contributions.sum(1), model(*inputs)[:, 0])


def test_shapley_values_equal_the_permutation_average():
    """phi_m from the contributions = the classical Shapley value of the game
    v(S) = sum of c_L over L in S, averaged over all orderings of the modalities."""
    model = make_model("ibn")
    explainer = TensorFusionDisentangle(model, model.fusion, model.head)
    contributions = explainer.attribute(make_inputs(4, seed=11), target=2)
    subsets = explainer.subsets

    def value(members, row):
        return sum(contributions[row, c] for c, s in enumerate(subsets) if set(s) <= members)

    expected = torch.zeros(4, 3)
    for row in range(4):
        for order in itertools.permutations(range(3)):
            for position, m in enumerate(order):
                before = set(order[:position])
                expected[row, m] += (
                    value(before | {m}, row) - value(before, row)
                ) / math.factorial(3)
    torch.testing.assert_close(shapley_values(contributions, subsets), expected)


def test_variance_share():
    contributions = torch.randn(30, 8)
    variances = torch.tensor([contributions[:, c].var(unbiased=False).item() for c in range(1, 8)])
    torch.testing.assert_close(variance_share(contributions), variances / variances.sum())


def test_leaves_the_model_as_found(model_state):
    model = make_model("ibn").train()  # attribution switches to eval and back
    state = model_state(model)
    TensorFusionDisentangle(model, model.fusion, model.head).attribute(make_inputs(5), target=0)
    state.assert_unchanged()  # IBN running statistics untouched
    with pytest.raises(ValueError, match="target"):
        TensorFusionDisentangle(model, model.fusion, model.head).attribute(make_inputs(5), target=7)
    state.assert_unchanged()
    raw = make_model("vbn").train()
    state = model_state(raw)
    inputs = make_inputs(5)
    copies = [x.clone() for x in inputs]
    TensorFusionDisentangle(raw, raw.fusion, raw.head).attribute(
        inputs, target=1, baselines=make_inputs(9)
    )
    state.assert_unchanged()
    assert all(torch.equal(a, b) for a, b in zip(inputs, copies, strict=True))


def test_bad_inputs_name_the_argument():
    ibn, raw = make_model("ibn"), make_model("none")
    explain_ibn = TensorFusionDisentangle(ibn, ibn.fusion, ibn.head)
    explain_raw = TensorFusionDisentangle(raw, raw.fusion, raw.head)
    inputs = make_inputs(4)
    with pytest.raises(ValueError, match="baselines must be None"):
        explain_ibn.attribute(inputs, target=0, baselines=inputs)
    with pytest.raises(ValueError, match=r"baselines .* is required"):
        explain_raw.attribute(inputs, target=0)
    with pytest.raises(ValueError, match="baselines must hold 3"):
        explain_raw.attribute(inputs, target=0, baselines=inputs[:2])
    with pytest.raises(ValueError, match="target is required"):
        explain_ibn.attribute(inputs)
    with pytest.raises(ValueError, match="target must be one index or one per sample"):
        explain_ibn.attribute(inputs, target=[0, 1])
    with pytest.raises(ValueError, match="inputs\\[1\\] contains NaN"):
        explain_ibn.attribute((inputs[0], inputs[1] * float("nan"), inputs[2]), target=0)
    with pytest.raises(TypeError, match=r"head must be an nn\.Linear"):
        TensorFusionDisentangle(ibn, ibn.fusion, ibn.encoders[0])
    with pytest.raises(ValueError, match="fusion_layer must be a submodule"):
        TensorFusionDisentangle(ibn, raw.fusion, ibn.head)
    with pytest.raises(TypeError, match="forward_func"):
        TensorFusionDisentangle(lambda x: x, ibn.fusion, ibn.head)

    class Between(nn.Module):  # something between the fusion and the head
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *x):
            features = [enc(v) for enc, v in zip(self.model.encoders, x, strict=True)]
            return self.model.head(self.model.fusion(*features).relu())

    wrapped = Between(raw)
    with pytest.raises(ValueError, match="head must read the output of fusion_layer"):
        TensorFusionDisentangle(wrapped, raw.fusion, raw.head).attribute(
            inputs, target=0, baselines=inputs
        )

    class NotZadeh(nn.Module):
        def forward(self, a, b):
            return torch.einsum("bi,bj->bij", a, b).flatten(1)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fusion, self.head = NotZadeh(), nn.Linear(6, 1)

        def forward(self, x, y):
            return self.head(self.fusion(x, y))

    model = Model()
    with pytest.raises(ValueError, match="Zadeh's flattened product"):
        TensorFusionDisentangle(model, model.fusion, model.head).attribute(
            (torch.randn(3, 2), torch.randn(3, 3)), baselines=(torch.randn(3, 2), torch.randn(3, 3))
        )

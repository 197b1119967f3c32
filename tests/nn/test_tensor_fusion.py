import copy
import itertools
import math

import pytest
import torch

from captum_multimodal.nn import (
    IterativeBatchNorm,
    ModalityWeights,
    TensorFusion,
    VectorBatchNorm,
    modality_subsets,
)

LETTERS = "ijklmn"


def padded(f):
    return torch.cat([torch.ones(len(f), 1, dtype=f.dtype), f], dim=1)


def explicit_fusion(features):
    """Zadeh's product written as one einsum over the padded vectors."""
    spec = ",".join(f"b{LETTERS[m]}" for m in range(len(features)))
    out = torch.einsum(f"{spec}->b{LETTERS[: len(features)]}", *map(padded, features))
    return out.reshape(len(features[0]), -1)


def outer(features, subset):
    """(B, prod d_m over subset) = vec of the outer product of the subset's features."""
    spec = ",".join(f"b{LETTERS[m]}" for m in subset)
    out = torch.einsum(
        f"{spec}->b{''.join(LETTERS[m] for m in subset)}", *[features[m] for m in subset]
    )
    return out.reshape(len(features[0]), -1)


def random_features(dims, batch=64, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    # correlated modalities with non-zero means, so that every moment matters
    shared = torch.randn(batch, 1, generator=generator, dtype=dtype)
    return [
        torch.randn(batch, d, generator=generator, dtype=dtype) + shared * (m + 1) + m - 0.5
        for m, d in enumerate(dims)
    ]


def test_fusion_equals_explicit_outer_product():
    features = random_features([2, 3, 2], batch=5)
    fusion = TensorFusion([2, 3, 2])
    torch.testing.assert_close(fusion(*features), explicit_fusion(features))
    assert fusion.out_features == 3 * 4 * 3


@pytest.mark.parametrize("dims", [[3], [2, 3], [2, 1, 3], [1, 2, 2, 2]])
def test_each_block_holds_the_product_of_its_subset(dims):
    """A head that reads one block only computes <w, vec(x)f^m over the subset>."""
    features = random_features(dims, batch=6)
    fusion = TensorFusion(dims)
    fused = fusion(*features)
    seen = torch.zeros(fusion.out_features, dtype=torch.long)
    for subset in fusion.subsets:
        head = torch.nn.Linear(fusion.out_features, 1, bias=False).double()
        w = torch.randn(math.prod(dims[m] for m in subset), dtype=torch.float64)
        with torch.no_grad():
            head.weight.zero_()
            head.weight[0, fusion.block_indices(subset)] = w
        block = outer(features, subset) if subset else torch.ones(6, 1, dtype=torch.float64)
        torch.testing.assert_close(head(fused)[:, 0], block @ w)
        seen[fusion.block_indices(subset)] += 1
    assert torch.equal(seen, torch.ones_like(seen))  # the blocks partition the entries


def test_subsets_are_ordered_by_size_then_lexicographically():
    subsets = modality_subsets(4)
    assert subsets[0] == () and len(subsets) == 16 and len(set(subsets)) == 16
    assert [len(s) for s in subsets] == sorted(len(s) for s in subsets)
    assert subsets[5:11] == list(itertools.combinations(range(4), 2))


def collections(elements):
    """Every set of disjoint non-empty subsets of ``elements`` (unordered)."""
    if not elements:
        yield []
        return
    first, rest = elements[0], elements[1:]
    yield from collections(rest)  # first stays outside every block
    for size in range(len(rest) + 1):
        for others in itertools.combinations(rest, size):
            remaining = [e for e in rest if e not in others]
            for tail in collections(remaining):
                yield [(first, *others), *tail]


def closed_form(features, subset):
    """The poster's inclusion-exclusion: sum over l of (-1)^l l! over l disjoint blocks,
    the features outside the blocks times the batch means of the blocks' products."""
    total = 0
    batch = len(features[0])
    for blocks in collections(list(subset)):
        inside = {m for block in blocks for m in block}
        factors, specs = [], []
        for m in subset:
            if m not in inside:
                factors.append(features[m])
                specs.append(f"b{LETTERS[m]}")
        for block in blocks:
            factors.append(
                outer(features, block).mean(0).reshape([features[m].shape[1] for m in block])
            )
            specs.append("".join(LETTERS[m] for m in block))
        out = "b" + "".join(LETTERS[m] for m in subset)
        term = (
            torch.einsum(f"{','.join(specs)}->{out}", *factors) if inside != set(subset) else None
        )
        if term is None:  # no free feature: a constant over the batch
            term = torch.einsum(f"{','.join(specs)}->{out[1:]}", *factors).expand(
                batch, *[-1] * len(subset)
            )
        total = total + (-1) ** len(blocks) * math.factorial(len(blocks)) * term
    return total.reshape(batch, -1)


@pytest.mark.parametrize("dims", [[2, 3], [2, 1, 3], [2, 2, 1, 2]])
def test_ibn_equals_the_closed_inclusion_exclusion_formula(dims):
    features = random_features(dims)
    ibn = IterativeBatchNorm(dims, eps=0.0).double()
    fused = ibn(*features)
    for subset in ibn.subsets[1:]:
        psi = closed_form(features, subset)
        expected = psi / psi.pow(2).sum(1).mean().sqrt()
        torch.testing.assert_close(fused[:, ibn.block_indices(subset)], expected)
    assert torch.equal(fused[:, 0], torch.ones(len(fused), dtype=fused.dtype))


@pytest.mark.parametrize("dims", [[2, 3, 2], [1, 2, 2, 2]])
def test_ibn_blocks_have_batch_mean_zero_and_unit_mean_square(dims):
    features = random_features(dims)
    ibn = IterativeBatchNorm(dims).double()
    fused = ibn(*features)
    for subset in ibn.subsets[1:]:
        block = fused[:, ibn.block_indices(subset)]
        assert block.mean(0).abs().max() < 1e-10
        assert abs(block.pow(2).sum(1).mean() - 1) < 1e-4
        assert block.abs().max() > 0.1


def test_ibn_up_to_order_two_is_vbn_before_the_products():
    """Order 1: VBN itself. Order 2: the product of the VBN features minus its batch mean
    (their cross-covariance), rescaled to unit mean squared norm."""
    dims = [2, 3, 2]
    features = random_features(dims)
    ibn = IterativeBatchNorm(dims, eps=0.0).double()
    vbn = [VectorBatchNorm(d, eps=0.0).double() for d in dims]
    fused = ibn(*features)
    normalised = [norm(f) for norm, f in zip(vbn, features, strict=True)]
    for subset in ibn.subsets[1:]:
        if len(subset) > 2:
            continue
        product = outer(normalised, subset)
        if len(subset) == 2:
            product = product - product.mean(0)
        expected = product / product.pow(2).sum(1).mean().sqrt()
        torch.testing.assert_close(fused[:, ibn.block_indices(subset)], expected)
    third = fused[:, ibn.block_indices((0, 1, 2))]
    plain = outer(normalised, (0, 1, 2))
    plain = (plain - plain.mean(0)) / (plain - plain.mean(0)).pow(2).sum(1).mean().sqrt()
    assert not torch.allclose(third, plain, atol=1e-3)  # order 3 is more than VBN products


def test_eval_uses_the_running_statistics():
    """Running means of X_1, X_2, X_12 and block mean squares by EMA written here;
    eval output = the order-2 Wick formula with them."""
    dims = [2, 3]
    ibn = IterativeBatchNorm(dims, momentum=0.3).double()
    mu1, mu2, mu12 = torch.zeros(2), torch.zeros(3), torch.zeros(2, 3)
    mu1, mu2, mu12 = mu1.double(), mu2.double(), mu12.double()
    squares = torch.ones(3, dtype=torch.float64)
    for seed in range(4):
        f1, f2 = random_features(dims, batch=32, seed=seed)
        ibn(f1, f2)
        b1, b2, b12 = f1.mean(0), f2.mean(0), torch.einsum("bi,bj->ij", f1, f2) / 32
        psi = [
            f1 - b1,
            f2 - b2,
            torch.einsum("bi,bj->bij", f1, f2)
            - torch.einsum("i,bj->bij", b1, f2 - b2)
            - torch.einsum("bi,j->bij", f1 - b1, b2)
            - b12,
        ]
        batch_squares = torch.stack([p.flatten(1).pow(2).sum(1).mean() for p in psi])
        mu1, mu2, mu12 = (0.7 * a + 0.3 * b for a, b in ((mu1, b1), (mu2, b2), (mu12, b12)))
        squares = 0.7 * squares + 0.3 * batch_squares
    running = ibn.running_means()
    torch.testing.assert_close(running[(0, 1)], mu12)
    torch.testing.assert_close(ibn.running_sq_norm, squares)
    ibn.eval()
    f1, f2 = random_features(dims, batch=5, seed=9)
    before = copy.deepcopy(ibn.state_dict())
    fused = ibn(f1, f2)
    pair = (
        torch.einsum("bi,bj->bij", f1, f2)
        - torch.einsum("i,bj->bij", mu1, f2 - mu2)
        - torch.einsum("bi,j->bij", f1 - mu1, mu2)
        - mu12
    ).reshape(5, -1)
    scales = (squares + ibn.eps).rsqrt()
    torch.testing.assert_close(fused[:, ibn.block_indices((0,))], (f1 - mu1) * scales[0])
    torch.testing.assert_close(fused[:, ibn.block_indices((0, 1))], pair * scales[2])
    after = ibn.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # eval updates nothing


class Wrapped(torch.nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.ibn = IterativeBatchNorm(dims, eps=0.0).double()
        self.dims = dims

    def forward(self, x):
        return self.ibn(*x.split(self.dims, dim=1))


def test_recompute_statistics_gives_the_whole_data_statistics():
    dims = [2, 2, 1]
    model = Wrapped(dims).train()
    data = torch.cat(random_features(dims, batch=90, seed=3), dim=1)
    for rows in data.split(16):  # stale running statistics from training
        model(rows)
    batches = torch.utils.data.DataLoader(data, batch_size=32)
    model.ibn.recompute_statistics(model, batches)
    assert model.training and model.ibn.training  # modes restored
    with torch.no_grad():
        evaluated = model.eval()(data)
        whole_batch = copy.deepcopy(model).train()(data)  # the batch statistics of all data
    torch.testing.assert_close(evaluated, whole_batch)


def test_vbn_train_and_eval():
    norm = VectorBatchNorm(3, momentum=0.5).double()
    x = random_features([3], batch=40)[0] * 4
    out = norm(x)
    assert out.mean(0).abs().max() < 1e-10
    assert abs(out.pow(2).sum(1).mean() - 1) < 1e-5
    expected_mean = 0.5 * x.mean(0)
    expected_square = 0.5 * 3 + 0.5 * (x - x.mean(0)).pow(2).sum(1).mean()
    torch.testing.assert_close(norm.running_mean, expected_mean)
    torch.testing.assert_close(norm.running_sq_norm, expected_square)
    norm.eval()
    torch.testing.assert_close(
        norm(x[:3]), (x[:3] - expected_mean) / (expected_square + 1e-5).sqrt()
    )
    assert torch.equal(norm.running_mean, expected_mean)


def test_train_eval_switching_changes_no_parameter_or_buffer():
    ibn = IterativeBatchNorm([2, 2])
    ibn(*random_features([2, 2], dtype=torch.float32))
    before = copy.deepcopy(ibn.state_dict())
    ibn.eval().train().eval()
    assert all(torch.equal(before[k], v) for k, v in ibn.state_dict().items())


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_modality_weights_relevance_and_regularizer(p):
    torch.manual_seed(0)
    head = ModalityWeights([2, 3, 1], out_features=2, p=p)
    fusion = TensorFusion([2, 3, 1])
    norms = torch.stack(
        [head.weight[:, fusion.block_indices(s)].norm() for s in fusion.subsets[1:]]
    )
    q = 2 * p / (p + 1)
    beta = norms ** (2 / (p + 1)) / (norms ** (2 * p / (p + 1))).sum() ** (1 / p)
    torch.testing.assert_close(head.relevance(), beta.detach())
    torch.testing.assert_close(head.relevance().pow(p).sum(), torch.tensor(1.0))
    penalty = head.regularizer(0.1)
    torch.testing.assert_close(penalty, 0.1 * (norms**q).sum() ** (2 / q))
    penalty.backward()
    assert head.weight.grad[:, 0].abs().max() == 0  # the constant column is not penalised
    assert head.weight.grad[:, 1:].abs().min() > 0


def test_bad_inputs_name_the_argument():
    fusion = TensorFusion([2, 3])
    with pytest.raises(ValueError, match="features\\[1\\]"):
        fusion(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="expected 2 modality tensors"):
        fusion(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="features\\[0\\]"):
        fusion(torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="dims"):
        TensorFusion([2, 0])
    with pytest.raises(ValueError, match="subset"):
        fusion.block_indices((1, 0))
    with pytest.raises(ValueError, match="at least 2 samples"):
        IterativeBatchNorm([2, 3])(torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="momentum"):
        VectorBatchNorm(3, momentum=0.0)
    with pytest.raises(ValueError, match="p must"):
        ModalityWeights([2], 1, p=0.5)

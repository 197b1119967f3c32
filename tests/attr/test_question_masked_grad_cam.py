import pytest
import scipy.stats
import torch
from captum.attr import LayerGradCam
from torch import nn

from captum_multimodal import MLBAdapter, QuestionMaskedGradCAM, rank_correlation, top_neurons
from captum_multimodal.nn import Hadamard


@pytest.fixture
def explainer(tiny_mlb):
    return QuestionMaskedGradCAM.from_adapter(MLBAdapter(tiny_mlb))


@pytest.fixture
def target(tiny_mlb, batch):
    with torch.no_grad():
        return tiny_mlb(batch["image"], batch["question"], batch["attention_mask"]).argmax(1)


def args_of(batch):
    return (batch["question"], batch["attention_mask"])


def explicit_forward(model, image, question, mask, words=None):
    """The MLB forward written out, with the Grad-CAM layer and word vectors as leaves."""
    x = image
    layers = list(model.backbone)
    for module in layers[:-3]:
        x = module(x)
    conv = layers[-3](x).detach().requires_grad_()
    features = layers[-1](layers[-2](conv))
    encoder = model.question_encoder
    words = encoder.embedding(question).detach() if words is None else words
    words = words.requires_grad_() if not words.requires_grad else words
    states, _ = encoder.rnn(words)
    q = states[torch.arange(len(states)), mask.sum(1) - 1]
    attended, _ = model.attention(q, features)
    fusion = model.fusion.textual(q) * model.fusion.visual(attended)
    return conv, words, fusion, model.classifier(fusion)


def explicit_masked_cam(model, batch, target, keep):
    conv, _, fusion, logits = explicit_forward(model, batch["image"], *args_of(batch))
    y = logits.gather(1, target[:, None]).sum()
    (to_fusion,) = torch.autograd.grad(y, fusion, retain_graph=True)
    (to_conv,) = torch.autograd.grad(fusion, conv, to_fusion * keep)
    return torch.relu((to_conv.mean(dim=(2, 3), keepdim=True) * conv).sum(1, keepdim=True))


def test_all_neurons_is_layer_grad_cam_and_none_is_zero(tiny_mlb, batch, explainer, target):
    width = tiny_mlb.classifier.in_features
    cam = explainer.attribute(
        batch["image"], target, top_n=width, additional_forward_args=args_of(batch)
    )
    expected = LayerGradCam(tiny_mlb, tiny_mlb.backbone.last_conv).attribute(
        batch["image"],
        target=target,
        additional_forward_args=args_of(batch),
        relu_attributions=True,
    )
    assert cam.shape == expected.shape == (8, 1, 8, 8)
    torch.testing.assert_close(cam, expected, atol=1e-6, rtol=0)
    assert expected.abs().sum() > 0
    zero = explainer.attribute(
        batch["image"], target, top_n=0, additional_forward_args=args_of(batch)
    )
    assert (zero == 0).all()


def per_sample_jacobian(model, batch, b):
    n = int(batch["attention_mask"][b].sum())
    image, question, mask = (
        batch["image"][b : b + 1],
        batch["question"][b : b + 1, :n],
        batch["attention_mask"][b : b + 1, :n],
    )
    words = model.question_encoder.embedding(question).detach()

    def fusion_of(w):
        return explicit_forward(model, image, question, mask, words=w)[2][0]

    return torch.autograd.functional.jacobian(fusion_of, words)[:, 0]  # (K, T, D)


@pytest.mark.parametrize("kind", ["sum", "l1", "l2"])
def test_sensitivities_are_reductions_of_the_explicit_jacobian(tiny_mlb, batch, explainer, kind):
    scores = explainer.neuron_sensitivity(batch["image"], args_of(batch), sensitivity=kind)
    per_word = explainer.neuron_sensitivity(
        batch["image"], args_of(batch), word_index=1, sensitivity=kind
    )
    reduce = {
        "sum": lambda j: j.sum(dim=(1, 2)) if j.dim() == 3 else j.sum(1),
        "l1": lambda j: j.abs().flatten(1).sum(1),
        "l2": lambda j: j.flatten(1).norm(dim=1),
    }[kind]
    for b in range(8):
        jacobian = per_sample_jacobian(tiny_mlb, batch, b)
        torch.testing.assert_close(scores[b], reduce(jacobian), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(per_word[b], reduce(jacobian[:, 1]), rtol=1e-4, atol=1e-6)


class HandModel(nn.Module):
    """L = conv(image); v = mean(L); A = v * (w * q); y = C A: everything by hand."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)
        self.question = nn.Identity()
        self.scale = nn.Linear(2, 2, bias=False)
        self.fusion = Hadamard()
        self.head = nn.Linear(2, 3, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(2)[:, :, None, None])
            self.scale.weight.copy_(torch.diag(torch.tensor([2.0, 0.5])))
            self.head.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -3.0], [0.5, 2.0]]))

    def forward(self, image, q):
        maps = self.conv(image)
        return self.head(self.fusion(maps.mean(dim=(2, 3)), self.scale(self.question(q))))


def test_mask_acts_at_the_fusion_layer_as_computed_by_hand():
    model = HandModel().eval()
    image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[4.0, 0.0], [2.0, 2.0]]]])  # means 2.5, 2
    q = torch.tensor([[1.0, 3.0]])
    explainer = QuestionMaskedGradCAM(model, "conv", "fusion", "question")
    # dA_k/dq = v_k w_k on the diagonal: sensitivities 5.0 and 1.0
    torch.testing.assert_close(
        explainer.neuron_sensitivity(image, (q,)), torch.tensor([[5.0, 1.0]])
    )
    w, c = torch.tensor([2.0, 0.5]), torch.tensor([1.0, -3.0])  # target 1
    for top_n, keep in [(1, torch.tensor([1.0, 0.0])), (2, torch.tensor([1.0, 1.0]))]:
        weights = c * keep * w * q[0] / 4  # dy/dL^k_ij through A_k only, averaged over 4 cells
        expected = torch.relu((weights[:, None, None] * image[0]).sum(0))
        cam = explainer.attribute(image, target=1, top_n=top_n, additional_forward_args=(q,))
        torch.testing.assert_close(cam[0, 0], expected)


def test_batch_equals_per_sample(tiny_mlb, batch, explainer, target):
    cams = explainer.attribute(
        batch["image"], target, top_n=5, additional_forward_args=args_of(batch)
    )
    for b in range(8):
        n = int(batch["attention_mask"][b].sum())
        single = explainer.attribute(
            batch["image"][b : b + 1],
            target[b : b + 1],
            top_n=5,
            additional_forward_args=(batch["question"][b : b + 1, :n],),
        )
        torch.testing.assert_close(cams[b : b + 1], single, rtol=1e-4, atol=1e-7)


def test_masked_and_contrastive_equal_the_explicit_computation(tiny_mlb, batch, explainer, target):
    other_question = batch["question"].roll(1, dims=0)
    other_mask = batch["attention_mask"].roll(1, dims=0)
    mine = explainer.neuron_sensitivity(batch["image"], args_of(batch))
    theirs = explainer.neuron_sensitivity(batch["image"], (other_question, other_mask))
    _, top_mine = top_neurons(mine, 6)
    _, top_theirs = top_neurons(theirs, 6)
    keep = torch.zeros_like(mine).scatter(1, top_mine, 1.0)
    torch.testing.assert_close(
        explainer.attribute(
            batch["image"], target, top_n=6, additional_forward_args=args_of(batch)
        ),
        explicit_masked_cam(tiny_mlb, batch, target, keep),
    )
    contrast_keep = keep * (1 - torch.zeros_like(mine).scatter(1, top_theirs, 1.0))
    assert not (
        contrast_keep.bool() & torch.zeros_like(mine).scatter(1, top_theirs, 1.0).bool()
    ).any()
    assert (contrast_keep.sum(1) < 6).any()  # the contrast really removed something
    cam = explainer.attribute(
        batch["image"],
        target,
        top_n=6,
        additional_forward_args=args_of(batch),
        contrast_inputs=batch["image"],
        contrast_additional_forward_args=(other_question, other_mask),
    )
    torch.testing.assert_close(cam, explicit_masked_cam(tiny_mlb, batch, target, contrast_keep))


def test_per_word_variant_masks_by_that_words_sensitivity(tiny_mlb, batch, explainer, target):
    scores = explainer.neuron_sensitivity(batch["image"], args_of(batch), word_index=4)
    keep = torch.zeros_like(scores).scatter(1, top_neurons(scores, 4)[1], 1.0)
    cam = explainer.attribute(
        batch["image"], target, top_n=4, additional_forward_args=args_of(batch), word_index=4
    )
    torch.testing.assert_close(cam, explicit_masked_cam(tiny_mlb, batch, target, keep))


def test_sweep_equals_separate_calls(batch, explainer, target):
    maps = explainer.sweep(
        batch["image"], target, [3, 10, 1000], additional_forward_args=args_of(batch)
    )
    assert list(maps) == [3, 10, 16]  # 1000 clipped to K = 16
    for n, cam in maps.items():
        single = explainer.attribute(
            batch["image"], target, top_n=n, additional_forward_args=args_of(batch)
        )
        torch.testing.assert_close(cam, single)


def test_helpers_against_scipy_and_sorting():
    torch.manual_seed(0)
    a, b = torch.randint(0, 5, (4, 30)).float(), torch.randn(4, 30)
    result = rank_correlation(a, b)
    for row in range(4):
        assert result[row].item() == pytest.approx(
            scipy.stats.spearmanr(a[row], b[row]).statistic, abs=1e-6
        )
    values, indices = top_neurons(b, 5)
    expected = b.sort(dim=1, descending=True)
    torch.testing.assert_close(values, expected.values[:, :5])
    assert torch.equal(b.gather(1, indices), values)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"top_n": 17}, ValueError, "top_n"),
        ({"top_n": -1}, ValueError, "top_n"),
        ({"top_n": 2.5}, TypeError, "top_n"),
        ({"sensitivity": "max"}, ValueError, "sensitivity"),
        ({"word_index": 30, "top_n": 4}, ValueError, "word_index"),
    ],
)
def test_bad_arguments_are_named(batch, explainer, target, kwargs, error, name):
    with pytest.raises(error, match=name):
        explainer.attribute(
            batch["image"], target, additional_forward_args=args_of(batch), **kwargs
        )


def test_bad_layers_are_named(tiny_mlb):
    with pytest.raises(ValueError, match="fusion_layer"):
        QuestionMaskedGradCAM(tiny_mlb, "backbone.0", nn.Linear(2, 2), "question_encoder.embedding")
    with pytest.raises(TypeError, match="forward_func"):
        QuestionMaskedGradCAM(lambda x: x, "a", "b", "c")
    explainer = QuestionMaskedGradCAM(
        tiny_mlb, "backbone.0", "fusion.hadamard", "attention.question_projection"
    )
    with pytest.raises(ValueError, match="word_index"):
        explainer.neuron_sensitivity(
            torch.rand(1, 3, 64, 64), (torch.tensor([[5, 6]]),), word_index=0
        )
    explainer = QuestionMaskedGradCAM(
        tiny_mlb, "fusion.textual", "fusion.hadamard", "question_encoder.embedding"
    )
    with pytest.raises(ValueError, match="layer must output"):
        explainer.attribute(
            torch.rand(1, 3, 64, 64), 0, top_n=1, additional_forward_args=(torch.tensor([[5, 6]]),)
        )


def test_model_and_inputs_are_left_as_found_also_on_error(
    tiny_mlb, batch, explainer, target, model_state
):
    kwargs = {"top_n": 4, "additional_forward_args": args_of(batch), "relu_attributions": False}
    trainable = explainer.attribute(batch["image"], target, **kwargs)
    tiny_mlb.requires_grad_(False)  # frozen models give the same maps and stay frozen
    state = model_state(tiny_mlb)
    image = batch["image"].clone()
    frozen = explainer.attribute(batch["image"], target, **kwargs)
    assert frozen.abs().sum() > 0
    torch.testing.assert_close(frozen, trainable)
    state.assert_unchanged()
    assert torch.equal(image, batch["image"]) and not batch["image"].requires_grad
    failing = tiny_mlb.classifier.register_forward_hook(lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        explainer.attribute(batch["image"], target, **kwargs)
    failing.remove()
    state.assert_unchanged()

import copy
import statistics

import pytest
import torch
from captum.attr import NoiseTunnel
from torch import nn

from captum_multimodal import HadamardDeviation, standardize_image, token_scores
from captum_multimodal.adapters import MLBAdapter


class GuidedReLU(torch.autograd.Function):
    """The guided rule written out: pass a gradient only where input and gradient are positive."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0) * (grad > 0)


class GuidedReLUModule(nn.Module):
    def forward(self, x):
        return GuidedReLU.apply(x)


def explicit(model, image, question, mask):
    """Eq. 2-3 by hand: F detached, one autograd.grad from V to I and one from Q to q."""
    encoder = model.question_encoder
    words = encoder.embedding(question).detach().requires_grad_()
    states, _ = encoder.rnn(words)
    q = states[torch.arange(len(states)), mask.sum(1) - 1]
    image = image.clone().requires_grad_()
    attended, _ = model.attention(q, model.backbone(image))
    Q, V = model.fusion.textual(q), model.fusion.visual(attended)
    F = (Q * V).detach()
    (grad_v,) = torch.autograd.grad(V, image, V - F, retain_graph=True)
    (grad_q,) = torch.autograd.grad(Q, words, Q - F)
    return grad_v, grad_q


def test_plain_gradients_match_explicit_autograd(tiny_mlb, batch):
    explainer = HadamardDeviation.from_adapter(MLBAdapter(tiny_mlb), guided=False)
    args = (batch["question"], batch["attention_mask"])
    visual, textual = explainer.attribute(batch["image"], additional_forward_args=args)
    expected_v, expected_q = explicit(tiny_mlb, batch["image"], *args)
    torch.testing.assert_close(visual, expected_v)
    torch.testing.assert_close(textual, expected_q)
    assert visual.abs().sum() > 0 and textual.abs().sum() > 0


def test_guided_equals_every_relu_replaced_by_the_guided_rule(tiny_mlb, batch):
    explainer = HadamardDeviation.from_adapter(MLBAdapter(tiny_mlb), guided=True)
    args = (batch["question"], batch["attention_mask"])
    visual, textual = explainer.attribute(batch["image"], additional_forward_args=args)
    guided_copy = copy.deepcopy(tiny_mlb)
    for name, module in list(guided_copy.backbone.named_children()):
        if isinstance(module, nn.ReLU):
            setattr(guided_copy.backbone, name, GuidedReLUModule())
    expected_v, expected_q = explicit(guided_copy, batch["image"], *args)
    torch.testing.assert_close(visual, expected_v)
    torch.testing.assert_close(textual, expected_q)
    plain_v, _ = explicit(tiny_mlb, batch["image"], *args)
    assert not torch.allclose(visual, plain_v)  # the guided rule really changed something


def test_no_leak_between_the_two_paths(tiny_mlb, batch):
    """Cutting the q -> attention path (or the Q -> F path) changes no value in the forward
    pass, so an explanation without leaks must not change either."""
    with torch.no_grad():  # a peaked attention, so that the q -> attention path matters
        tiny_mlb.attention.glimpse_logits.weight.mul_(100)
        tiny_mlb.attention.question_projection[0].weight.mul_(10)
    explainer = HadamardDeviation.from_adapter(MLBAdapter(tiny_mlb), guided=False)
    args = (batch["question"], batch["attention_mask"])
    visual, textual = explainer.attribute(batch["image"], additional_forward_args=args)

    cut = tiny_mlb.attention.register_forward_pre_hook(lambda m, a: (a[0].detach(), a[1]))
    try:
        _, textual_cut = explainer.attribute(batch["image"], additional_forward_args=args)
    finally:
        cut.remove()
    assert torch.equal(textual, textual_cut)

    cut = tiny_mlb.fusion.hadamard.register_forward_pre_hook(lambda m, a: (a[0].detach(), a[1]))
    try:
        visual_cut, _ = explainer.attribute(batch["image"], additional_forward_args=args)
    finally:
        cut.remove()
    assert torch.equal(visual, visual_cut)

    # negative control: one backward from both roots does leak the attention path into q
    encoder = tiny_mlb.question_encoder
    words = encoder.embedding(batch["question"]).detach().requires_grad_()
    states, _ = encoder.rnn(words)
    q = states[torch.arange(8), batch["attention_mask"].sum(1) - 1]
    attended, _ = tiny_mlb.attention(q, tiny_mlb.backbone(batch["image"]))
    Q, V = tiny_mlb.fusion.textual(q), tiny_mlb.fusion.visual(attended)
    F = (Q * V).detach()
    (leaky,) = torch.autograd.grad([Q, V], words, [Q - F, V - F])
    assert (leaky - textual).abs().max() > 1e-5 * textual.abs().max()


def test_batch_equals_per_sample_and_padding_scores_zero(tiny_mlb, batch):
    explainer = HadamardDeviation.from_adapter(MLBAdapter(tiny_mlb))
    args = (batch["question"], batch["attention_mask"])
    visual, textual = explainer.attribute(batch["image"], additional_forward_args=args)
    scores = token_scores(textual, batch["attention_mask"])
    for b in range(8):
        n = int(batch["attention_mask"][b].sum())
        v1, t1 = explainer.attribute(
            batch["image"][b : b + 1], additional_forward_args=(batch["question"][b : b + 1, :n],)
        )
        torch.testing.assert_close(visual[b : b + 1], v1, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(textual[b : b + 1, :n], t1, rtol=1e-4, atol=1e-7)
        assert (textual[b, n:] == 0).all() and (scores[b, n:] == 0).all()


def test_model_and_inputs_are_left_as_found_also_on_error(tiny_mlb, batch, model_state):
    tiny_mlb.fusion.textual.requires_grad_(False)  # a frozen part must stay frozen
    explainer = HadamardDeviation.from_adapter(MLBAdapter(tiny_mlb))
    inputs = {k: batch[k].clone() for k in ("image", "question", "attention_mask")}
    state = model_state(tiny_mlb)
    explainer.attribute(
        batch["image"], additional_forward_args=(batch["question"], batch["attention_mask"])
    )
    state.assert_unchanged()
    assert all(torch.equal(inputs[k], batch[k]) for k in inputs)
    assert not batch["image"].requires_grad
    assert all(p.grad is None for p in tiny_mlb.parameters())

    def fail(*_):
        raise RuntimeError("injected failure")

    failing = tiny_mlb.classifier.register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="injected"):
        explainer.attribute(batch["image"], additional_forward_args=(batch["question"],))
    failing.remove()
    state.assert_unchanged()


def test_noise_tunnel_wraps_it(tiny_mlb, batch):
    explainer = HadamardDeviation.from_adapter(MLBAdapter(tiny_mlb))
    args = (batch["question"], batch["attention_mask"])
    visual, textual = explainer.attribute(batch["image"], additional_forward_args=args)
    tunnel = NoiseTunnel(explainer)
    same_v, same_t = tunnel.attribute(
        batch["image"], nt_type="smoothgrad", nt_samples=3, stdevs=0.0, additional_forward_args=args
    )
    torch.testing.assert_close(same_v, visual, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(same_t, textual, rtol=1e-4, atol=1e-7)
    noisy_v, noisy_t = tunnel.attribute(
        batch["image"], nt_type="smoothgrad", nt_samples=3, stdevs=0.2, additional_forward_args=args
    )
    assert noisy_v.shape == visual.shape and noisy_t.shape == textual.shape
    assert not torch.allclose(noisy_v, visual)


def test_dtype_follows_the_inputs(tiny_mlb, batch):
    model = copy.deepcopy(tiny_mlb).double()
    explainer = HadamardDeviation.from_adapter(MLBAdapter(model))
    visual, textual = explainer.attribute(
        batch["image"].double(), additional_forward_args=(batch["question"],)
    )
    assert visual.dtype == textual.dtype == torch.float64


def test_standardize_image_per_sample_and_channel():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5) * 3 + 1
    z = standardize_image(x)
    for b in range(2):
        for c in range(3):
            values = x[b, c].flatten().tolist()
            mean, std = statistics.fmean(values), statistics.pstdev(values)
            expected = (x[b, c] - mean) / std
            torch.testing.assert_close(z[b, c], expected, rtol=1e-5, atol=1e-5)
    assert (standardize_image(torch.ones(1, 1, 3, 3)) == 0).all()


def test_token_scores_are_z_scores_over_real_tokens():
    torch.manual_seed(1)
    attr = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    z = token_scores(attr, mask)
    for b in range(3):
        n = int(mask[b].sum())
        magnitudes = [float(attr[b, i].abs().sum()) for i in range(n)]
        if n > 1:
            mean, std = statistics.fmean(magnitudes), statistics.pstdev(magnitudes)
            expected = torch.tensor([(m - mean) / std for m in magnitudes])
        else:
            expected = torch.zeros(1)
        torch.testing.assert_close(z[b, :n], expected, rtol=1e-5, atol=1e-5)
        assert (z[b, n:] == 0).all()
    assert not token_scores(torch.ones(1, 3, 2)).isnan().any()


@pytest.mark.parametrize(
    ("build", "call", "error", "name"),
    [
        (
            lambda m: HadamardDeviation(
                m, nn.Linear(2, 2), "fusion.visual", "question_encoder.embedding"
            ),
            None,
            ValueError,
            "textual_layer",
        ),
        (
            lambda m: HadamardDeviation(
                m, "fusion.textual", "fusion.nope", "question_encoder.embedding"
            ),
            None,
            ValueError,
            "visual_layer",
        ),
        (lambda m: HadamardDeviation(lambda x: x, "a", "b", "c"), None, TypeError, "forward_func"),
        (
            lambda m: HadamardDeviation(
                m, "fusion.textual", "attention.question_projection", "question_encoder.embedding"
            ),
            "default",
            ValueError,
            "same shape",
        ),
        (
            lambda m: HadamardDeviation(m, "fusion.textual", "fusion.visual", "fusion.textual"),
            "default",
            ValueError,
            "embedding_layer",
        ),
        (
            lambda m: HadamardDeviation(
                m, "fusion.textual", "fusion.visual", "question_encoder.embedding"
            ),
            "index",
            ValueError,
            "image_index",
        ),
        (
            lambda m: HadamardDeviation(
                m, "fusion.textual", "fusion.visual", "question_encoder.embedding"
            ),
            "int",
            TypeError,
            "image",
        ),
    ],
)
def test_bad_input_is_named(tiny_mlb, batch, build, call, error, name):
    args = (batch["question"], batch["attention_mask"])
    with pytest.raises(error, match=name):
        explainer = build(tiny_mlb)
        if call == "default":
            explainer.attribute(batch["image"], additional_forward_args=args)
        elif call == "index":
            explainer.attribute(batch["image"], additional_forward_args=args, image_index=2)
        elif call == "int":
            explainer.attribute((batch["image"] * 255).long(), additional_forward_args=args)

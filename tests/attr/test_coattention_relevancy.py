import types

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    VisualBertConfig,
    VisualBertForQuestionAnswering,
    VisualBertForVisualReasoning,
)

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    EncoderAdapter,
    RawAttention,
    VisualBertAdapter,
)
from captum_multimodal.attr.relevancy_engine import (
    AttentionEvent,
    AttentionRecording,
    propagate,
    read_out,
)


def visual_bert(head=VisualBertForQuestionAnswering, layers=3):
    torch.manual_seed(0)
    config = VisualBertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=48,
        visual_embedding_dim=12,
        num_labels=6,
        max_position_embeddings=64,
    )
    return head(config).eval()


@pytest.fixture
def inputs():
    torch.manual_seed(1)
    ids = torch.tensor([[2, 7, 8, 9, 10, 3], [2, 11, 12, 3, 0, 0], [2, 13, 3, 0, 0, 0]])
    text_mask = (ids != 0).long()
    regions = torch.randn(3, 4, 12)
    region_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    return ids, regions, text_mask, region_mask


def per_sample_relevancy(model, ids, regions, readout):
    """The rules of the paper, one unpadded sample at a time, written without the engine."""
    out = model(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        visual_embeds=regions,
        output_attentions=True,
    )
    target = out.logits.argmax(1)
    maps = out.attentions
    grads = torch.autograd.grad(out.logits[0, target[0]], maps)
    size = maps[0].shape[-1]
    R = torch.eye(size)
    for a, g in zip(maps, grads, strict=True):
        weighted = (g[0] * a[0]).clamp(min=0).mean(0)
        R = R + weighted @ R
    row = R[readout].clone()
    row[readout] = 0
    return row[: ids.shape[1]], row[ids.shape[1] :]


@pytest.mark.parametrize("head", [VisualBertForQuestionAnswering, VisualBertForVisualReasoning])
def test_batched_engine_equals_per_sample_rules(inputs, head):
    model = visual_bert(head)
    ids, regions, text_mask, region_mask = inputs
    text, image = CoAttentionRelevancy(VisualBertAdapter(model)).attribute(
        (ids, regions), additional_forward_args=(text_mask, region_mask)
    )
    assert text.shape == (3, 6) and image.shape == (3, 4)
    for b in range(3):
        t = int(text_mask[b].sum())
        keep = region_mask[b].bool()
        readout = t - 2 if head is VisualBertForQuestionAnswering else 0
        expected_text, expected_image = per_sample_relevancy(
            model, ids[b : b + 1, :t], regions[b : b + 1][:, keep], readout
        )
        torch.testing.assert_close(text[b, :t], expected_text, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(image[b, keep], expected_image, atol=1e-5, rtol=1e-4)
        assert (text[b, t:] == 0).all() and (image[b, ~keep] == 0).all()
        assert expected_text.abs().sum() + expected_image.abs().sum() > 0


def recording_of(events, sizes, readout_stream, batch=1):
    valid = {name: torch.ones(batch, size, dtype=torch.bool) for name, size in sizes.items()}
    parts = {name: (name, slice(0, size)) for name, size in sizes.items()}
    return AttentionRecording(
        torch.zeros(batch, 2),
        events,
        valid,
        (readout_stream, torch.zeros(batch, dtype=torch.long)),
        parts,
    )


def test_identity_attention_keeps_relevancy_diagonal():
    eye = torch.eye(3)[None, None].expand(1, 2, 3, 3)
    events = [AttentionEvent("x", "x", eye, layer=i) for i in range(2)]
    recording = recording_of(events, {"x": 3}, "x")
    R = propagate(recording, [torch.ones_like(eye)] * 2)["x", "x"]
    assert torch.equal(R, torch.diag_embed(torch.full((1, 3), 4.0)))  # (I + I)(I + I)
    assert (read_out(recording, {("x", "x"): R})["x"] == 0).all()


def test_two_layer_two_stream_toy_by_hand():
    # text stream t (2 tokens), image stream i (2 tokens); layer 0: text self-attention;
    # layer 1: both cross directions (same group), computed from the matrices before layer 1.
    a_tt = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    a_ti = torch.tensor([[1.0, 0.0], [0.4, 0.6]])
    a_it = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    ones = torch.ones(1, 1, 2, 2)
    events = [
        AttentionEvent("t", "t", a_tt[None, None], layer=0),
        AttentionEvent("t", "i", a_ti[None, None], layer=1, group=1),
        AttentionEvent("i", "t", a_it[None, None], layer=1, group=1),
    ]
    R = propagate(recording_of(events, {"t": 2, "i": 2}, "t"), [ones] * 3)
    eye = torch.eye(2)
    r_tt = eye + a_tt  # after the self layer (gradients are ones, all positive)
    residual = r_tt - eye
    bar_tt = residual / residual.sum(1, keepdim=True) + eye
    bar_ii = eye  # zero residual rows stay zero
    # text -> image: R^ti += bar_tt^T a_ti bar_ii ; R^tt += a_ti R^it (R^it = 0 before)
    expected_ti = bar_tt.T @ a_ti @ bar_ii
    expected_tt = r_tt
    # image -> text: R^it += bar_ii^T a_it bar_tt ; R^ii += a_it R^ti(before) = 0
    expected_it = bar_ii.T @ a_it @ bar_tt
    torch.testing.assert_close(R["t", "i"][0], expected_ti)
    torch.testing.assert_close(R["t", "t"][0], expected_tt)
    torch.testing.assert_close(R["i", "t"][0], expected_it)
    torch.testing.assert_close(R["i", "i"][0], eye)


def test_baselines_against_direct_formulas(inputs):
    model = visual_bert()
    ids, regions, text_mask, region_mask = inputs
    adapter = VisualBertAdapter(model)
    args = (text_mask, region_mask)
    out = model(
        input_ids=ids,
        attention_mask=text_mask,
        visual_embeds=regions,
        visual_attention_mask=region_mask,
        output_attentions=True,
    )
    readout = text_mask.sum(1) - 2
    rows = torch.arange(3)
    valid = torch.cat([text_mask, region_mask], 1).float()

    def expected(matrix):
        row = matrix[rows, readout].clone()
        row[rows, readout] = 0
        return (row * valid).split([6, 4], dim=1)

    raw = expected(out.attentions[-1].mean(1))
    rollout = None
    for a in out.attentions:
        layer = 0.5 * a.mean(1) + 0.5 * torch.eye(10)
        layer = layer / layer.sum(-1, keepdim=True)
        rollout = layer if rollout is None else layer @ rollout
    rolled = expected(rollout)
    target = out.logits.argmax(1)
    (grad,) = torch.autograd.grad(out.logits[rows, target].sum(), out.attentions[-1])
    cam = expected((grad.mean(dim=(2, 3), keepdim=True) * out.attentions[-1]).mean(1).clamp(min=0))
    for method, reference in [
        (RawAttention, raw),
        (AttentionRollout, rolled),
        (AttentionGradCAM, cam),
    ]:
        text, image = method(adapter).attribute((ids, regions), additional_forward_args=args)
        torch.testing.assert_close(text, reference[0].detach(), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(image, reference[1].detach(), atol=1e-6, rtol=1e-5)


def test_generic_encoder_adapter_on_bert_switches_to_eager_and_back():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = BertForSequenceClassification(config).eval()
    assert model.config._attn_implementation == "sdpa"
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])
    mask = (ids != 0).long()
    rel = CoAttentionRelevancy(EncoderAdapter(model)).attribute(
        ids, additional_forward_args=(mask,)
    )
    assert model.config._attn_implementation == "sdpa"
    model.set_attn_implementation("eager")
    for b in range(2):
        n = int(mask[b].sum())
        out = model(ids[b : b + 1, :n], output_attentions=True)
        target = out.logits.argmax(1)
        grads = torch.autograd.grad(out.logits[0, target[0]], out.attentions)
        R = torch.eye(n)
        for a, g in zip(out.attentions, grads, strict=True):
            R = R + (g[0] * a[0]).clamp(min=0).mean(0) @ R
        expected = R[0].clone()
        expected[0] = 0
        torch.testing.assert_close(rel[b, :n], expected, atol=1e-5, rtol=1e-4)
        assert (rel[b, n:] == 0).all()


def test_options_and_matrices(inputs):
    model = visual_bert()
    ids, regions, text_mask, region_mask = inputs
    adapter = VisualBertAdapter(model)
    args = (text_mask, region_mask)
    (text, image), matrices = CoAttentionRelevancy(adapter).attribute(
        (ids, regions), additional_forward_args=args, return_matrices=True
    )
    assert matrices["joint", "joint"].shape == (3, 10, 10)
    assert text.shape == (3, 6) and image.shape == (3, 4)
    late_text, _ = CoAttentionRelevancy(adapter, start_layer=3).attribute(
        (ids, regions), additional_forward_args=args
    )
    assert (late_text == 0).all()  # every layer skipped: R stays I, the read-out row is zeroed
    with pytest.raises(ValueError, match="start_layer"):
        CoAttentionRelevancy(adapter, start_layer=-1)


def test_model_left_as_found_also_when_the_forward_raises(inputs, model_state):
    model = visual_bert().train()  # the caller's training mode must come back
    ids, regions, text_mask, region_mask = inputs
    state = model_state(model)
    copies = [t.clone() for t in inputs]
    CoAttentionRelevancy(VisualBertAdapter(model)).attribute(
        (ids, regions), additional_forward_args=(text_mask, region_mask)
    )
    state.assert_unchanged()
    assert all(torch.equal(a, b) for a, b in zip(copies, inputs, strict=True))

    def fail(*_):
        raise RuntimeError("midway")

    failing = model.visual_bert.encoder.layer[1].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="midway"):
        CoAttentionRelevancy(VisualBertAdapter(model)).attribute(
            (ids, regions), additional_forward_args=(text_mask, region_mask)
        )
    failing.remove()
    state.assert_unchanged()
    assert all(p.grad is None for p in model.parameters())


def test_bad_input_is_named(inputs):
    model = visual_bert()
    ids, regions, text_mask, region_mask = inputs
    explainer = CoAttentionRelevancy(VisualBertAdapter(model))
    cases = [
        ((ids,), (text_mask, region_mask), "inputs"),
        ((ids.float(), regions), (text_mask, region_mask), "input_ids"),
        ((ids, regions[:2]), (text_mask, region_mask), "visual_embeds"),
        ((ids, regions), (text_mask[:, :4], region_mask), "attention_mask"),
        ((ids, regions), (text_mask, region_mask * 0), "visual_attention_mask"),
    ]
    for model_inputs, args, name in cases:
        with pytest.raises(ValueError, match=name):
            explainer.attribute(model_inputs, additional_forward_args=args)
    with pytest.raises(TypeError, match="VisualBertForQuestionAnswering"):
        VisualBertAdapter(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="adapter"):
        CoAttentionRelevancy(model)


def test_a_model_without_attention_maps_gets_a_clear_error():
    class NoMaps(torch.nn.Module):
        def forward(self, x, output_attentions=False):
            return types.SimpleNamespace(logits=x, attentions=None)

    with pytest.raises(ValueError, match='attn_implementation="eager"'):
        CoAttentionRelevancy(EncoderAdapter(NoMaps())).attribute(torch.zeros(2, 3))

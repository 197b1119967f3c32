import contextlib
import math

import pytest
import torch
from transformers import (
    LxmertConfig,
    LxmertForPreTraining,
    LxmertForQuestionAnswering,
    LxmertModel,
)
from transformers.models.lxmert.modeling_lxmert import LxmertAttention

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    LxmertAdapter,
    RawAttention,
)

FEAT, POS = 12, 4


def lxmert(head=LxmertForQuestionAnswering, l_layers=2, x_layers=2, r_layers=1):
    torch.manual_seed(0)
    config = LxmertConfig(
        vocab_size=40,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=48,
        l_layers=l_layers,
        x_layers=x_layers,
        r_layers=r_layers,
        visual_feat_dim=FEAT,
        visual_pos_dim=POS,
        num_qa_labels=6,
        num_object_labels=5,
        num_attr_labels=3,
        max_position_embeddings=64,
        initializer_range=0.2,  # large enough weights that second-order terms show
    )
    return head(config).eval()


def encoder_of(model):
    return model.encoder if isinstance(model, LxmertModel) else model.lxmert.encoder


def batch(text_length=6, boxes=4):
    """Three samples; text padding in samples 1 and 2, box padding in samples 1 and 2."""
    torch.manual_seed(1)
    ids = torch.randint(4, 40, (3, text_length))
    ids[:, 0] = 2
    text_mask = torch.ones(3, text_length, dtype=torch.long)
    text_mask[1, text_length - 2 :] = 0
    text_mask[2, 3:] = 0
    ids = ids * text_mask
    feats, pos = torch.randn(3, boxes, FEAT), torch.rand(3, boxes, POS)
    box_mask = torch.ones(3, boxes, dtype=torch.long)
    box_mask[1, boxes - 2 :] = 0
    box_mask[2, 0] = 0  # a pad box that is not at the end
    return (ids, feats, pos), (text_mask, box_mask)


@contextlib.contextmanager
def explicit_attention(model):
    """Replaces every LxmertAttention's forward by the test's own implementation of
    scaled dot-product attention; keeps each call's (queries, probabilities) and the
    language input of each cross layer (to tell the two cross directions apart by
    their queries, not by their order)."""
    calls, language_inputs = {}, {}
    attention = [m for m in model.modules() if isinstance(m, LxmertAttention)]

    def make(module):
        def forward(hidden_states, context, attention_mask=None, output_attentions=False):
            heads, size = module.num_attention_heads, module.attention_head_size

            def split(x):
                return x.view(*x.shape[:2], heads, size).transpose(1, 2)

            scores = split(module.query(hidden_states)) @ split(module.key(context)).transpose(
                -1, -2
            )
            scores = scores / math.sqrt(size)
            if attention_mask is not None:
                scores = scores + attention_mask
            probs = scores.softmax(dim=-1)
            calls[module].append((hidden_states, probs))
            out = (probs @ split(module.value(context))).transpose(1, 2).flatten(2)
            return (out, probs) if output_attentions else (out,)

        return forward

    def keep_language(module, args):
        language_inputs[module] = args[0]

    handles = [x.register_forward_pre_hook(keep_language) for x in encoder_of(model).x_layers]
    for module in attention:
        calls[module] = []
        module.forward = make(module)
    try:
        yield calls, language_inputs
    finally:
        for module in attention:
            del module.forward
        for handle in handles:
            handle.remove()


def all_maps(model, calls, language_inputs):
    """The maps by role: language self, vision self, and per cross layer the four maps."""
    encoder = encoder_of(model)
    lang = [calls[layer.attention.self][0][1] for layer in encoder.layer]
    vis = [calls[layer.attention.self][0][1] for layer in encoder.r_layers]
    cross = []
    for x in encoder.x_layers:
        (q0, p0), (q1, p1) = calls[x.visual_attention.att]
        assert (q0 is language_inputs[x]) != (q1 is language_inputs[x])
        to_image, to_text = (p0, p1) if q0 is language_inputs[x] else (p1, p0)
        cross.append(
            {
                "ti": to_image,
                "it": to_text,
                "tt": calls[x.lang_self_att.self][0][1],
                "ii": calls[x.visn_self_att.self][0][1],
            }
        )
    return lang, vis, cross


def run_explicit(model, output, inputs, masks):
    ids, feats, pos = inputs
    with explicit_attention(model) as (calls, language_inputs):
        out = model(
            input_ids=ids,
            visual_feats=feats,
            visual_pos=pos,
            attention_mask=masks[0],
            visual_attention_mask=masks[1],
        )
    return getattr(out, output), all_maps(model, calls, language_inputs)


def rules_per_sample(model, output, ids, feats, pos, target):
    """The paper's rules for one unpadded sample, written without the engine."""
    masks = (torch.ones_like(ids), torch.ones(feats.shape[:2], dtype=torch.long))
    logits, (lang, vis, cross) = run_explicit(model, output, (ids, feats, pos), masks)
    maps = [*lang, *vis, *(c[k] for c in cross for k in ("ti", "it", "tt", "ii"))]
    grads = torch.autograd.grad(logits[0, target], maps, allow_unused=True)
    bar = {}
    for a, g in zip(maps, grads, strict=True):
        bar[id(a)] = torch.zeros_like(a[0, 0]) if g is None else (g[0] * a[0]).clamp(0).mean(0)
    t, n = ids.shape[1], feats.shape[1]
    eye_t, eye_i = torch.eye(t), torch.eye(n)
    r_tt, r_ii, r_ti, r_it = eye_t.clone(), eye_i.clone(), torch.zeros(t, n), torch.zeros(n, t)

    def normalized(r, eye):
        residual = r - eye
        sums = residual.sum(1, keepdim=True)
        return torch.where(sums == 0, 0.0, residual / torch.where(sums == 0, 1.0, sums)) + eye

    for a in lang:
        r_tt, r_ti = r_tt + bar[id(a)] @ r_tt, r_ti + bar[id(a)] @ r_ti
    for a in vis:
        r_ii, r_it = r_ii + bar[id(a)] @ r_ii, r_it + bar[id(a)] @ r_it
    for layer in cross:
        a_ti, a_it = bar[id(layer["ti"])], bar[id(layer["it"])]
        n_tt, n_ii = normalized(r_tt, eye_t), normalized(r_ii, eye_i)
        r_ti, r_tt, r_it, r_ii = (
            r_ti + n_tt.T @ a_ti @ n_ii,
            r_tt + a_ti @ r_it,
            r_it + n_ii.T @ a_it @ n_tt,
            r_ii + a_it @ r_ti,
        )
        a_tt, a_ii = bar[id(layer["tt"])], bar[id(layer["ii"])]
        r_tt, r_ti = r_tt + a_tt @ r_tt, r_ti + a_tt @ r_ti
        r_ii, r_it = r_ii + a_ii @ r_ii, r_it + a_ii @ r_it
    text = r_tt[0].clone()
    text[0] = 0
    return text, r_ti[0]


@pytest.mark.parametrize(
    "head, layers, sizes",
    [
        (LxmertForQuestionAnswering, (2, 2, 1), (6, 4)),
        (LxmertForQuestionAnswering, (1, 3, 2), (5, 5)),  # T == I
        (LxmertForQuestionAnswering, (1, 1, 0), (6, 6)),  # no object-relationship layer
        (LxmertForPreTraining, (1, 2, 1), (6, 4)),
        (LxmertModel, (2, 1, 1), (5, 5)),
    ],
)
def test_batched_adapter_and_engine_equal_per_sample_rules(head, layers, sizes):
    model = lxmert(head, *layers)
    inputs, masks = batch(*sizes)
    adapter = LxmertAdapter(model)
    target = torch.tensor([1, 4, 2])
    text, image = CoAttentionRelevancy(adapter).attribute(
        inputs, target=target, additional_forward_args=masks
    )
    assert text.shape == (3, sizes[0]) and image.shape == (3, sizes[1])
    ids, feats, pos = inputs
    for b in range(3):
        t = int(masks[0][b].sum())
        keep = masks[1][b].bool()
        expected_text, expected_image = rules_per_sample(
            model,
            adapter.output,
            ids[b : b + 1, :t],
            feats[b : b + 1][:, keep],
            pos[b : b + 1][:, keep],
            int(target[b]),
        )
        torch.testing.assert_close(text[b, :t], expected_text, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(image[b, keep], expected_image, atol=1e-5, rtol=1e-4)
        assert (text[b, t:] == 0).all() and (image[b, ~keep] == 0).all()
        assert expected_text.abs().sum() > 0 and expected_image.abs().sum() > 0


def test_the_qa_head_leaves_the_last_vision_side_without_gradient():
    model = lxmert(LxmertForQuestionAnswering, 1, 2, 1)
    inputs, masks = batch()
    with LxmertAdapter(model).record(inputs, masks) as recording:
        grads = torch.autograd.grad(
            recording.logits[:, 0].sum(), [e.probs for e in recording.events], allow_unused=True
        )
        kinds = [(e.query, e.key, e.layer) for e in recording.events]
    unused = [kind for kind, g in zip(kinds, grads, strict=True) if g is None]
    assert unused == [("image", "text", 2), ("image", "image", 2)]  # cross layer 1 is layer 2


@pytest.mark.parametrize("sizes", [(6, 4), (5, 5)])
def test_recorded_maps_are_the_models_own_and_outputs_unchanged(sizes):
    model = lxmert(LxmertForQuestionAnswering, 2, 2, 1)
    inputs, masks = batch(*sizes)
    ids, feats, pos = inputs
    kwargs = dict(
        input_ids=ids,
        visual_feats=feats,
        visual_pos=pos,
        attention_mask=masks[0],
        visual_attention_mask=masks[1],
    )
    with torch.no_grad():
        plain = model(**kwargs).question_answering_score
        own = model(**kwargs, output_attentions=True)
    _, (lang, vis, cross) = run_explicit(model, "question_answering_score", inputs, masks)
    with LxmertAdapter(model).record(inputs, masks) as recording:
        events = recording.events
        assert torch.equal(recording.logits, plain)
        assert len(events) == 2 + 1 + 4 * 2
        for event, a in zip(events[:2], own.language_attentions, strict=True):
            assert (event.query, event.key) == ("text", "text") and torch.equal(event.probs, a)
        assert (events[2].query, events[2].key) == ("image", "image")
        assert torch.equal(events[2].probs, own.vision_attentions[0])
        for k, a in enumerate(own.cross_encoder_attentions):
            layer = events[3 + 4 * k : 7 + 4 * k]
            assert [(e.query, e.key) for e in layer] == [
                ("text", "image"),
                ("image", "text"),
                ("text", "text"),
                ("image", "image"),
            ]
            assert torch.equal(layer[0].probs, a) and layer[0].group == layer[1].group
            for event, key in zip(layer, ("ti", "it", "tt", "ii"), strict=True):
                torch.testing.assert_close(event.probs, cross[k][key], atol=1e-6, rtol=1e-5)
        for event, a in zip(events[:3], [*lang, *vis], strict=True):
            torch.testing.assert_close(event.probs, a, atol=1e-6, rtol=1e-5)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_model_left_as_found_also_when_the_forward_raises(model_state):
    model = lxmert().train()
    inputs, masks = batch()
    copies = [t.clone() for t in (*inputs, *masks)]
    state = model_state(model)
    CoAttentionRelevancy(LxmertAdapter(model)).attribute(inputs, additional_forward_args=masks)
    state.assert_unchanged()
    assert all(torch.equal(a, b) for a, b in zip(copies, (*inputs, *masks), strict=True))

    def fail(*_):
        raise RuntimeError("midway")

    failing = model.lxmert.encoder.x_layers[1].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="midway"):
        CoAttentionRelevancy(LxmertAdapter(model)).attribute(inputs, additional_forward_args=masks)
    failing.remove()
    state.assert_unchanged()


def test_baselines_against_direct_formulas():
    model = lxmert(LxmertForQuestionAnswering, 2, 3, 1)
    inputs, masks = batch()
    logits, (lang, vis, cross) = run_explicit(model, "question_answering_score", inputs, masks)
    target = logits.argmax(1)
    last = cross[-1]
    grad_tt, grad_ti = torch.autograd.grad(
        logits[torch.arange(3), target].sum(), [last["tt"], last["ti"]]
    )
    text_valid, box_valid = masks[0].float(), masks[1].float()

    def text_row(matrix):
        row = matrix[:, 0].detach().clone()
        row[:, 0] = 0
        return row * text_valid

    def image_row(matrix):
        return matrix[:, 0].detach() * box_valid

    def cam(a, g):
        return (g.mean(dim=(2, 3), keepdim=True) * a).mean(1).clamp(min=0)

    def roll(maps, size):
        product = torch.eye(size)
        for a in maps:
            layer = a.mean(1) + torch.eye(size)
            product = layer / layer.sum(-1, keepdim=True) @ product
        return product

    text_before = [*lang, *(c["tt"] for c in cross[:-1])]
    image_before = [*vis, *(c["ii"] for c in cross[:-1])]
    rolled_image = roll(text_before, 6).transpose(1, 2) @ last["ti"].mean(1) @ roll(image_before, 4)
    expected = {
        RawAttention: (text_row(last["tt"].mean(1)), image_row(last["ti"].mean(1))),
        AttentionGradCAM: (text_row(cam(last["tt"], grad_tt)), image_row(cam(last["ti"], grad_ti))),
        AttentionRollout: (text_row(roll([*text_before, last["tt"]], 6)), image_row(rolled_image)),
    }
    adapter = LxmertAdapter(model)
    for method, (text_expected, image_expected) in expected.items():
        text, image = method(adapter).attribute(inputs, additional_forward_args=masks)
        torch.testing.assert_close(text, text_expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(image, image_expected, atol=1e-6, rtol=1e-5)
        assert (image[1, 2:] == 0).all() and (text[2, 3:] == 0).all()


def test_output_choice_and_bad_input_are_named():
    pretraining = lxmert(LxmertForPreTraining, 1, 1, 1)
    assert LxmertAdapter(pretraining).output == "question_answering_score"
    match = LxmertAdapter(pretraining, output="cross_relationship_score")
    inputs, masks = batch()
    text, image = CoAttentionRelevancy(match).attribute(
        inputs, target=1, additional_forward_args=masks
    )
    assert text.shape == (3, 6) and image.shape == (3, 4)
    with pytest.raises(ValueError, match="output"):
        LxmertAdapter(pretraining, output="prediction_logits")
    with pytest.raises(TypeError, match="LxmertForQuestionAnswering"):
        LxmertAdapter(torch.nn.Linear(2, 2))

    explainer = CoAttentionRelevancy(LxmertAdapter(lxmert()))
    ids, feats, pos = inputs
    cases = [
        ((ids, feats), masks, "inputs"),
        ((ids.float(), feats, pos), masks, "input_ids"),
        ((ids, feats[:2], pos), masks, "visual_feats"),
        ((ids, feats[..., :5], pos), masks, "visual_feats"),
        ((ids, feats, pos[..., :2]), masks, "visual_pos"),
        (inputs, (masks[0][:, :4], masks[1]), "attention_mask"),
        (inputs, (masks[0], masks[1] * 0), "visual_attention_mask"),
        ((ids, feats.clone().fill_(float("nan")), pos), masks, "inputs"),
    ]
    for model_inputs, args, name in cases:
        with pytest.raises(ValueError, match=name):
            explainer.attribute(model_inputs, additional_forward_args=args)


def test_shipped_lxmert_answers_fresh_questions():
    from captum_multimodal.datasets import SyntheticVQA, collate_vqa
    from captum_multimodal.models import load_pretrained, shipped_metrics
    from captum_multimodal.models.lxmert import evaluate_lxmert

    model = load_pretrained("lxmert")
    assert type(model).__name__ == "LxmertForQuestionAnswering" and not model.training
    data = SyntheticVQA(400, seed=4321)  # neither the training nor the held-out seed
    questions = collate_vqa([data[i] for i in range(len(data))])
    metrics = evaluate_lxmert(model, load_pretrained("mlb").backbone, questions)
    assert metrics["accuracy"] >= 0.9
    assert abs(metrics["accuracy"] - shipped_metrics("lxmert")["accuracy"]) < 0.05

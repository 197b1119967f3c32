import pytest
import torch
from transformers import (
    LxmertConfig,
    LxmertForQuestionAnswering,
    VisualBertConfig,
    VisualBertForQuestionAnswering,
    VisualBertForVisualReasoning,
)

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRolesAdapter,
    AttentionRollout,
    CoAttentionRelevancy,
    LxmertAdapter,
    RawAttention,
    VisualBertAdapter,
)

METHODS = (CoAttentionRelevancy, RawAttention, AttentionRollout, AttentionGradCAM)


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
        initializer_range=0.2,
    )
    return head(config).eval()


def visual_bert_by_roles(model):
    """VisualBertAdapter as declarations: one joint stream [text ; regions]."""
    layers = len(model.visual_bert.encoder.layer)

    def logits(ids, regions, mask, region_mask):
        return model(
            input_ids=ids,
            attention_mask=mask,
            visual_embeds=regions,
            visual_attention_mask=region_mask,
        ).logits

    qa = isinstance(model, VisualBertForQuestionAnswering)
    return AttentionRolesAdapter(
        model,
        roles={f"visual_bert.encoder.layer.{i}.attention.self": "joint" for i in range(layers)},
        streams=lambda ids, regions, mask, region_mask: {
            "joint": {"text": mask, "image": region_mask}
        },
        readout=("joint", (lambda ids, regions, mask, _: mask.sum(1) - 2) if qa else 0),
        logits=logits,
    )


def visual_bert_batch():
    torch.manual_seed(1)
    ids = torch.tensor([[2, 7, 8, 9, 10, 3], [2, 11, 12, 3, 0, 0], [2, 13, 3, 0, 0, 0]])
    regions = torch.randn(3, 4, 12)
    region_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    return (ids, regions), ((ids != 0).long(), region_mask)


@pytest.mark.parametrize("head", [VisualBertForQuestionAnswering, VisualBertForVisualReasoning])
def test_visual_bert_by_roles_equals_visual_bert_adapter(head):
    model = visual_bert(head)
    inputs, masks = visual_bert_batch()
    for method in METHODS:
        expected = method(VisualBertAdapter(model)).attribute(inputs, additional_forward_args=masks)
        got = method(visual_bert_by_roles(model)).attribute(inputs, additional_forward_args=masks)
        for a, b in zip(got, expected, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
        assert expected[1].abs().sum() > 0


def test_batched_roles_equal_per_sample_rules():
    model = visual_bert(layers=3)
    inputs, masks = visual_bert_batch()
    target = torch.tensor([0, 5, 3])
    text, image = CoAttentionRelevancy(visual_bert_by_roles(model)).attribute(
        inputs, target=target, additional_forward_args=masks
    )
    ids, regions = inputs
    for b in range(3):
        t, keep = int(masks[0][b].sum()), masks[1][b].bool()
        out = model(
            input_ids=ids[b : b + 1, :t],
            attention_mask=torch.ones(1, t, dtype=torch.long),
            visual_embeds=regions[b : b + 1][:, keep],
            output_attentions=True,
        )
        grads = torch.autograd.grad(out.logits[0, target[b]], out.attentions)
        r = torch.eye(out.attentions[0].shape[-1])
        for a, g in zip(out.attentions, grads, strict=True):
            r = r + (g[0] * a[0]).clamp(min=0).mean(0) @ r
        row = r[t - 2].clone()  # VisualBERT's QA head reads the text token before [SEP]
        row[t - 2] = 0
        torch.testing.assert_close(text[b, :t], row[:t], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(image[b, keep], row[t:], atol=1e-5, rtol=1e-4)
        assert (text[b, t:] == 0).all() and (image[b, ~keep] == 0).all()


def test_lxmert_by_roles_equals_lxmert_adapter():
    torch.manual_seed(0)
    config = LxmertConfig(
        vocab_size=40,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=48,
        l_layers=2,
        x_layers=2,
        r_layers=1,
        visual_feat_dim=12,
        visual_pos_dim=4,
        num_qa_labels=6,
        initializer_range=0.2,
    )
    model = LxmertForQuestionAnswering(config).eval()
    encoder = "lxmert.encoder"
    roles = {f"{encoder}.layer.{i}.attention.self": "text" for i in range(2)}
    roles[f"{encoder}.r_layers.0.attention.self"] = "image"
    for k in range(2):
        roles[f"{encoder}.x_layers.{k}.visual_attention.att"] = ["text->image", "image->text"]
        roles[f"{encoder}.x_layers.{k}.lang_self_att.self"] = "text"
        roles[f"{encoder}.x_layers.{k}.visn_self_att.self"] = "image"
    adapter = AttentionRolesAdapter(
        model,
        roles=roles,
        streams=lambda ids, feats, pos, mask, box_mask: {
            "text": {"text": mask},
            "image": {"image": box_mask},
        },
        readout=("text", 0),
        logits=lambda ids, feats, pos, mask, box_mask: (
            model(
                input_ids=ids,
                visual_feats=feats,
                visual_pos=pos,
                attention_mask=mask,
                visual_attention_mask=box_mask,
            ).question_answering_score
        ),
    )
    torch.manual_seed(1)
    ids = torch.randint(4, 40, (3, 6))
    mask = torch.ones_like(ids)
    mask[1, 4:], mask[2, 3:] = 0, 0
    box_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]])
    inputs, masks = (ids * mask, torch.randn(3, 4, 12), torch.rand(3, 4, 4)), (mask, box_mask)
    for method in METHODS:
        expected = method(LxmertAdapter(model)).attribute(inputs, additional_forward_args=masks)
        got = method(adapter).attribute(inputs, additional_forward_args=masks)
        for a, b in zip(got, expected, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
        assert expected[1].abs().sum() > 0


def test_logits_unchanged_and_model_left_as_found(model_state):
    model = visual_bert().train()
    inputs, masks = visual_bert_batch()
    model.eval()
    with torch.no_grad():
        plain = model(
            input_ids=inputs[0],
            attention_mask=masks[0],
            visual_embeds=inputs[1],
            visual_attention_mask=masks[1],
        ).logits
    model.train()
    state = model_state(model)
    with visual_bert_by_roles(model).record(inputs, masks) as recording:
        assert torch.equal(recording.logits, plain) and len(recording.events) == 3
    state.assert_unchanged()

    def fail(*_):
        raise RuntimeError("midway")

    failing = model.visual_bert.encoder.layer[1].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="midway"):
        CoAttentionRelevancy(visual_bert_by_roles(model)).attribute(
            inputs, additional_forward_args=masks
        )
    failing.remove()
    state.assert_unchanged()


def test_bad_declarations_are_named():
    model = visual_bert(layers=2)
    inputs, masks = visual_bert_batch()
    self_attention = model.visual_bert.encoder.layer[0].attention.self
    streams = visual_bert_by_roles(model).streams

    def build(roles=None, readout=("joint", 0), streams=streams):
        return AttentionRolesAdapter(model, roles or {self_attention: "joint"}, streams, readout)

    with pytest.raises(TypeError, match="model"):
        AttentionRolesAdapter(lambda x: x, {self_attention: "joint"}, streams, ("joint", 0))
    with pytest.raises(ValueError, match="roles"):
        build(roles={"visual_bert.encoder.layer.9": "joint"})
    with pytest.raises(ValueError, match="roles"):
        build(roles={self_attention: "a->b->c"})
    with pytest.raises(ValueError, match="roles"):
        build(roles={torch.nn.Linear(2, 2): "joint"})
    with pytest.raises(TypeError, match="roles"):
        build(roles={3: "joint"})
    with pytest.raises(TypeError, match="streams"):
        build(streams=None)
    with pytest.raises(ValueError, match="readout"):
        build(readout="joint")
    cases = [
        (build(readout=("text", 0)), "readout"),
        (build(roles={self_attention: "joint->other"}), "roles"),
        (build(roles={self_attention: ["joint", "joint"]}), "roles"),  # called once, not twice
    ]
    for adapter, name in cases:
        adapter.logits = visual_bert_by_roles(model).logits
        with pytest.raises(ValueError, match=name):
            CoAttentionRelevancy(adapter).attribute(inputs, additional_forward_args=masks)
    explainer = CoAttentionRelevancy(visual_bert_by_roles(model))
    with pytest.raises(ValueError, match="inputs"):
        explainer.attribute((inputs[0], inputs[1] * float("nan")), additional_forward_args=masks)
    with pytest.raises(ValueError, match="streams"):
        CoAttentionRelevancy(build(streams=lambda *_: {"joint": {"text": masks[0][0]}})).attribute(
            inputs, additional_forward_args=masks
        )

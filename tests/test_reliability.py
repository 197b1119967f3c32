"""Safety across every method and adapter: models left as found, bad input named clearly."""

import copy
import threading
import types

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BlipConfig,
    BlipForImageTextRetrieval,
    CLIPConfig,
    CLIPModel,
    DetrConfig,
    DetrForObjectDetection,
    LxmertConfig,
    LxmertForPreTraining,
    LxmertForQuestionAnswering,
    LxmertModel,
    ResNetConfig,
    ViltConfig,
    ViltForQuestionAnswering,
    VisualBertConfig,
    VisualBertForQuestionAnswering,
    VisualBertForVisualReasoning,
)

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRolesAdapter,
    AttentionRollout,
    BlipItmAdapter,
    ClipAdapter,
    CoAttentionRelevancy,
    DetrAdapter,
    EncoderAdapter,
    HadamardDeviation,
    LxmertAdapter,
    MLBAdapter,
    ModalityInteractions,
    QuestionMaskedGradCAM,
    RawAttention,
    TensorFusionDisentangle,
    ViltAdapter,
    VisualBertAdapter,
)
from captum_multimodal.datasets import ANSWERS, SyntheticVQA, Vocabulary, collate_vqa
from captum_multimodal.models import MLB, load_checkpoint, save_checkpoint
from captum_multimodal.models.tensor_fusion import toy_classifier, toy_views
from captum_multimodal.models.training import default_mlb_config
from captum_multimodal.nn import IterativeBatchNorm


def tiny_mlb():
    torch.manual_seed(0)
    return MLB(
        len(Vocabulary()),
        len(ANSWERS),
        embedding_dim=8,
        question_dim=12,
        attention_dim=10,
        joint_dim=16,
    )


def mlb_case():
    data = SyntheticVQA(4, seed=3)
    batch = collate_vqa([data[i] for i in range(4)])
    return tiny_mlb(), (batch["image"],), (batch["question"], batch["attention_mask"])


def visual_bert_case(head):
    torch.manual_seed(0)
    config = VisualBertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        visual_embedding_dim=8,
        num_labels=5,
    )
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    regions = torch.randn(2, 3, 8)
    return (
        head(config),
        ((ids, regions),),
        ((ids != 0).long(), torch.tensor([[1, 1, 1], [1, 1, 0]])),
    )


def bert_case():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    model = BertForSequenceClassification(config)
    # transformers 5 installs output-capturing hooks of its own, for good, on the first
    # forward with output_attentions=True; count ours after that warm-up
    model.set_attn_implementation("eager")
    model(ids, output_attentions=True)
    model.set_attn_implementation("sdpa")
    return model, (ids,), ((ids != 0).long(),)


def lxmert_case(head):
    torch.manual_seed(0)
    config = LxmertConfig(
        vocab_size=30,
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=32,
        l_layers=1,
        r_layers=1,
        x_layers=2,
        visual_feat_dim=8,
        num_qa_labels=5,
        num_object_labels=4,
        num_attr_labels=3,
    )
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    return (
        head(config),
        ((ids, torch.randn(2, 3, 8), torch.rand(2, 3, 4)),),
        ((ids != 0).long(), torch.tensor([[1, 1, 1], [1, 0, 1]])),
    )


def vilt_case():
    torch.manual_seed(0)
    config = ViltConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=32,
        patch_size=8,
        max_position_embeddings=16,
        num_labels=5,
    )
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    pixel_mask = torch.ones(2, 32, 32, dtype=torch.long)
    pixel_mask[1, :, 16:] = 0
    return (
        ViltForQuestionAnswering(config),
        ((ids, torch.rand(2, 3, 32, 32)),),
        ((ids != 0).long(), pixel_mask),
    )


def blip_case():
    torch.manual_seed(0)
    config = BlipConfig(
        text_config={
            "vocab_size": 30,
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 16,
            "bos_token_id": 1,
            "sep_token_id": 2,
            "pad_token_id": 0,
        },
        vision_config={
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "image_size": 16,
            "patch_size": 8,
        },
        image_text_hidden_size=8,
    )
    ids = torch.tensor([[1, 5, 6, 2], [1, 9, 2, 0]])
    return (
        BlipForImageTextRetrieval(config),
        ((ids, torch.rand(2, 3, 16, 16)),),
        ((ids != 0).long(),),
    )


def detr_case():
    torch.manual_seed(0)
    backbone = ResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        out_features=["stage2"],
    )
    config = DetrConfig(
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        backbone_config=backbone,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=4,
        num_labels=3,
    )
    mask = torch.ones(2, 32, 32, dtype=torch.long)
    mask[1, 24:] = 0
    return DetrForObjectDetection(config), (torch.rand(2, 3, 32, 32),), (mask,)


def roles_case():
    model, ((ids, regions),), masks = visual_bert_case(VisualBertForQuestionAnswering)
    return model, ((ids, regions),), masks


def visual_bert_by_roles(model):
    def logits(ids, regions, mask, region_mask):
        return model(
            input_ids=ids,
            attention_mask=mask,
            visual_embeds=regions,
            visual_attention_mask=region_mask,
        ).logits

    return AttentionRolesAdapter(
        model,
        roles={f"visual_bert.encoder.layer.{i}.attention.self": "joint" for i in range(2)},
        streams=lambda ids, regions, mask, region_mask: {
            "joint": {"text": mask, "image": region_mask}
        },
        readout=("joint", lambda ids, regions, mask, _: mask.sum(1) - 2),
        logits=logits,
    )


def clip_case():
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "vocab_size": 20,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 8,
            "eos_token_id": 3,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    ids = torch.tensor([[2, 5, 6, 3, 0], [2, 7, 3, 0, 0]])
    return CLIPModel(config), (ids, torch.rand(2, 3, 32, 32)), ((ids != 0).long(),)


def clip_methods():
    return {
        "CoAttentionRelevancy": lambda m, i, a: CoAttentionRelevancy(ClipAdapter(m)).attribute(
            i, additional_forward_args=a
        ),
        "HadamardDeviation": lambda m, i, a: HadamardDeviation.from_adapter(
            ClipAdapter(m)
        ).attribute(i, additional_forward_args=a, image_index=1),
        "QuestionMaskedGradCAM": lambda m, i, a: QuestionMaskedGradCAM.from_adapter(
            ClipAdapter(m)
        ).attribute(i, top_n=3, additional_forward_args=a),
    }


def tensor_fusion_case(normalization):
    torch.manual_seed(0)
    model = toy_classifier(normalization)
    with torch.no_grad():  # running statistics from one training-mode batch
        model.train()(*toy_views(32, (0, 1), seed=0)[0])
    return model, toy_views(4, (0, 1), seed=1)[0], ()


def tensor_fusion_methods():
    background = toy_views(6, (0, 1), seed=2)[0]
    return {
        "TensorFusionDisentangle IBN": lambda m, i, a: (
            TensorFusionDisentangle(m, m.fusion, m.head).attribute(i, target=0)
            if isinstance(m.fusion, IterativeBatchNorm)
            else TensorFusionDisentangle(m, m.fusion, m.head).attribute(
                i, target=0, baselines=background
            )
        ),
        "ModalityInteractions": lambda m, i, a: ModalityInteractions(m).attribute(
            i, baselines=background, target=0
        ),
    }


def mlb_methods():
    return {
        "HadamardDeviation": lambda m, i, a: HadamardDeviation.from_adapter(
            MLBAdapter(m)
        ).attribute(i, additional_forward_args=a),
        "HadamardDeviation plain": lambda m, i, a: HadamardDeviation.from_adapter(
            MLBAdapter(m), guided=False
        ).attribute(i, additional_forward_args=a),
        "QuestionMaskedGradCAM": lambda m, i, a: QuestionMaskedGradCAM.from_adapter(
            MLBAdapter(m)
        ).attribute(i, 1, 4, a),
        "QuestionMaskedGradCAM l2 sweep": lambda m, i, a: QuestionMaskedGradCAM.from_adapter(
            MLBAdapter(m)
        ).sweep(i, 1, [2, 8], a, sensitivity="l2"),
    }


def attention_methods(adapter_type):
    kinds = [CoAttentionRelevancy, RawAttention, AttentionRollout, AttentionGradCAM]
    return {
        kind.__name__: lambda m, i, a, kind=kind: kind(adapter_type(m)).attribute(
            i[0] if len(i) == 1 else i, additional_forward_args=a
        )
        for kind in kinds
    }


CASES = (
    [
        (f"{name} / MLB", mlb_case, method, "fusion.hadamard")
        for name, method in mlb_methods().items()
    ]
    + [
        (
            f"{name} / {head.__name__}",
            lambda head=head: visual_bert_case(head),
            method,
            "visual_bert.encoder.layer.1",
        )
        for head in (VisualBertForQuestionAnswering, VisualBertForVisualReasoning)
        for name, method in attention_methods(VisualBertAdapter).items()
    ]
    + [
        (f"{name} / BERT", bert_case, method, "bert.encoder.layer.1")
        for name, method in attention_methods(EncoderAdapter).items()
    ]
    + [
        (
            f"{name} / {head.__name__}",
            lambda head=head: lxmert_case(head),
            method,
            "encoder.x_layers.0" if head is LxmertModel else "lxmert.encoder.x_layers.0",
        )
        for head in (LxmertModel, LxmertForQuestionAnswering, LxmertForPreTraining)
        for name, method in attention_methods(LxmertAdapter).items()
    ]
    + [
        (f"{name} / {family}", build, method, inner)
        for family, build, adapter, inner in (
            ("ViLT", vilt_case, ViltAdapter, "vilt.encoder.layer.1"),
            ("BLIP ITM", blip_case, BlipItmAdapter, "text_encoder.encoder.layer.1"),
            ("DETR", detr_case, DetrAdapter, "model.decoder.layers.1"),
            (
                "VisualBERT by roles",
                roles_case,
                visual_bert_by_roles,
                "visual_bert.encoder.layer.1",
            ),
        )
        for name, method in attention_methods(adapter).items()
    ]
    + [
        (f"{name} / CLIP", clip_case, method, "text_model.encoder.layers.1")
        for name, method in clip_methods().items()
    ]
    + [
        (
            f"{name} / tensor fusion {norm}",
            lambda norm=norm: tensor_fusion_case(norm),
            method,
            "encoders.1",
        )
        for norm in ("ibn", "vbn")
        for name, method in tensor_fusion_methods().items()
    ]
)


def assert_inputs_unchanged(inputs, copies):
    assert all(torch.equal(a, b) for a, b in zip(inputs, copies, strict=True))
    assert not any(t.requires_grad for t in inputs)


def flatten(inputs, args):
    out = []
    for item in (*inputs, *args):
        out.extend(item if isinstance(item, tuple) else (item,))
    return out


@pytest.mark.parametrize(("name", "build", "method", "inner"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_model_is_left_as_found_after_success_and_failure(
    name, build, method, inner, mode, model_state
):
    model, inputs, args = build()
    model.train(mode == "train")
    model.get_submodule(list(dict(model.named_modules()))[1]).requires_grad_(False)  # mixed flags
    state = model_state(model)
    tensors = flatten(inputs, args)
    copies = [t.clone() for t in tensors]
    method(model, inputs, args)
    state.assert_unchanged()
    assert_inputs_unchanged(tensors, copies)

    def fail(*_):
        raise RuntimeError("injected failure inside the forward")

    handle = model.get_submodule(inner).register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="injected"):
        method(model, inputs, args)
    handle.remove()
    state.assert_unchanged()
    assert_inputs_unchanged(tensors, copies)


def _mlb():
    model, (image,), (question, mask) = mlb_case()
    return model.eval(), image, question, mask


def _hd(model):
    return HadamardDeviation.from_adapter(MLBAdapter(model))


def _qm(model):
    return QuestionMaskedGradCAM.from_adapter(MLBAdapter(model))


def _vb():
    model, ((ids, regions),), (mask, region_mask) = visual_bert_case(VisualBertForQuestionAnswering)
    return model, ids, regions, mask, region_mask


def _relevancy(model, inputs, args, **kwargs):
    return CoAttentionRelevancy(VisualBertAdapter(model)).attribute(
        inputs, additional_forward_args=args, **kwargs
    )


class NoMaps(torch.nn.Module):
    """A model whose attention implementation returns no probabilities (like SDPA)."""

    def forward(self, x, output_attentions=False):
        return types.SimpleNamespace(logits=x, attentions=())


def bad_inputs():
    m, image, q, mask = _mlb()
    vb, ids, regions, tmask, rmask = _vb()
    nan_image = image.clone()
    nan_image[0, 0, 0, 0] = float("nan")
    inf_regions = regions.clone()
    inf_regions[1, 0, 0] = float("inf")
    meta = copy.deepcopy(m).to("meta")
    empty_rows = mask.clone()
    empty_rows[1] = 0
    vbn, views, _ = tensor_fusion_case("vbn")
    vbn.eval()
    clip, (clip_ids, clip_pixels), clip_args = clip_case()
    lx, (lx_inputs,), lx_args = lxmert_case(LxmertForQuestionAnswering)
    return [
        (
            "image of rank 3",
            lambda: _hd(m).attribute(image[0], additional_forward_args=(q, mask)),
            ValueError,
            "image",
        ),
        (
            "integer image",
            lambda: _hd(m).attribute((image * 255).long(), additional_forward_args=(q,)),
            TypeError,
            "image",
        ),
        (
            "NaN image",
            lambda: _hd(m).attribute(nan_image, additional_forward_args=(q,)),
            ValueError,
            "inputs\\[0\\] contains NaN",
        ),
        (
            "image_index out of range",
            lambda: _hd(m).attribute(image, additional_forward_args=(q,), image_index=3),
            ValueError,
            "image_index",
        ),
        (
            "batch sizes differ",
            lambda: _hd(m).attribute(image[:2], additional_forward_args=(q,)),
            ValueError,
            "same batch size",
        ),
        (
            "all-padding question row",
            lambda: _hd(m).attribute(image, additional_forward_args=(q, empty_rows)),
            ValueError,
            "no real tokens",
        ),
        (
            "mask shape",
            lambda: _qm(m).attribute(image, 0, 2, (q, mask[:, :2])),
            ValueError,
            "attention_mask",
        ),
        (
            "layer not in the model",
            lambda: HadamardDeviation(
                m, torch.nn.Linear(2, 2), "fusion.visual", "question_encoder.embedding"
            ),
            ValueError,
            "textual_layer",
        ),
        (
            "model on another device",
            lambda: _hd(meta).attribute(image, additional_forward_args=(q,)),
            ValueError,
            "model is on meta",
        ),
        ("top_n above K", lambda: _qm(m).attribute(image, 0, 17, (q,)), ValueError, "top_n"),
        ("top_n negative", lambda: _qm(m).attribute(image, 0, -3, (q,)), ValueError, "top_n"),
        (
            "target out of range (masked Grad-CAM)",
            lambda: _qm(m).attribute(image, 99, 4, (q,)),
            ValueError,
            "target",
        ),
        (
            "unknown sensitivity",
            lambda: _qm(m).neuron_sensitivity(image, (q,), sensitivity="max"),
            ValueError,
            "sensitivity",
        ),
        (
            "Inf image (masked Grad-CAM)",
            lambda: _qm(m).attribute(nan_image, 0, 4, (q,)),
            ValueError,
            "NaN or Inf",
        ),
        (
            "one input instead of two",
            lambda: _relevancy(vb, (ids,), (tmask, rmask)),
            ValueError,
            "inputs must be",
        ),
        (
            "float input_ids",
            lambda: _relevancy(vb, (ids.float(), regions), (tmask, rmask)),
            ValueError,
            "input_ids",
        ),
        (
            "visual batch differs",
            lambda: _relevancy(vb, (ids, regions[:1]), (tmask, rmask)),
            ValueError,
            "visual_embeds",
        ),
        (
            "text mask shape",
            lambda: _relevancy(vb, (ids, regions), (tmask[:, :2], rmask)),
            ValueError,
            "attention_mask",
        ),
        (
            "all-padding visual row",
            lambda: _relevancy(vb, (ids, regions), (tmask, rmask * 0)),
            ValueError,
            "visual_attention_mask",
        ),
        (
            "Inf visual_embeds",
            lambda: _relevancy(vb, (ids, inf_regions), (tmask, rmask)),
            ValueError,
            "inputs\\[1\\] contains NaN or Inf",
        ),
        (
            "target out of range (relevancy)",
            lambda: _relevancy(vb, (ids, regions), (tmask, rmask), target=7),
            ValueError,
            "target",
        ),
        (
            "unsupported model class",
            lambda: VisualBertAdapter(m),
            TypeError,
            "VisualBertForQuestionAnswering",
        ),
        ("not an adapter", lambda: CoAttentionRelevancy(vb), TypeError, "adapter"),
        (
            "empty question (T = 0)",
            lambda: _hd(m).attribute(image, additional_forward_args=(q[:, :0],)),
            ValueError,
            "no real tokens",
        ),
        (
            "attention implementation without maps",
            lambda: CoAttentionRelevancy(EncoderAdapter(NoMaps())).attribute(torch.zeros(2, 3)),
            ValueError,
            'attn_implementation="eager"',
        ),
        (
            "MLB adapter on a model without its sites",
            lambda: MLBAdapter(torch.nn.Linear(2, 2)),
            ValueError,
            "textual_layer",
        ),
        (
            "CLIP: one image for two captions",
            lambda: CoAttentionRelevancy(ClipAdapter(clip)).attribute(
                (clip_ids, clip_pixels[:1]), additional_forward_args=clip_args
            ),
            ValueError,
            "pixel_values must hold one image per caption",
        ),
        (
            "CLIP: caption without its end-of-text token",
            lambda: CoAttentionRelevancy(ClipAdapter(clip)).attribute(
                (clip_ids.clamp(max=2), clip_pixels), additional_forward_args=clip_args
            ),
            ValueError,
            "eos_token_id",
        ),
        ("CLIP adapter on another model", lambda: ClipAdapter(vb), TypeError, "CLIPModel"),
        ("LXMERT adapter on another model", lambda: LxmertAdapter(vb), TypeError, "Lxmert"),
        (
            "LXMERT boxes without positions",
            lambda: CoAttentionRelevancy(LxmertAdapter(lx)).attribute(
                lx_inputs[:2], additional_forward_args=lx_args
            ),
            ValueError,
            "inputs",
        ),
        (
            "LXMERT box mask of the wrong shape",
            lambda: CoAttentionRelevancy(LxmertAdapter(lx)).attribute(
                lx_inputs, additional_forward_args=(lx_args[0], lx_args[1][:, :2])
            ),
            ValueError,
            "visual_attention_mask",
        ),
        (
            "tensor fusion without centring moments",
            lambda: TensorFusionDisentangle(vbn, vbn.fusion, vbn.head).attribute(views, target=0),
            ValueError,
            "baselines",
        ),
        (
            "tensor fusion head that is not linear",
            lambda: TensorFusionDisentangle(vbn, vbn.fusion, vbn.encoders[0]),
            TypeError,
            "head",
        ),
        (
            "interaction background with another number of modalities",
            lambda: ModalityInteractions(vbn).attribute(views, baselines=views[:2], target=0),
            ValueError,
            "baselines",
        ),
        (
            "tensor fusion target out of range",
            lambda: ModalityInteractions(vbn).attribute(views, baselines=views, target=3),
            ValueError,
            "target",
        ),
    ]


BAD = bad_inputs()


@pytest.mark.parametrize(("case", "call", "error", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_clear_error(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_at_least_twenty_bad_inputs():
    assert len(BAD) >= 20


def test_tampered_and_truncated_checkpoints(tmp_path):
    path = tmp_path / "mlb.pt"
    save_checkpoint(
        tiny_mlb(),
        path,
        default_mlb_config()
        | {"embedding_dim": 8, "question_dim": 12, "attention_dim": 10, "joint_dim": 16},
        {},
    )
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="not a valid 'mlb' checkpoint"):
        load_checkpoint("mlb", truncated)
    tampered = tmp_path / "tampered.pt"
    torch.save(
        {"config": default_mlb_config(), "state_dict": {"classifier.weight": torch.zeros(1)}},
        tampered,
    )
    with pytest.raises(ValueError, match="not a valid 'mlb' checkpoint"):
        load_checkpoint("mlb", tampered)
    evil = tmp_path / "evil.pt"
    torch.save({"config": default_mlb_config(), "state_dict": {}, "x": threading.Lock}, evil)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_checkpoint("mlb", evil)


def test_two_explainers_on_two_models_in_two_threads_do_not_interfere():
    first, image, q, mask = _mlb()
    torch.manual_seed(5)
    second = MLB(
        len(Vocabulary()),
        len(ANSWERS),
        embedding_dim=8,
        question_dim=12,
        attention_dim=10,
        joint_dim=16,
    ).eval()
    expected = {
        "first": _hd(first).attribute(image, additional_forward_args=(q, mask)),
        "second": _qm(second).attribute(image, 2, 4, (q, mask)),
    }
    results = {}

    def run(key, function):
        for _ in range(5):
            results[key] = function()

    threads = [
        threading.Thread(
            target=run,
            args=("first", lambda: _hd(first).attribute(image, additional_forward_args=(q, mask))),
        ),
        threading.Thread(
            target=run, args=("second", lambda: _qm(second).attribute(image, 2, 4, (q, mask)))
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for a, b in zip(expected["first"], results["first"], strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(expected["second"], results["second"])

"""Property tests: batching, padding and dtype never change an explanation."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import (
    CLIPConfig,
    CLIPModel,
    LxmertConfig,
    LxmertForQuestionAnswering,
    VisualBertConfig,
    VisualBertForQuestionAnswering,
)

from captum_multimodal import (
    ClipAdapter,
    CoAttentionRelevancy,
    HadamardDeviation,
    LxmertAdapter,
    MLBAdapter,
    QuestionMaskedGradCAM,
    TensorFusionDisentangle,
    VisualBertAdapter,
)
from captum_multimodal.models import MLB
from captum_multimodal.models.tensor_fusion import toy_classifier, toy_views

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)

torch.manual_seed(0)
MLB_MODEL = MLB(12, 5, embedding_dim=6, question_dim=8, attention_dim=6, joint_dim=10).eval()
VISUAL_BERT = VisualBertForQuestionAnswering(
    VisualBertConfig(
        vocab_size=20,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        visual_embedding_dim=6,
        num_labels=4,
    )
).eval()


def right_padded(lengths, width, low, high, generator):
    ids = torch.randint(low, high, (len(lengths), width), generator=generator)
    mask = (torch.arange(width)[None] < torch.tensor(lengths)[:, None]).long()
    return ids * mask, mask


@SETTINGS
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 1000),
)
def test_hadamard_deviation_batched_equals_per_sample(lengths, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    model = MLB_MODEL.to(dtype)
    question, mask = right_padded(lengths, max(lengths) + 1, 1, 12, generator)
    image = torch.rand(len(lengths), 3, 32, 32, generator=generator, dtype=dtype)
    explainer = HadamardDeviation.from_adapter(MLBAdapter(model))
    visual, textual = explainer.attribute(image, additional_forward_args=(question, mask))
    assert visual.dtype == dtype and torch.isfinite(visual).all() and torch.isfinite(textual).all()
    tolerance = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {}
    for b, n in enumerate(lengths):
        v, t = explainer.attribute(
            image[b : b + 1], additional_forward_args=(question[b : b + 1, :n],)
        )
        torch.testing.assert_close(visual[b : b + 1], v, **tolerance)
        torch.testing.assert_close(textual[b : b + 1, :n], t, **tolerance)
        assert (textual[b, n:] == 0).all()
    MLB_MODEL.float()


@SETTINGS
@given(
    text=st.lists(st.integers(2, 6), min_size=1, max_size=3),
    regions=st.lists(st.integers(1, 4), min_size=3, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 1000),
)
def test_relevancy_batched_equals_per_sample(text, regions, dtype, seed):
    regions = regions[: len(text)]
    generator = torch.Generator().manual_seed(seed)
    model = VISUAL_BERT.to(dtype)
    ids, mask = right_padded(text, max(text) + 1, 4, 20, generator)
    visual = torch.randn(len(text), max(regions), 6, generator=generator, dtype=dtype)
    visual_mask = (torch.arange(max(regions))[None] < torch.tensor(regions)[:, None]).long()
    explainer = CoAttentionRelevancy(VisualBertAdapter(model))
    text_rel, image_rel = explainer.attribute(
        (ids, visual), target=1, additional_forward_args=(mask, visual_mask)
    )
    assert torch.isfinite(text_rel).all() and torch.isfinite(image_rel).all()
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for b, (n, r) in enumerate(zip(text, regions, strict=True)):
        t, i = explainer.attribute((ids[b : b + 1, :n], visual[b : b + 1, :r]), target=1)
        torch.testing.assert_close(text_rel[b : b + 1, :n], t, **tolerance)
        torch.testing.assert_close(image_rel[b : b + 1, :r], i, **tolerance)
        assert (text_rel[b, n:] == 0).all() and (image_rel[b, r:] == 0).all()
    VISUAL_BERT.float()


LXMERT = LxmertForQuestionAnswering(
    LxmertConfig(
        vocab_size=20,
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=24,
        l_layers=1,
        r_layers=1,
        x_layers=2,
        visual_feat_dim=6,
        num_qa_labels=4,
        num_object_labels=3,
        num_attr_labels=3,
    )
).eval()


@SETTINGS
@given(
    text=st.lists(st.integers(2, 6), min_size=1, max_size=3),
    boxes=st.lists(st.integers(1, 4), min_size=3, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 1000),
)
def test_lxmert_relevancy_batched_equals_per_sample(text, boxes, dtype, seed):
    boxes = boxes[: len(text)]
    generator = torch.Generator().manual_seed(seed)
    model = LXMERT.to(dtype)
    ids, mask = right_padded(text, max(text) + 1, 4, 20, generator)
    feats = torch.randn(len(text), max(boxes), 6, generator=generator, dtype=dtype)
    pos = torch.rand(len(text), max(boxes), 4, generator=generator, dtype=dtype)
    box_mask = (torch.arange(max(boxes))[None] < torch.tensor(boxes)[:, None]).long()
    explainer = CoAttentionRelevancy(LxmertAdapter(model))
    text_rel, box_rel = explainer.attribute(
        (ids, feats, pos), target=1, additional_forward_args=(mask, box_mask)
    )
    assert torch.isfinite(text_rel).all() and torch.isfinite(box_rel).all()
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for b, (n, r) in enumerate(zip(text, boxes, strict=True)):
        single = (ids[b : b + 1, :n], feats[b : b + 1, :r], pos[b : b + 1, :r])
        t, i = explainer.attribute(single, target=1)
        torch.testing.assert_close(text_rel[b : b + 1, :n], t, **tolerance)
        torch.testing.assert_close(box_rel[b : b + 1, :r], i, **tolerance)
        assert (text_rel[b, n:] == 0).all() and (box_rel[b, r:] == 0).all()
    LXMERT.float()


CLIP = CLIPModel(
    CLIPConfig(
        text_config={
            "vocab_size": 20,
            "hidden_size": 16,
            "intermediate_size": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 10,
            "eos_token_id": 3,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 8,
        },
        projection_dim=8,
    )
).eval()


@SETTINGS
@given(
    lengths=st.lists(st.integers(2, 6), min_size=1, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 1000),
)
def test_clip_relevancy_batched_equals_per_pair(lengths, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    model = CLIP.to(dtype)
    ids, mask = right_padded(lengths, max(lengths) + 1, 4, 20, generator)
    ids[torch.arange(len(lengths)), torch.tensor(lengths) - 1] = 3  # end of text
    pixels = torch.rand(len(lengths), 3, 16, 16, generator=generator, dtype=dtype)
    explainer = CoAttentionRelevancy(ClipAdapter(model))
    text_rel, image_rel = explainer.attribute((ids, pixels), additional_forward_args=(mask,))
    assert torch.isfinite(text_rel).all() and torch.isfinite(image_rel).all()
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for b, n in enumerate(lengths):
        t, i = explainer.attribute((ids[b : b + 1, :n], pixels[b : b + 1]))
        torch.testing.assert_close(text_rel[b : b + 1, :n], t, **tolerance)
        torch.testing.assert_close(image_rel[b : b + 1], i, **tolerance)
        assert (text_rel[b, n:] == 0).all()
    CLIP.float()


@SETTINGS
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    top_n=st.integers(1, 10),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 1000),
)
def test_question_masked_grad_cam_batched_equals_per_sample(lengths, top_n, dtype, seed):
    generator = torch.Generator().manual_seed(seed)
    model = MLB_MODEL.to(dtype)
    question, mask = right_padded(lengths, max(lengths) + 1, 1, 12, generator)
    image = torch.rand(len(lengths), 3, 32, 32, generator=generator, dtype=dtype)
    explainer = QuestionMaskedGradCAM.from_adapter(MLBAdapter(model))
    cam = explainer.attribute(image, 2, top_n, additional_forward_args=(question, mask))
    assert cam.dtype == dtype and torch.isfinite(cam).all() and (cam >= 0).all()
    tolerance = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {}
    for b, n in enumerate(lengths):
        single = explainer.attribute(
            image[b : b + 1], 2, top_n, additional_forward_args=(question[b : b + 1, :n],)
        )
        torch.testing.assert_close(cam[b : b + 1], single, **tolerance)
    MLB_MODEL.float()


@SETTINGS
@given(
    batch=st.integers(1, 5),
    normalization=st.sampled_from(["none", "vbn", "ibn"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 1000),
)
def test_tensor_fusion_contributions_are_per_sample_and_complete(batch, normalization, dtype, seed):
    torch.manual_seed(seed)
    model = toy_classifier(normalization, dims=3).to(dtype)

    def views(n, offset):
        return toy_views(n, (0,), seed=seed + offset)[0]

    with torch.no_grad():
        model.train()(*views(16, 0))
    model.eval()
    inputs = views(batch, 1)
    background = None if normalization == "ibn" else views(8, 2)
    explainer = TensorFusionDisentangle(model, model.fusion, model.head)
    contributions = explainer.attribute(inputs, target=0, baselines=background)
    assert contributions.dtype == dtype and torch.isfinite(contributions).all()
    with torch.no_grad():
        logits = model(*inputs)[:, 0]
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(contributions.sum(dim=1), logits, **tolerance)
    for b in range(batch):
        single = explainer.attribute(
            tuple(x[b : b + 1] for x in inputs), target=0, baselines=background
        )
        torch.testing.assert_close(contributions[b : b + 1], single, **tolerance)

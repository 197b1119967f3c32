"""Property tests: batching, padding and dtype never change an explanation."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import VisualBertConfig, VisualBertForQuestionAnswering

from captum_multimodal import CoAttentionRelevancy, HadamardDeviation, MLBAdapter, VisualBertAdapter
from captum_multimodal.models import MLB

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

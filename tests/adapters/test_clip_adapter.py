"""ClipAdapter: the three VQA-born methods on an unmodified Hugging Face CLIPModel.

Every expected value is computed here from the rules with plain autograd on the model
(CLIP's own ``output_attentions``, hooks written in the test), never through the engine.
"""

import copy

import pytest
import torch
from transformers import CLIPConfig, CLIPModel
from transformers.modeling_utils import PreTrainedModel

from captum_multimodal import (
    ClipAdapter,
    CoAttentionRelevancy,
    HadamardDeviation,
    QuestionMaskedGradCAM,
)

EOS = 3


def tiny_config(**overrides) -> CLIPConfig:
    text = {
        "vocab_size": 20,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 8,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": EOS,
    }
    vision = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=8, **overrides)


@pytest.fixture
def clip() -> CLIPModel:
    torch.manual_seed(0)
    return CLIPModel(tiny_config(attn_implementation="eager")).double().eval()


@pytest.fixture
def pairs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four pairs: two captions of one image, padding of different lengths."""
    torch.manual_seed(1)
    ids = torch.tensor(
        [[2, 5, 6, 7, EOS, 0], [2, 8, EOS, 0, 0, 0], [2, 9, 10, 11, 12, EOS], [2, 13, 6, EOS, 0, 0]]
    )
    pixels = torch.rand(4, 3, 32, 32, dtype=torch.float64)
    pixels[1] = pixels[0]
    return ids, pixels, (ids != 0).long()


def pair_logits(model, ids, pixels, mask):
    return model(input_ids=ids, pixel_values=pixels, attention_mask=mask).logits_per_image


def reference_relevancy(model, ids, pixels, start_layer=0):
    """One unpadded pair: R = I, then R += mean_h (grad A * A)^+ R per layer (Chefer et al.)."""
    out = model(input_ids=ids, pixel_values=pixels, output_attentions=True)
    text_maps, image_maps = out.text_model_output.attentions, out.vision_model_output.attentions
    grads = torch.autograd.grad(out.logits_per_image[0, 0], [*text_maps, *image_maps])
    rows = {}
    for name, maps, map_grads in (
        ("text", text_maps, grads[: len(text_maps)]),
        ("image", image_maps, grads[len(text_maps) :]),
    ):
        size = maps[0].shape[-1]
        relevancy = torch.eye(size, dtype=maps[0].dtype)
        for layer, (a, g) in enumerate(zip(maps, map_grads, strict=True)):
            if layer >= start_layer:
                relevancy = relevancy + (g[0] * a[0]).clamp(min=0).mean(dim=0) @ relevancy
        rows[name] = relevancy
    eot = int((ids[0] == EOS).nonzero()[0])
    text = rows["text"][eot].clone()
    text[eot] = 0
    return text, rows["image"][0, 1:]


def test_pair_score_is_the_diagonal_of_clip_logits(clip, pairs):
    ids, pixels, mask = pairs
    score = ClipAdapter(clip).model(ids, pixels, mask)
    assert score.shape == (4, 1)
    torch.testing.assert_close(score[:, 0], pair_logits(clip, ids, pixels, mask).diagonal())


@pytest.mark.parametrize("start_layer", [0, 1])
def test_relevancy_matches_a_per_pair_loop_and_padding_is_zero(clip, pairs, start_layer):
    ids, pixels, mask = pairs
    explainer = CoAttentionRelevancy(ClipAdapter(clip), start_layer=start_layer)
    text_rel, image_rel = explainer.attribute((ids, pixels), additional_forward_args=(mask,))
    assert text_rel.shape == (4, 6) and image_rel.shape == (4, 16)
    for b in range(4):
        length = int(mask[b].sum())
        text, image = reference_relevancy(
            clip, ids[b : b + 1, :length], pixels[b : b + 1], start_layer
        )
        torch.testing.assert_close(text_rel[b, :length], text)
        torch.testing.assert_close(image_rel[b], image)
        assert bool((text_rel[b, length:] == 0).all())
        assert text.abs().sum() > 0 and image.abs().sum() > 0


def test_batched_pairs_equal_single_pairs(clip, pairs):
    ids, pixels, mask = pairs
    explainer = CoAttentionRelevancy(ClipAdapter(clip))
    text_rel, image_rel = explainer.attribute((ids, pixels), additional_forward_args=(mask,))
    for b in range(4):
        text, image = explainer.attribute(
            (ids[b : b + 1], pixels[b : b + 1]), additional_forward_args=(mask[b : b + 1],)
        )
        torch.testing.assert_close(text[0], text_rel[b])
        torch.testing.assert_close(image[0], image_rel[b])
    # the same image with two captions gives two different maps
    assert not torch.allclose(image_rel[0], image_rel[1])


def test_last_start_layer_reads_the_gradient_weighted_last_attention(clip, pairs):
    ids, pixels, mask = pairs
    explainer = CoAttentionRelevancy(ClipAdapter(clip), start_layer=1)
    text_rel, image_rel = explainer.attribute((ids, pixels), additional_forward_args=(mask,))
    out = clip(input_ids=ids, pixel_values=pixels, attention_mask=mask, output_attentions=True)
    text_last = out.text_model_output.attentions[-1]
    image_last = out.vision_model_output.attentions[-1]
    total = out.logits_per_image.diagonal().sum()
    grad_text, grad_image = torch.autograd.grad(total, [text_last, image_last])
    expected_image = (grad_image * image_last).clamp(min=0).mean(dim=1)[:, 0, 1:]
    torch.testing.assert_close(image_rel, expected_image)
    weighted_text = (grad_text * text_last).clamp(min=0).mean(dim=1)
    eot = (ids == EOS).int().argmax(dim=1)
    expected_text = weighted_text[torch.arange(4), eot]
    expected_text[torch.arange(4), eot] = 0
    torch.testing.assert_close(text_rel, expected_text)


def test_image_grid_is_row_major_over_patches_and_upsamples(clip, pairs):
    _, pixels, _ = pairs
    adapter = ClipAdapter(clip)
    changed = pixels.clone()
    changed[0, :, 8:16, 24:32] += 1.0  # patch row 1, column 3
    with torch.no_grad():
        embed = clip.vision_model.embeddings
        delta = (embed(changed[:1]) - embed(pixels[:1])).abs().sum(dim=2)[0, 1:]
    grid = adapter.image_grid(delta[None])
    assert grid.shape == (1, 4, 4)
    assert grid[0, 1, 3] > 0 and float(grid.sum()) == float(grid[0, 1, 3])
    assert adapter.image_grid(delta[None], size=(32, 32)).shape == (1, 32, 32)
    with pytest.raises(ValueError, match="image_rel"):
        adapter.image_grid(torch.zeros(1, 15))


def test_hadamard_deviation_matches_explicit_autograd(clip, pairs):
    ids, pixels, mask = pairs
    explainer = HadamardDeviation.from_adapter(ClipAdapter(clip))
    visual, textual = explainer.attribute(
        (ids, pixels), additional_forward_args=(mask,), image_index=1
    )
    image = pixels.clone().requires_grad_()
    embeddings = []

    def as_leaf(_module, _inputs, output):
        embeddings.append(output.detach().requires_grad_())
        return embeddings[-1]

    handle = clip.text_model.embeddings.token_embedding.register_forward_hook(as_leaf)
    try:
        text = clip.text_model(input_ids=ids, attention_mask=mask).pooler_output
    finally:
        handle.remove()
    q = clip.text_projection(text)
    q = q / q.norm(dim=1, keepdim=True)
    v = clip.visual_projection(clip.vision_model(pixel_values=image).pooler_output)
    v = v / v.norm(dim=1, keepdim=True)
    f = (q * v).detach()
    (expected_visual,) = torch.autograd.grad(v, image, v.detach() - f)
    (expected_textual,) = torch.autograd.grad(q, embeddings[0], q.detach() - f)
    torch.testing.assert_close(visual, expected_visual)
    torch.testing.assert_close(textual, expected_textual)
    assert visual.shape == pixels.shape and textual.shape == (4, 6, 16)


def plain_grad_cam(model, ids, pixels, mask):
    """Grad-CAM on the patch tokens entering the last vision layer's attention."""
    recorded = []
    site = model.vision_model.encoder.layers[-1].layer_norm1
    handle = site.register_forward_hook(lambda _m, _i, out: recorded.append(out))
    try:
        total = pair_logits(model, ids, pixels, mask).diagonal().sum()
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(total, recorded[0])
    grid = (4, 4)
    to_grid = lambda t: t[:, 1:].transpose(1, 2).reshape(len(t), -1, *grid)  # noqa: E731
    weights = to_grid(grad).mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * to_grid(recorded[0].detach())).sum(dim=1, keepdim=True))


def test_question_masked_grad_cam_with_all_neurons_is_plain_grad_cam(clip, pairs):
    ids, pixels, mask = pairs
    explainer = QuestionMaskedGradCAM.from_adapter(ClipAdapter(clip))
    maps = explainer.sweep(
        (ids, pixels), target=0, top_ns=[0, 3, 8], additional_forward_args=(mask,)
    )
    expected = plain_grad_cam(clip, ids, pixels, mask)
    torch.testing.assert_close(maps[8], expected)
    assert expected.abs().sum() > 0
    assert bool((maps[0] == 0).all())  # every path from the patches passes through Q o V
    assert not torch.allclose(maps[3], maps[8])
    single = explainer.attribute((ids, pixels), top_n=8, additional_forward_args=(mask,))
    torch.testing.assert_close(single, expected)


def sdpa_models(clip):
    built = CLIPModel(tiny_config(attn_implementation="sdpa")).double().eval()
    built.load_state_dict(clip.state_dict())
    switched = copy.deepcopy(clip)
    switched.set_attn_implementation("sdpa")
    return {"built with sdpa": built, "switched to sdpa": switched}


def implementations(model):
    config = model.config
    return (
        config._attn_implementation,
        config.text_config._attn_implementation,
        config.vision_config._attn_implementation,
    )


@pytest.mark.parametrize("how", ["built with sdpa", "switched to sdpa"])
def test_sdpa_models_run_eagerly_for_the_call_and_get_sdpa_back(clip, pairs, how, model_state):
    ids, pixels, mask = pairs
    model = sdpa_models(clip)[how]
    assert implementations(model) == ("sdpa", "sdpa", "sdpa")
    state = model_state(model)
    adapter, reference = ClipAdapter(model), ClipAdapter(clip)
    args = {"additional_forward_args": (mask,)}
    got = CoAttentionRelevancy(adapter).attribute((ids, pixels), **args)
    expected = CoAttentionRelevancy(reference).attribute((ids, pixels), **args)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)
        assert a.abs().sum() > 0
    cam = QuestionMaskedGradCAM.from_adapter(adapter).attribute((ids, pixels), top_n=3, **args)
    torch.testing.assert_close(
        cam, QuestionMaskedGradCAM.from_adapter(reference).attribute((ids, pixels), top_n=3, **args)
    )
    assert implementations(model) == ("sdpa", "sdpa", "sdpa")
    state.assert_unchanged()


def test_a_model_that_cannot_switch_gets_a_clear_error(clip, pairs, monkeypatch):
    ids, pixels, mask = pairs
    model = sdpa_models(clip)["switched to sdpa"]
    monkeypatch.delattr(PreTrainedModel, "set_attn_implementation")
    with pytest.raises(ValueError, match='attn_implementation="eager"'):
        CoAttentionRelevancy(ClipAdapter(model)).attribute(
            (ids, pixels), additional_forward_args=(mask,)
        )


def explainers(adapter):
    return {
        "relevancy": lambda inputs, mask: CoAttentionRelevancy(adapter).attribute(
            inputs, additional_forward_args=(mask,)
        ),
        "hadamard": lambda inputs, mask: HadamardDeviation.from_adapter(adapter).attribute(
            inputs, additional_forward_args=(mask,), image_index=1
        ),
        "masked grad-cam": lambda inputs, mask: QuestionMaskedGradCAM.from_adapter(
            adapter
        ).attribute(inputs, top_n=3, additional_forward_args=(mask,)),
    }


@pytest.mark.parametrize("method", ["relevancy", "hadamard", "masked grad-cam"])
@pytest.mark.parametrize("how", ["built with sdpa", "switched to sdpa"])
def test_model_is_left_as_found_after_success_and_after_an_exception(
    clip, pairs, method, how, model_state
):
    ids, pixels, mask = pairs
    model = sdpa_models(clip)[how].train()
    for p in model.text_model.parameters():
        p.requires_grad_(False)
    state = model_state(model)
    given = (ids.clone(), pixels.clone(), mask.clone())
    run = explainers(ClipAdapter(model))[method]
    run((ids, pixels), mask)
    state.assert_unchanged()
    wrong_size = torch.rand(4, 3, 24, 24, dtype=torch.float64)  # fails inside CLIP's forward
    with pytest.raises(ValueError):
        run((ids, wrong_size), mask)
    state.assert_unchanged()
    assert implementations(model) == ("sdpa", "sdpa", "sdpa")
    for a, b in zip((ids, pixels, mask), given, strict=True):
        assert torch.equal(a, b)


def test_bad_inputs_raise_naming_the_argument(clip, pairs):
    ids, pixels, mask = pairs
    explainer = CoAttentionRelevancy(ClipAdapter(clip))
    cases = [
        ((ids, pixels[:3]), (mask,), "pixel_values"),
        ((ids.double(), pixels), (mask,), "input_ids"),
        ((ids, pixels[:, 0]), (mask,), "pixel_values"),
        ((ids, pixels), (mask[:, :4],), "attention_mask"),
        ((ids, pixels), (mask, mask), "additional_forward_args"),
        ((ids.clamp(max=2), pixels), (mask,), "end-of-text"),
        ((ids, pixels), (torch.ones_like(mask) - (ids == EOS).long(),), "attention_mask"),
        ((ids, pixels.clone().fill_(float("nan"))), (mask,), "inputs\\[1\\]"),
        ((ids,), (mask,), "input_ids, pixel_values"),
    ]
    for inputs, args, name in cases:
        with pytest.raises(ValueError, match=name):
            explainer.attribute(inputs, additional_forward_args=args)
    with pytest.raises(ValueError, match="target"):
        explainer.attribute((ids, pixels), target=1, additional_forward_args=(mask,))
    with pytest.raises(TypeError, match="CLIPModel"):
        ClipAdapter(torch.nn.Linear(2, 2))

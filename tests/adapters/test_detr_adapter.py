"""DetrAdapter on an unmodified random-init DetrForObjectDetection (built offline).

Expected values come from the paper's encoder-decoder rules written here, one image at
a time, on attention maps from transformers' own ``output_attentions`` of an eager copy
of the model, never through the engine or the adapter's hooks.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    DetrAdapter,
    RawAttention,
)

HEIGHT, WIDTH, QUERIES, LABELS = 64, 48, 5, 3  # an 8 x 6 feature grid


def detr() -> DetrForObjectDetection:
    torch.manual_seed(0)
    backbone = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
        out_features=["stage2"],
    )  # fmt: skip
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
        num_queries=QUERIES,
        num_labels=LABELS,
        init_xavier_std=3.0,
    )
    return DetrForObjectDetection(config).double().eval()


def images():
    """Two images; the second padded at the bottom and on the right."""
    torch.manual_seed(1)
    pixels = torch.rand(2, 3, HEIGHT, WIDTH, dtype=torch.float64)
    mask = torch.ones(2, HEIGHT, WIDTH, dtype=torch.long)
    mask[1, 40:] = 0
    mask[1, :, 32:] = 0
    return pixels * mask[:, None], mask


def eager_copy(model):
    reference = copy.deepcopy(model)
    reference.set_attn_implementation("eager")
    return reference


def normalized(r):
    eye = torch.eye(len(r), dtype=r.dtype)
    residual = r - eye
    sums = residual.sum(1, keepdim=True)
    return torch.where(sums == 0, 0.0, residual / torch.where(sums == 0, 1.0, sums)) + eye


def rules_per_image(reference, pixels, mask, query=None, target=None):
    """Encoder self-attention, decoder self-attention, decoder->encoder cross-attention
    with Eq. 10 only, for one image; returns the relevance (S,) of the feature cells."""
    out = reference(pixel_values=pixels, pixel_mask=mask, output_attentions=True)
    logits = out.logits[0]
    if query is None:
        query = int(logits.softmax(-1)[:, :-1].max(-1).values.argmax())
    if target is None:
        target = int(logits[query, :-1].argmax())
    encoder, decoder, cross = out.encoder_attentions, out.decoder_attentions, out.cross_attentions
    maps = [*encoder, *decoder, *cross]
    grads = torch.autograd.grad(logits[query, target], maps)
    bar = [(g[0] * a[0]).clamp(min=0).mean(0) for a, g in zip(maps, grads, strict=True)]
    size = encoder[0].shape[-1]
    r_ii = torch.eye(size, dtype=torch.float64)
    for a in bar[: len(encoder)]:
        r_ii = r_ii + a @ r_ii
    r_qq = torch.eye(QUERIES, dtype=torch.float64)
    r_qi = torch.zeros(QUERIES, size, dtype=torch.float64)
    for j in range(len(decoder)):
        a_qq, a_qi = bar[len(encoder) + j], bar[len(encoder) + len(decoder) + j]
        r_qq, r_qi = r_qq + a_qq @ r_qq, r_qi + a_qq @ r_qi
        r_qi = r_qi + normalized(r_qq).T @ a_qi @ normalized(r_ii)
    valid = F.interpolate(mask[None].double(), size=(8, 6)).bool()[0].flatten(1)[0]
    return r_qi[query] * valid


@pytest.mark.parametrize("choose", [False, True])
def test_batched_adapter_and_engine_equal_per_image_rules(choose):
    model = detr()
    reference = eager_copy(model)
    pixels, mask = images()
    query = torch.tensor([3, 1]) if choose else None
    target = torch.tensor([2, 0]) if choose else None
    image = CoAttentionRelevancy(DetrAdapter(model)).attribute(
        pixels, target=target, additional_forward_args=(mask, query)
    )
    assert image.shape == (2, 48)
    for b in range(2):
        expected = rules_per_image(
            reference,
            pixels[b : b + 1],
            mask[b : b + 1],
            None if query is None else int(query[b]),
            None if target is None else int(target[b]),
        )
        torch.testing.assert_close(image[b], expected, atol=1e-5, rtol=1e-5)
        assert expected.abs().sum() > 0
    padded = ~F.interpolate(mask[None].double(), size=(8, 6)).bool()[0].flatten(1)
    assert padded[1].any() and (image[padded] == 0).all()


def test_recorded_maps_are_the_models_own_and_logits_unchanged():
    model = detr()
    reference = eager_copy(model)
    pixels, mask = images()
    with torch.no_grad():
        plain = reference(pixel_values=pixels, pixel_mask=mask).logits
        own = reference(pixel_values=pixels, pixel_mask=mask, output_attentions=True)
    adapter = DetrAdapter(model)
    with adapter.record(pixels, (mask, 2)) as recording:
        assert torch.equal(recording.logits, plain[:, 2, :-1])
        roles = [(e.query, e.key, e.layer, e.one_way) for e in recording.events]
        recorded = [e.probs.detach() for e in recording.events]
        assert torch.equal(recording.readout[1], torch.tensor([2, 2]))
    assert roles == [
        ("image", "image", 0, False),
        ("image", "image", 1, False),
        ("queries", "queries", 0, False),
        ("queries", "image", 0, True),
        ("queries", "queries", 1, False),
        ("queries", "image", 1, True),
    ]
    expected = [*own.encoder_attentions]
    for self_map, cross_map in zip(own.decoder_attentions, own.cross_attentions, strict=True):
        expected += [self_map, cross_map]
    for got, want in zip(recorded, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
    assert adapter.grid_size == (8, 6)
    with torch.no_grad():
        sdpa = model(pixel_values=pixels, pixel_mask=mask).logits
    torch.testing.assert_close(sdpa, plain)


def test_model_left_as_found_also_when_the_forward_raises(model_state):
    model = detr().train()
    assert model.config._attn_implementation == "sdpa"
    backbone = model.config.backbone_config._attn_implementation
    pixels, mask = images()
    copies = [pixels.clone(), mask.clone()]
    state = model_state(model)
    CoAttentionRelevancy(DetrAdapter(model)).attribute(pixels, additional_forward_args=(mask,))
    state.assert_unchanged()
    assert model.config.backbone_config._attn_implementation == backbone
    assert torch.equal(copies[0], pixels) and torch.equal(copies[1], mask)

    def fail(*_):
        raise RuntimeError("midway")

    failing = model.model.decoder.layers[1].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="midway"):
        CoAttentionRelevancy(DetrAdapter(model)).attribute(pixels)
    failing.remove()
    state.assert_unchanged()
    assert model.config.backbone_config._attn_implementation == backbone


def test_baselines_against_direct_formulas():
    model = detr()
    pixels, mask = images()
    out = eager_copy(model)(pixel_values=pixels, pixel_mask=mask, output_attentions=True)
    query = DetrAdapter.confident_queries(out.logits.detach())
    rows = torch.arange(2)
    selected = out.logits[rows, query, :-1]
    self_map, cross_map = out.decoder_attentions[-1], out.cross_attentions[-1]
    grad = torch.autograd.grad(selected.max(1).values.sum(), cross_map)[0]
    valid = F.interpolate(mask[None].double(), size=(8, 6)).bool()[0].flatten(1)
    cam = (grad.mean(dim=(2, 3), keepdim=True) * cross_map).mean(1).clamp(min=0)
    expected = {
        RawAttention: cross_map.mean(1)[rows, query] * valid,
        AttentionGradCAM: cam[rows, query].detach() * valid,
    }
    adapter = DetrAdapter(model)
    for method, image_expected in expected.items():
        image = method(adapter).attribute(pixels, additional_forward_args=(mask,))
        torch.testing.assert_close(image, image_expected.detach(), atol=1e-10, rtol=1e-8)
    image = AttentionRollout(adapter).attribute(pixels, additional_forward_args=(mask,))
    assert image.shape == (2, 48) and torch.isfinite(image).all() and (image[~valid] == 0).all()
    assert self_map.shape == (2, 2, QUERIES, QUERIES)


def test_image_grid_and_bad_input_are_named():
    model = detr()
    adapter = DetrAdapter(model)
    pixels, mask = images()
    with pytest.raises(ValueError, match="image_grid"):
        adapter.image_grid(torch.zeros(2, 48))
    image = CoAttentionRelevancy(adapter).attribute(
        pixels[:, :, :32], additional_forward_args=(mask[:, :32],)
    )
    assert adapter.grid_size == (4, 6)
    torch.testing.assert_close(adapter.image_grid(image).flatten(1), image)
    assert adapter.image_grid(image, size=(32, WIDTH)).shape == (2, 32, WIDTH)
    with pytest.raises(TypeError, match="DetrForObjectDetection"):
        DetrAdapter(torch.nn.Linear(2, 2))
    explainer = CoAttentionRelevancy(adapter)
    cases = [
        (pixels[:, 0], (mask,), "pixel_values"),
        ((pixels, pixels), (mask,), "pixel_values"),
        (pixels, (mask[:, :10],), "pixel_mask"),
        (pixels, (mask * 0,), "pixel_mask"),
        (pixels, (mask, QUERIES), "query"),
        (pixels, (mask, 1.5), "query"),
        (pixels, (mask, torch.tensor([0, 1, 2])), "query"),
        (pixels, (mask, 0, 0), "additional_forward_args"),
        (pixels.clone().fill_(float("nan")), (mask,), "inputs"),
    ]
    for model_inputs, args, name in cases:
        with pytest.raises(ValueError, match=name):
            explainer.attribute(model_inputs, additional_forward_args=args)

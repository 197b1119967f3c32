"""BlipItmAdapter on an unmodified random-init BlipForImageTextRetrieval.

Expected values come from the paper's rules written here, one unpadded pair at a time,
on attention maps taken from transformers' own ``output_attentions`` of the vision model
and the text encoder (called directly, as the ITM forward calls them), never through the
engine or the adapter's hooks.
"""

import pytest
import torch
import torch.nn.functional as F
from transformers import BlipConfig, BlipForImageTextRetrieval

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRollout,
    BlipItmAdapter,
    CoAttentionRelevancy,
    RawAttention,
)

SIDE, PATCH = 24, 8  # a 3 x 3 patch grid


def blip() -> BlipForImageTextRetrieval:
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
            "initializer_range": 0.2,
        },
        vision_config={
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "image_size": SIDE,
            "patch_size": PATCH,
            "initializer_range": 0.2,
        },
        image_text_hidden_size=8,
    )
    return BlipForImageTextRetrieval(config).double().eval()


def pairs():
    """Three pairs; captions right-padded to different lengths."""
    torch.manual_seed(1)
    ids = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 10, 2, 0, 0], [1, 11, 2, 0, 0, 0]])
    return (ids, torch.rand(3, 3, SIDE, SIDE, dtype=torch.float64)), ((ids != 0).long(),)


def own_maps(model, ids, pixels, mask, itm=True):
    """Score and maps from transformers' own outputs: vision self, text self, text->image."""
    vision = model.vision_model(pixel_values=pixels, output_attentions=True)
    image = vision.last_hidden_state
    cross_args = {"encoder_hidden_states": image} if itm else {}
    if itm:
        cross_args["encoder_attention_mask"] = torch.ones(image.shape[:2], dtype=torch.long)
    text = model.text_encoder(
        input_ids=ids, attention_mask=mask, output_attentions=True, **cross_args
    )
    cls = text.last_hidden_state[:, 0]
    if itm:
        score = model.itm_head(cls)
    else:
        image_feat = F.normalize(model.vision_proj(image[:, 0]), dim=-1)
        score = (image_feat * F.normalize(model.text_proj(cls), dim=-1)).sum(-1, keepdim=True)
    return score, list(vision.attentions), list(text.attentions), list(text.cross_attentions or ())


def normalized(r):
    eye = torch.eye(len(r), dtype=r.dtype)
    residual = r - eye
    sums = residual.sum(1, keepdim=True)
    return torch.where(sums == 0, 0.0, residual / torch.where(sums == 0, 1.0, sums)) + eye


def rules_per_pair(model, ids, pixels, target, itm=True):
    """Chefer et al.'s rules for one unpadded pair, encoder-decoder case (Eq. 10 only)."""
    score, vision, text, cross = own_maps(model, ids, pixels, torch.ones_like(ids), itm)
    maps = [*vision, *text, *cross]
    grads = torch.autograd.grad(score[0, target], maps)
    bar = [(g[0] * a[0]).clamp(min=0).mean(0) for a, g in zip(maps, grads, strict=True)]
    first, last = len(vision), len(vision) + len(text)
    bar_vision, bar_text, bar_cross = bar[:first], bar[first:last], bar[last:]
    n, t = vision[0].shape[-1], ids.shape[1]
    r_ii = torch.eye(n, dtype=torch.float64)
    for a in bar_vision:
        r_ii = r_ii + a @ r_ii
    r_tt, r_ti = torch.eye(t, dtype=torch.float64), torch.zeros(t, n, dtype=torch.float64)
    for k, a in enumerate(bar_text):
        r_tt, r_ti = r_tt + a @ r_tt, r_ti + a @ r_ti
        if itm:
            r_ti = r_ti + normalized(r_tt).T @ bar_cross[k] @ normalized(r_ii)
    text_row = r_tt[0].clone()
    text_row[0] = 0
    image_row = r_ti[0, 1:] if itm else r_ii[0, 1:]
    return text_row, image_row


@pytest.mark.parametrize("itm", [True, False])
def test_batched_adapter_and_engine_equal_per_pair_rules(itm):
    model = blip()
    (ids, pixels), (mask,) = pairs()
    target = 1 if itm else 0
    text, image = CoAttentionRelevancy(BlipItmAdapter(model, use_itm_head=itm)).attribute(
        (ids, pixels), target=target, additional_forward_args=(mask,)
    )
    assert text.shape == (3, 6) and image.shape == (3, 9)
    for b in range(3):
        t = int(mask[b].sum())
        expected_text, expected_image = rules_per_pair(
            model, ids[b : b + 1, :t], pixels[b : b + 1], target, itm
        )
        torch.testing.assert_close(text[b, :t], expected_text, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(image[b], expected_image, atol=1e-5, rtol=1e-5)
        assert (text[b, t:] == 0).all()
        assert expected_text.abs().sum() > 0 and expected_image.abs().sum() > 0


def test_recorded_maps_are_the_models_own_and_logits_unchanged():
    model = blip()
    (ids, pixels), (mask,) = pairs()
    with torch.no_grad():
        plain = model(input_ids=ids, pixel_values=pixels, attention_mask=mask).itm_score
    with BlipItmAdapter(model).record((ids, pixels), (mask,)) as recording:
        assert torch.equal(recording.logits, plain)
        roles = [(e.query, e.key, e.layer, e.one_way) for e in recording.events]
        recorded = [e.probs.detach() for e in recording.events]
    assert roles == [
        ("image", "image", 0, False),
        ("image", "image", 1, False),
        ("text", "text", 0, False),
        ("text", "image", 0, True),
        ("text", "text", 1, False),
        ("text", "image", 1, True),
    ]
    with torch.no_grad():
        score, vision, text, cross = own_maps(model, ids, pixels, mask)
    torch.testing.assert_close(score, plain)
    for got, own in zip(recorded, [*vision, text[0], cross[0], text[1], cross[1]], strict=True):
        torch.testing.assert_close(got, own, atol=1e-12, rtol=1e-10)


def test_model_left_as_found_also_when_the_forward_raises(model_state):
    model = blip().train()
    (ids, pixels), (mask,) = pairs()
    copies = [t.clone() for t in (ids, pixels, mask)]
    state = model_state(model)
    CoAttentionRelevancy(BlipItmAdapter(model)).attribute(
        (ids, pixels), target=1, additional_forward_args=(mask,)
    )
    state.assert_unchanged()
    assert all(torch.equal(a, b) for a, b in zip(copies, (ids, pixels, mask), strict=True))

    def fail(*_):
        raise RuntimeError("midway")

    failing = model.text_encoder.encoder.layer[1].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="midway"):
        CoAttentionRelevancy(BlipItmAdapter(model)).attribute(
            (ids, pixels), additional_forward_args=(mask,)
        )
    failing.remove()
    state.assert_unchanged()


def test_baselines_against_direct_formulas():
    model = blip()
    (ids, pixels), (mask,) = pairs()
    score, _, text_maps, cross_maps = own_maps(model, ids, pixels, mask)
    grad_tt, grad_ti = torch.autograd.grad(score[:, 1].sum(), [text_maps[-1], cross_maps[-1]])

    def text_row(matrix):
        row = matrix[:, 0].detach().clone()
        row[:, 0] = 0
        return row * mask

    def cam(a, g):
        return (g.mean(dim=(2, 3), keepdim=True) * a).mean(1).clamp(min=0)

    expected = {
        RawAttention: (text_row(text_maps[-1].mean(1)), cross_maps[-1].mean(1)[:, 0, 1:]),
        AttentionGradCAM: (
            text_row(cam(text_maps[-1], grad_tt)),
            cam(cross_maps[-1], grad_ti)[:, 0, 1:].detach(),
        ),
    }
    adapter = BlipItmAdapter(model)
    for method, (text_expected, image_expected) in expected.items():
        text, image = method(adapter).attribute(
            (ids, pixels), target=1, additional_forward_args=(mask,)
        )
        torch.testing.assert_close(text, text_expected, atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(image, image_expected, atol=1e-10, rtol=1e-8)
    text, image = AttentionRollout(adapter).attribute(
        (ids, pixels), additional_forward_args=(mask,)
    )
    assert text.shape == (3, 6) and image.shape == (3, 9) and (text[2, 3:] == 0).all()
    assert torch.isfinite(image).all() and (image > 0).any()


def test_image_grid_and_bad_input_are_named():
    model = blip()
    adapter = BlipItmAdapter(model)
    (ids, pixels), (mask,) = pairs()
    image = torch.arange(9.0).repeat(3, 1)
    assert torch.equal(adapter.image_grid(image)[1], torch.arange(9.0).reshape(3, 3))
    assert adapter.image_grid(image, size=(SIDE, SIDE)).shape == (3, SIDE, SIDE)
    with pytest.raises(ValueError, match="image_rel"):
        adapter.image_grid(image[:, :4])
    with pytest.raises(TypeError, match="BlipForImageTextRetrieval"):
        BlipItmAdapter(torch.nn.Linear(2, 2))
    explainer = CoAttentionRelevancy(adapter)
    cases = [
        ((ids,), (mask,), "inputs"),
        ((ids.double(), pixels), (mask,), "input_ids"),
        ((ids, pixels[:2]), (mask,), "pixel_values"),
        ((ids, pixels[:, 0]), (mask,), "pixel_values"),
        ((ids, pixels), (mask[:, :4],), "attention_mask"),
        ((ids, pixels), (mask.flip(1),), "attention_mask"),
        ((ids, pixels), (mask, mask), "additional_forward_args"),
        ((ids, pixels.clone().fill_(float("nan"))), (mask,), "inputs"),
    ]
    for model_inputs, args, name in cases:
        with pytest.raises(ValueError, match=name):
            explainer.attribute(model_inputs, additional_forward_args=args)

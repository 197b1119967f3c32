import pytest
import torch
from transformers import ViltConfig, ViltForImageAndTextRetrieval, ViltForQuestionAnswering

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    RawAttention,
    ViltAdapter,
)

PATCH = 8


def vilt(head=ViltForQuestionAnswering, layers=2, max_image_length=-1):
    torch.manual_seed(0)
    config = ViltConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=48,
        image_size=32,
        patch_size=PATCH,
        max_position_embeddings=16,
        max_image_length=max_image_length,
        num_labels=5,
        initializer_range=0.2,  # large enough weights that second-order terms show
    )
    return head(config).eval()


def batch():
    """Three samples: text padding in samples 1 and 2; images of 4x4, 2x3 and 3x4 patches
    padded to 4x4 (pixel_mask marks the real pixels, the padding holds noise)."""
    torch.manual_seed(1)
    ids = torch.randint(4, 40, (3, 6))
    ids[:, 0] = 2
    text_mask = torch.ones(3, 6, dtype=torch.long)
    text_mask[1, 4:] = 0
    text_mask[2, 3:] = 0
    ids = ids * text_mask
    pixels = torch.rand(3, 3, 32, 32)
    sizes = [(4, 4), (2, 3), (3, 4)]
    pixel_mask = torch.zeros(3, 32, 32, dtype=torch.long)
    for b, (h, w) in enumerate(sizes):
        pixel_mask[b, : h * PATCH, : w * PATCH] = 1
    return (ids, pixels), (text_mask, pixel_mask), sizes


def own_run(model, ids, pixels, pixel_mask, seed):
    """The model's own forward (pixels in) with its maps, and where each image token's
    patch lies: ViLT draws the patch order at random, so the test replays the draw."""
    torch.manual_seed(seed)
    _, token_mask, (patch_index, _) = model.vilt.embeddings.visual_embed(
        pixels, pixel_mask, max_image_length=model.config.max_image_length
    )
    torch.manual_seed(seed)
    out = model(
        input_ids=ids,
        attention_mask=(ids != 0).long(),
        pixel_values=pixels,
        pixel_mask=pixel_mask,
        output_attentions=True,
    )
    return out.logits, out.attentions, patch_index, token_mask


def rules_per_sample(model, ids, pixels, target, grid):
    """The paper's self-attention rule for one unpadded sample, on its own image size,
    written without the engine; the image row is placed on the (gh, gw) grid."""
    mask = torch.ones(1, *pixels.shape[2:], dtype=torch.long)
    logits, maps, patch_index, _ = own_run(model, ids, pixels, mask, seed=7)
    grads = torch.autograd.grad(logits[0, target], maps)
    size = maps[0].shape[-1]
    r = torch.eye(size)
    for a, g in zip(maps, grads, strict=True):
        r = r + (g[0] * a[0]).clamp(min=0).mean(0) @ r
    row = r[0].detach().clone()
    row[0] = 0
    t = ids.shape[1]
    image = torch.zeros(grid)
    image[patch_index[0, :, 0], patch_index[0, :, 1]] = row[t + 1 :]
    return row[:t], image


@pytest.mark.parametrize("head", [ViltForQuestionAnswering, ViltForImageAndTextRetrieval])
def test_batched_adapter_and_engine_equal_per_sample_rules(head):
    model = vilt(head, layers=3)
    inputs, masks, sizes = batch()
    adapter = ViltAdapter(model)
    target = torch.tensor([1, 4, 2]) if head is ViltForQuestionAnswering else 0
    text, image = CoAttentionRelevancy(adapter).attribute(
        inputs, target=target, additional_forward_args=masks
    )
    assert adapter.grid_size == (4, 4) and text.shape == (3, 6) and image.shape == (3, 16)
    grid = adapter.image_grid(image)
    ids, pixels = inputs
    for b, (h, w) in enumerate(sizes):
        t = int(masks[0][b].sum())
        pixels_b = pixels[b : b + 1, :, : h * PATCH, : w * PATCH]
        goal = int(target[b]) if isinstance(target, torch.Tensor) else target
        expected_text, expected_image = rules_per_sample(
            model, ids[b : b + 1, :t], pixels_b, goal, (h, w)
        )
        torch.testing.assert_close(text[b, :t], expected_text, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(grid[b, :h, :w], expected_image, atol=1e-5, rtol=1e-4)
        assert (text[b, t:] == 0).all() and grid[b].sum() == grid[b, :h, :w].sum()
        assert expected_text.abs().sum() > 0 and expected_image.abs().sum() > 0
    assert adapter.image_grid(image, size=(32, 32)).shape == (3, 32, 32)


def test_patches_not_sampled_get_zero_and_the_rest_match_the_models_order():
    model = vilt(max_image_length=5)  # ViLT keeps 5 random patches of each image
    inputs, masks, _ = batch()
    torch.manual_seed(3)
    text, image = RawAttention(ViltAdapter(model)).attribute(inputs, additional_forward_args=masks)
    _, maps, patch_index, _ = own_run(model, *inputs, masks[1], seed=3)
    last = maps[-1].mean(1)[:, 0]  # (B, S) read-out row of the last layer
    for b in range(3):
        t = int(masks[0][b].sum())
        expected = torch.zeros(4, 4)
        expected[patch_index[b, :, 0], patch_index[b, :, 1]] = last[b, 7:]
        torch.testing.assert_close(image[b].reshape(4, 4), expected, atol=1e-6, rtol=1e-5)
        assert int((image[b] != 0).sum()) == 5 and (text[b, t:] == 0).all()


def test_logits_are_the_models_own():
    model = vilt()
    inputs, masks, _ = batch()
    torch.manual_seed(5)
    with torch.no_grad():
        plain = model(
            input_ids=inputs[0],
            attention_mask=masks[0],
            pixel_values=inputs[1],
            pixel_mask=masks[1],
        ).logits
    torch.manual_seed(5)
    with ViltAdapter(model).record(inputs, masks) as recording:
        assert torch.equal(recording.logits, plain)
        assert len(recording.events) == 2
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_model_left_as_found_also_when_the_forward_raises(model_state):
    model = vilt().train()
    inputs, masks, _ = batch()
    copies = [t.clone() for t in (*inputs, *masks)]
    state = model_state(model)
    CoAttentionRelevancy(ViltAdapter(model)).attribute(inputs, additional_forward_args=masks)
    state.assert_unchanged()
    assert all(torch.equal(a, b) for a, b in zip(copies, (*inputs, *masks), strict=True))

    def fail(*_):
        raise RuntimeError("midway")

    failing = model.vilt.encoder.layer[1].register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="midway"):
        CoAttentionRelevancy(ViltAdapter(model)).attribute(inputs, additional_forward_args=masks)
    failing.remove()
    state.assert_unchanged()


def test_baselines_against_direct_formulas():
    model = vilt(layers=3)
    inputs, masks, _ = batch()
    logits, maps, patch_index, token_mask = own_run(model, *inputs, masks[1], seed=9)
    target = logits.argmax(1)
    (grad,) = torch.autograd.grad(logits[torch.arange(3), target].sum(), maps[-1])
    valid = torch.cat([masks[0], token_mask], dim=1).float()
    size = maps[0].shape[-1]

    def split(matrix):
        row = matrix[:, 0].detach().clone() * valid
        row[:, 0] = 0
        image = torch.zeros(3, 4, 4)
        for b in range(3):
            seen = valid[b, 7:].bool()
            cells = patch_index[b][seen]
            image[b, cells[:, 0], cells[:, 1]] = row[b, 7:][seen]
        return row[:, :6], image.flatten(1)

    product = torch.eye(size)
    for a in maps:
        layer = a.mean(1) + torch.eye(size)
        product = layer / layer.sum(-1, keepdim=True) @ product
    cam = (grad.mean(dim=(2, 3), keepdim=True) * maps[-1]).mean(1).clamp(min=0)
    expected = {
        RawAttention: split(maps[-1].mean(1)),
        AttentionGradCAM: split(cam),
        AttentionRollout: split(product),
    }
    adapter = ViltAdapter(model)
    for method, (text_expected, image_expected) in expected.items():
        torch.manual_seed(9)
        text, image = method(adapter).attribute(inputs, additional_forward_args=masks)
        torch.testing.assert_close(text, text_expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(image, image_expected, atol=1e-6, rtol=1e-5)
        assert image_expected.abs().sum() > 0


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="ViltForQuestionAnswering"):
        ViltAdapter(torch.nn.Linear(2, 2))
    adapter = ViltAdapter(vilt())
    with pytest.raises(ValueError, match="image_grid"):
        adapter.image_grid(torch.zeros(1, 16))
    explainer = CoAttentionRelevancy(adapter)
    inputs, masks, _ = batch()
    ids, pixels = inputs
    cases = [
        ((ids,), masks, "inputs"),
        ((ids.float(), pixels), masks, "input_ids"),
        ((ids, pixels[:2]), masks, "pixel_values"),
        ((ids, pixels[:, 0]), masks, "pixel_values"),
        (inputs, (masks[0][:, :4], masks[1]), "attention_mask"),
        (inputs, (masks[0], masks[1][:, :8]), "pixel_mask"),
        (inputs, (masks[0], masks[1] * 0), "pixel_mask"),
        (inputs, (*masks, masks[0]), "additional_forward_args"),
        ((ids, pixels.clone().fill_(float("nan"))), masks, "inputs"),
    ]
    for model_inputs, args, name in cases:
        with pytest.raises(ValueError, match=name):
            explainer.attribute(model_inputs, additional_forward_args=args)
    explainer.attribute(inputs, additional_forward_args=masks)
    with pytest.raises(ValueError, match="image_rel"):
        adapter.image_grid(torch.zeros(3, 12))

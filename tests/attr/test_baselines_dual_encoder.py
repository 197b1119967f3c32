"""The attention baselines on a dual encoder (CLIP): each part is read from its own tower."""

import torch
from transformers import CLIPConfig, CLIPModel

from captum_multimodal import AttentionGradCAM, AttentionRollout, ClipAdapter, RawAttention


def tiny_clip():
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "vocab_size": 20,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "eos_token_id": 3,
            "bos_token_id": 2,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 16,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    model = CLIPModel(config).eval()
    model.set_attn_implementation("eager")
    return model


def test_raw_attention_and_rollout_read_each_tower_at_its_own_row():
    model = tiny_clip()
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    mask = (ids != 0).long()
    pixels = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values=pixels, attention_mask=mask, output_attentions=True)
    text_maps = [a.mean(dim=1) for a in out.text_model_output.attentions]
    image_maps = [a.mean(dim=1) for a in out.vision_model_output.attentions]
    eot = torch.tensor([3, 2])
    rows = torch.arange(2)

    text, image = RawAttention(ClipAdapter(model)).attribute(
        (ids, pixels), additional_forward_args=(mask,)
    )
    expected_text = text_maps[-1][rows, eot] * mask
    expected_text[rows, eot] = 0
    torch.testing.assert_close(text, expected_text)
    torch.testing.assert_close(image, image_maps[-1][:, 0, 1:])

    def rolled(maps):
        eye = torch.eye(maps[0].shape[-1])
        product = eye.expand_as(maps[0])
        for layer in maps:
            layer = (layer + eye) / 2
            product = (layer / layer.sum(-1, keepdim=True)) @ product
        return product

    text, image = AttentionRollout(ClipAdapter(model)).attribute(
        (ids, pixels), additional_forward_args=(mask,)
    )
    torch.testing.assert_close(image, rolled(image_maps)[:, 0, 1:])
    expected_text = rolled(text_maps)[rows, eot] * mask
    expected_text[rows, eot] = 0
    torch.testing.assert_close(text, expected_text)

    text, image = AttentionGradCAM(ClipAdapter(model)).attribute(
        (ids, pixels), additional_forward_args=(mask,)
    )
    assert text.shape == (2, 4) and image.shape == (2, 4)
    assert torch.isfinite(text).all() and torch.isfinite(image).all() and (text[1, 3] == 0)

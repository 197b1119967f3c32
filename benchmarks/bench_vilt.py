"""Cost of CoAttentionRelevancy and the attention baselines on ViLT and by declared roles.

Run: ``python benchmarks/bench_vilt.py [--device cuda]``. For batch 1 and 16: each
method's time as a multiple of the model's own forward+backward (goal for
CoAttentionRelevancy: at most 1.0x), side by side in one run. The models are random-init
(the cost does not depend on the weights): a ViLT over 9 text tokens and a 64 x 64 image
(8 x 8 patches), and a VisualBERT explained through ``AttentionRolesAdapter`` (its maps
recorded by hooks) next to the same VisualBERT through ``VisualBertAdapter``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import ViltConfig, ViltForQuestionAnswering

sys.path.insert(0, str(Path(__file__).parent))
from common import median_seconds

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRolesAdapter,
    AttentionRollout,
    CoAttentionRelevancy,
    RawAttention,
    ViltAdapter,
    VisualBertAdapter,
)
from captum_multimodal.models.visual_bert import build_visual_bert, visual_bert_config

METHODS = (CoAttentionRelevancy, RawAttention, AttentionRollout, AttentionGradCAM)


def vilt_batch(size: int, device: torch.device) -> tuple[tuple, tuple]:
    generator = torch.Generator().manual_seed(size)
    ids = torch.randint(4, 100, (size, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[size // 2 :, 7:] = 0  # half the batch padded
    pixels = torch.rand(size, 3, 64, 64, generator=generator)
    pixel_mask = torch.ones(size, 64, 64, dtype=torch.long)
    pixel_mask[size // 2 :, :, 48:] = 0  # half the images narrower
    return (ids.to(device), pixels.to(device)), (mask.to(device), pixel_mask.to(device))


def visual_bert_batch(size: int, config: dict, device: torch.device) -> tuple[tuple, tuple]:
    generator = torch.Generator().manual_seed(size)
    ids = torch.randint(4, config["vocab_size"], (size, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[size // 2 :, 7:] = 0
    visual = torch.rand(size, 16, config["visual_embedding_dim"], generator=generator)
    visual_mask = torch.ones(size, 16, dtype=torch.long)
    return (ids.to(device), visual.to(device)), (mask.to(device), visual_mask.to(device))


def visual_bert_by_roles(model: torch.nn.Module) -> AttentionRolesAdapter:
    layers = model.visual_bert.encoder.layer
    return AttentionRolesAdapter(
        model,
        roles={layer.attention.self: "joint" for layer in layers},
        streams=lambda ids, visual, mask, vmask: {"joint": {"text": mask, "image": vmask}},
        readout=("joint", lambda ids, visual, mask, vmask: mask.sum(1) - 2),
        logits=lambda ids, visual, mask, vmask: (
            model(
                input_ids=ids,
                attention_mask=mask,
                visual_embeds=visual,
                visual_attention_mask=vmask,
            ).logits
        ),
    )


def table(title: str, own, adapters: dict, small: tuple, large: tuple) -> None:
    """One row per (adapter, method): time / the model's own forward+backward."""
    print(f"\n{title}\n")
    print("| method | x fwd+bwd, batch 1 | x fwd+bwd, batch 16 |")
    print("| --- | ---: | ---: |")
    unit_small, unit_large = median_seconds(own(*small)), median_seconds(own(*large))
    print("| the model's own fwd+bwd | 1.00 | 1.00 |")
    for label, adapter in adapters.items():
        for method in METHODS:
            explainer = method(adapter)

            def call(batch, explainer=explainer):
                return explainer.attribute(batch[0], additional_forward_args=batch[1])

            ratio_small = median_seconds(lambda call=call: call(small)) / unit_small
            ratio_large = median_seconds(lambda call=call: call(large)) / unit_large
            print(f"| {method.__name__}{label} | {ratio_small:.2f} | {ratio_large:.2f} |")
    print(
        f"\nthe model's own fwd+bwd: {1000 * unit_small:.2f} ms at batch 1, "
        f"{1000 * unit_large:.2f} ms at batch 16"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    config = ViltConfig(
        vocab_size=100,
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=256,
        image_size=64,
        patch_size=8,
        num_labels=16,
    )
    vilt = ViltForQuestionAnswering(config).to(device).eval()

    def vilt_own(inputs, extra):
        def run():
            (ids, pixels), (mask, pixel_mask) = inputs, extra
            pixels = pixels.detach().requires_grad_()
            logits = vilt(
                input_ids=ids, attention_mask=mask, pixel_values=pixels, pixel_mask=pixel_mask
            ).logits
            return torch.autograd.grad(logits.max(dim=1).values.sum(), pixels)

        return run

    table(
        "ViLT 4 layers x 128, 9 text tokens + [CLS] + 64 patches (half the batch 48 patches)",
        vilt_own,
        {"": ViltAdapter(vilt)},
        vilt_batch(1, device),
        vilt_batch(16, device),
    )
    vb_config = visual_bert_config()
    visual_bert = build_visual_bert(**vb_config).to(device).eval()

    def visual_bert_own(inputs, extra):
        def run():
            (ids, visual), (mask, visual_mask) = inputs, extra
            visual = visual.detach().requires_grad_()
            logits = visual_bert(
                input_ids=ids,
                attention_mask=mask,
                visual_embeds=visual,
                visual_attention_mask=visual_mask,
            ).logits
            return torch.autograd.grad(logits.max(dim=1).values.sum(), visual)

        return run

    table(
        f"VisualBERT {vb_config['num_hidden_layers']} layers x {vb_config['hidden_size']}, "
        "9 text + 16 visual tokens: AttentionRolesAdapter (roles) vs VisualBertAdapter",
        visual_bert_own,
        {
            " (roles)": visual_bert_by_roles(visual_bert),
            " (VisualBertAdapter)": VisualBertAdapter(visual_bert),
        },
        visual_bert_batch(1, vb_config, device),
        visual_bert_batch(16, vb_config, device),
    )


if __name__ == "__main__":
    main()

"""Cost of CoAttentionRelevancy and the attention baselines on BLIP ITM and DETR.

Run: ``python benchmarks/bench_blip_detr.py [--device cuda]``. For batch 1 and 16, each
method's time as a multiple of the same model's own forward+backward (one backward of
the explained logits to the pixels, the model as configured: DETR on SDPA, BLIP eager),
side by side in one run. Goal: at most 1.0x (recording and the rules are cheap next to
the backward pass). Random-init models of moderate size (no downloads).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from transformers import (
    BlipConfig,
    BlipForImageTextRetrieval,
    DetrConfig,
    DetrForObjectDetection,
    ResNetConfig,
)

sys.path.insert(0, str(Path(__file__).parent))
from common import median_seconds

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRollout,
    BlipItmAdapter,
    CoAttentionRelevancy,
    DetrAdapter,
    RawAttention,
)
from captum_multimodal.adapters._recording import eager_attention

METHODS = (CoAttentionRelevancy, RawAttention, AttentionRollout, AttentionGradCAM)


def blip(device: torch.device):
    """BLIP ITM: 4 + 4 layers, hidden 128, 96 x 96 images in 16-pixel patches (36 + 1
    tokens), captions of 12 tokens (half the batch padded to 8)."""
    layers = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4}
    config = BlipConfig(
        text_config={**layers, "vocab_size": 100, "intermediate_size": 256, "bos_token_id": 1,
                     "sep_token_id": 2, "pad_token_id": 0},
        vision_config={**layers, "intermediate_size": 256, "image_size": 96, "patch_size": 16},
    )  # fmt: skip
    model = BlipForImageTextRetrieval(config).to(device).eval()

    def batch(size):
        ids = torch.randint(3, 100, (size, 12), generator=torch.Generator().manual_seed(size))
        mask = torch.ones_like(ids)
        mask[size // 2 :, 8:] = 0
        pixels = torch.rand(size, 3, 96, 96, generator=torch.Generator().manual_seed(size))
        return (ids.to(device), pixels.to(device)), (mask.to(device),)

    def own(inputs, args):
        pixels = inputs[1].detach().requires_grad_()
        score = model(input_ids=inputs[0], pixel_values=pixels, attention_mask=args[0]).itm_score
        return torch.autograd.grad(score[:, 1].sum(), pixels)

    return BlipItmAdapter(model), batch, own, 1


def detr(device: torch.device):
    """DETR: ResNet (2 stages, stride 8), 3 + 3 layers, d_model 128, 50 queries, 128 x 128
    images (16 x 16 = 256 image tokens)."""
    backbone = ResNetConfig(embedding_size=16, hidden_sizes=[32, 64], depths=[1, 1],
                            layer_type="basic", out_features=["stage2"])  # fmt: skip
    config = DetrConfig(
        use_timm_backbone=False, use_pretrained_backbone=False, backbone_config=backbone,
        d_model=128, encoder_layers=3, decoder_layers=3, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256, num_queries=50,
        num_labels=10,
    )  # fmt: skip
    model = DetrForObjectDetection(config).to(device).eval()

    def batch(size):
        pixels = torch.rand(size, 3, 128, 128, generator=torch.Generator().manual_seed(size))
        return pixels.to(device), (None, 0)

    def own(pixels, _args):
        pixels = pixels.detach().requires_grad_()
        logits = model(pixel_values=pixels).logits[:, 0, :-1]
        return torch.autograd.grad(logits.max(dim=1).values.sum(), pixels)

    return DetrAdapter(model), batch, own, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-run-time", type=float, default=0.5)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    print("| model | method | x fwd+bwd, batch 1 | x fwd+bwd, batch 16 | own fwd+bwd ms, 1 / 16 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, build in (("BLIP ITM", blip), ("DETR", detr)):
        adapter, batch, own, target = build(device)
        batches = {size: batch(size) for size in (1, 16)}

        def seconds(run, batches=batches):
            return {size: median_seconds(lambda b=b: run(*b), args.min_run_time)
                    for size, b in batches.items()}  # fmt: skip

        units = seconds(own)
        own_ms = f"{units[1] * 1e3:.1f} / {units[16] * 1e3:.1f}"
        print(f"| {name} | the model's own fwd+bwd | 1.00 | 1.00 | {own_ms} |")
        with eager_attention(adapter.model):  # what recording the maps needs at least
            eager = seconds(own)
        ratios = [eager[size] / units[size] for size in (1, 16)]
        print(f"| {name} | own fwd+bwd, eager attention | {ratios[0]:.2f} | {ratios[1]:.2f} | |")
        for method in METHODS:
            explainer = method(adapter)
            times = seconds(
                lambda inputs, extra, explainer=explainer, target=target: explainer.attribute(
                    inputs, target=target, additional_forward_args=extra
                )
            )
            ratios = [times[size] / units[size] for size in (1, 16)]
            print(f"| {name} | {method.__name__} | {ratios[0]:.2f} | {ratios[1]:.2f} | |")


if __name__ == "__main__":
    main()

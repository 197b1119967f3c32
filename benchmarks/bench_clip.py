"""Cost of the three VQA-born methods on the shipped CLIP (image-caption pairs).

Run: ``python benchmarks/bench_clip.py [--device cuda]``. For batch 1 and 32 pairs: each
method's time as a multiple of the model's own forward+backward (``logits_per_image``
diagonal summed, gradient to the pixels, in the model's own attention implementation;
goal: at most 1.3x; the relevancy needs eager attention, whose own forward+backward is
shown too), and the per-pair cost of one batch of 32 against 32 calls at batch 1,
next to the same gain for the model's own forward+backward.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import median_seconds

from captum_multimodal import (
    ClipAdapter,
    CoAttentionRelevancy,
    HadamardDeviation,
    QuestionMaskedGradCAM,
)
from captum_multimodal.datasets import CaptionPairs, collate_captions
from captum_multimodal.models import load_pretrained


def batch_of(size: int, device: torch.device) -> tuple[tuple, tuple]:
    pairs = CaptionPairs(-(-size // 2), seed=size)
    batch = collate_captions([pairs[i] for i in range(size)])
    inputs = (batch["input_ids"].to(device), batch["image"].to(device))
    return inputs, (batch["attention_mask"].to(device),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = load_pretrained("clip", device=device)
    adapter = ClipAdapter(model)
    width = model.config.projection_dim
    masked = QuestionMaskedGradCAM.from_adapter(adapter)
    hadamard = HadamardDeviation.from_adapter(adapter)
    relevancy = CoAttentionRelevancy(adapter)
    methods = {
        "CoAttentionRelevancy": lambda i, a: relevancy.attribute(i, additional_forward_args=a),
        "HadamardDeviation": lambda i, a: hadamard.attribute(
            i, additional_forward_args=a, image_index=1
        ),
        "QuestionMaskedGradCAM (sum, n=8)": lambda i, a: masked.attribute(
            i, top_n=8, additional_forward_args=a
        ),
        f"QuestionMaskedGradCAM sweep n=8, {width}": lambda i, a: masked.sweep(
            i, top_ns=[8, width], additional_forward_args=a
        ),
    }

    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")

    def forward_backward(inputs, extra, model=model):
        def run():
            (ids, pixels), (mask,) = inputs, extra
            pixels = pixels.detach().requires_grad_()
            logits = model(input_ids=ids, pixel_values=pixels, attention_mask=mask)
            return torch.autograd.grad(logits.logits_per_image.diagonal().sum(), pixels)

        return run

    text, vision = model.config.text_config, model.config.vision_config
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"CLIP text {text.num_hidden_layers} layers x {text.hidden_size}, vision "
        f"{vision.num_hidden_layers} layers x {vision.hidden_size} (64 patches + [CLS]), "
        f"model attention: {model.config._attn_implementation}\n"
    )
    print("| method | x fwd+bwd, batch 1 | x fwd+bwd, batch 32 | batch 32 vs 32 x batch 1 |")
    print("| --- | ---: | ---: | ---: |")
    small, large = batch_of(1, device), batch_of(32, device)
    singles = [
        (tuple(t[k : k + 1] for t in large[0]), tuple(t[k : k + 1] for t in large[1]))
        for k in range(32)
    ]
    unit_small = median_seconds(forward_backward(*small))
    unit_large = median_seconds(forward_backward(*large))
    loop = median_seconds(lambda: [forward_backward(*s)() for s in singles])
    print(f"| the model's own fwd+bwd | 1.00 | 1.00 | {loop / unit_large:.1f}x |")
    eager_small = median_seconds(forward_backward(*small, model=eager)) / unit_small
    eager_large = median_seconds(forward_backward(*large, model=eager)) / unit_large
    print(f"| (the same with eager attention) | {eager_small:.2f} | {eager_large:.2f} | |")
    for name, call in methods.items():
        ratio_small = median_seconds(lambda call=call: call(*small)) / unit_small
        batched = median_seconds(lambda call=call: call(*large))
        loop = median_seconds(lambda call=call: [call(*s) for s in singles])
        print(
            f"| {name} | {ratio_small:.2f} | {batched / unit_large:.2f} | {loop / batched:.1f}x |"
        )
    print(
        f"\nthe model's own fwd+bwd: {1000 * unit_small:.2f} ms at batch 1, "
        f"{1000 * unit_large / 32:.2f} ms per pair at batch 32"
    )


if __name__ == "__main__":
    main()

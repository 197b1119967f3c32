"""Cost of attribution methods on the shipped MLB, as ratios to one forward+backward.

Run: ``python benchmarks/bench_mlb.py [--device cuda]``. Prints a Markdown table: for each
batch size, the model's forward and forward+backward per sample, then each method's time as
a multiple of that forward+backward, measured in the same run; and how much batching gains
the model itself. Goals: HadamardDeviation at most 1.5x, QuestionMaskedGradCAM at most 1.6x.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from captum.attr import GuidedBackprop, IntegratedGradients, LayerGradCam, Saliency

sys.path.insert(0, str(Path(__file__).parent))
from common import forward_backward, median_seconds

from captum_multimodal.adapters import MLBAdapter
from captum_multimodal.attr import HadamardDeviation, QuestionMaskedGradCAM
from captum_multimodal.datasets import SyntheticVQA, collate_vqa
from captum_multimodal.models import load_pretrained


def measure(adapter: MLBAdapter, batch: dict, device: torch.device) -> tuple[float, float, dict]:
    """Forward and forward+backward seconds, and each method's multiple of the latter."""
    model = adapter.model
    image = batch["image"].to(device)
    extra = (batch["question"].to(device), batch["attention_mask"].to(device))
    with torch.no_grad():
        target = model(image, *extra).argmax(dim=1)
    forward = median_seconds(lambda: model(image, *extra))
    unit = median_seconds(forward_backward(model, image, extra, target))
    guided = HadamardDeviation.from_adapter(adapter)
    plain = HadamardDeviation.from_adapter(adapter, guided=False)
    kwargs = {"target": target, "additional_forward_args": extra}
    masked = QuestionMaskedGradCAM.from_adapter(adapter)
    top_ns = [10, 25, 50, 100, min(200, model.classifier.in_features)]
    methods = {
        "HadamardDeviation (guided)": lambda: guided.attribute(
            image, additional_forward_args=extra
        ),
        "HadamardDeviation (plain)": lambda: plain.attribute(image, additional_forward_args=extra),
        "Saliency": lambda: Saliency(model).attribute(image, **kwargs),
        "GuidedBackprop": lambda: GuidedBackprop(model).attribute(image, **kwargs),
        "IntegratedGradients (32 steps)": lambda: IntegratedGradients(model).attribute(
            image, n_steps=32, **kwargs
        ),
        "LayerGradCam": lambda: LayerGradCam(model, adapter.sites.conv).attribute(image, **kwargs),
        "QuestionMaskedGradCAM (sum, n=25)": lambda: masked.attribute(image, top_n=25, **kwargs),
        f"QuestionMaskedGradCAM sweep of {len(top_ns)} n, one call": lambda: masked.sweep(
            image, top_ns=top_ns, **kwargs
        ),
        f"QuestionMaskedGradCAM {len(top_ns)} separate calls": lambda: [
            masked.attribute(image, top_n=n, **kwargs) for n in top_ns
        ],
    }
    return forward, unit, {name: median_seconds(run) / unit for name, run in methods.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
    device = torch.device(args.device)
    adapter = MLBAdapter(load_pretrained("mlb", device))
    data = SyntheticVQA(max(args.batch_sizes), seed=9)
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    print("| batch | forward ms/sample | fwd+bwd ms/sample | method | x fwd+bwd |")
    print("| ---: | ---: | ---: | --- | ---: |")
    per_sample = {}
    for size in args.batch_sizes:
        batch = collate_vqa([data[i] for i in range(size)])
        forward, unit, ratios = measure(adapter, batch, device)
        per_sample[size] = unit / size
        for name, ratio in ratios.items():
            print(
                f"| {size} | {1e3 * forward / size:.2f} | {1e3 * unit / size:.2f} | {name} "
                f"| {ratio:.2f} |"
            )
    if len(per_sample) > 1:
        small, large = min(per_sample), max(per_sample)
        gain = per_sample[small] / per_sample[large]
        print(f"\nThe model's own fwd+bwd per sample is {gain:.1f}x cheaper at batch {large}.")


if __name__ == "__main__":
    main()

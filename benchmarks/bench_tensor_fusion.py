"""Cost of TensorFusionDisentangle and ModalityInteractions on the toy tensor-fusion classifier.

Run: ``python benchmarks/bench_tensor_fusion.py [--device cuda]``. Prints a Markdown table:
for each batch size, the model's own forward and forward+backward (to its parameters) per
sample, then each method's time as a multiple of one forward and of one forward+backward,
measured in the same run, round-robin (robust to load on a shared machine). Goal:
TensorFusionDisentangle on an IBN model at most 1.2x one forward. With ``baselines``
(raw/VBN models) it also runs the model on the baseline batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from captum_multimodal.attr import ModalityInteractions, TensorFusionDisentangle
from captum_multimodal.models import toy_classifier, toy_views


def model_for(normalization: str, device: torch.device) -> torch.nn.Module:
    """A toy classifier whose batch statistics have seen a few batches, in eval mode."""
    torch.manual_seed(0)
    model = toy_classifier(normalization).to(device)
    with torch.no_grad():
        for seed in range(3):
            inputs, _ = toy_views(64, relevant=(0,), seed=seed)
            model(*(x.to(device) for x in inputs))
    return model.eval()


def interleaved(functions: dict[str, Callable[[], object]], rounds: int = 21) -> dict[str, float]:
    """Median seconds per call of each function, measured round-robin: every round times a
    block of calls of each function in turn, so that load changes on a shared machine hit all
    of them alike. Ratios are taken per round (to the first function), then the median."""
    repeats = {}
    for name, function in functions.items():
        single = []
        for _ in range(6):
            start = time.perf_counter()
            function()
            single.append(time.perf_counter() - start)
        repeats[name] = max(1, int(0.05 / max(statistics.median(single[1:]), 1e-6)))
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(repeats[name]):
                function()
            seconds[name].append((time.perf_counter() - start) / repeats[name])
    first = next(iter(functions))
    ratios = {
        name: statistics.median(a / b for a, b in zip(times, seconds[first], strict=True))
        for name, times in seconds.items()
    }
    unit = statistics.median(seconds[first])
    return {name: ratio * unit for name, ratio in ratios.items()}


def measure(batch: int, device: torch.device) -> list[tuple[str, str, str, float, float]]:
    """The model's own forward and forward+backward per sample, then one row per method:
    (forward ms/sample, fwd+bwd ms/sample, name, x forward, x forward+backward)."""
    inputs, _ = toy_views(batch, relevant=(0,), seed=7)
    inputs = tuple(x.to(device) for x in inputs)
    background, _ = toy_views(16, relevant=(0,), seed=8)
    background = tuple(x.to(device) for x in background)
    ibn, vbn = model_for("ibn", device), model_for("vbn", device)
    parameters = [p for p in ibn.parameters() if p.requires_grad]

    def forward():
        with torch.no_grad():
            return ibn(*inputs)

    exact_ibn = TensorFusionDisentangle(ibn, ibn.fusion, ibn.head)
    exact_vbn = TensorFusionDisentangle(vbn, vbn.fusion, vbn.head)
    sampled = ModalityInteractions(ibn)
    seconds = interleaved(
        {
            "the model's own forward": forward,
            "the model's own forward+backward": lambda: torch.autograd.grad(
                ibn(*inputs).sum(), parameters
            ),
            "TensorFusionDisentangle (IBN, running statistics)": lambda: exact_ibn.attribute(
                inputs, target=0
            ),
            "TensorFusionDisentangle (VBN, 16 baseline rows)": lambda: exact_vbn.attribute(
                inputs, target=0, baselines=background
            ),
            "ModalityInteractions (16 background rows)": lambda: sampled.attribute(
                inputs, baselines=background, target=0
            ),
        }
    )
    unit_forward = seconds["the model's own forward"]
    unit_backward = seconds["the model's own forward+backward"]
    per_sample = (f"{unit_forward / batch * 1e3:.3f}", f"{unit_backward / batch * 1e3:.3f}")
    return [
        (*per_sample, name, value / unit_forward, value / unit_backward)
        for name, value in seconds.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("toy tensor-fusion classifier: 3 views of 100 symbols, conv encoders, d = 4, D = 125\n")
    print("| batch | forward ms/sample | fwd+bwd ms/sample | method | x forward | x fwd+bwd |")
    print("| ---: | ---: | ---: | --- | ---: | ---: |")
    for batch in args.batch_sizes:
        for forward, backward, name, ratio, ratio_backward in measure(batch, device):
            cells = [str(batch), forward, backward, name, f"{ratio:.2f}", f"{ratio_backward:.2f}"]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

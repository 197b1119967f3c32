"""Cost of CoAttentionRelevancy and the attention baselines on an LXMERT.

Run: ``python benchmarks/bench_lxmert.py [--device cuda]``. For batch 1 and 32: each
method's time as a multiple of the model's own forward+backward (goal for
CoAttentionRelevancy: at most 1.3x), and the per-sample gain of one batch of 32 over 32
calls at batch 1, next to the same gain for the model's own forward+backward. The model
is a random-init LXMERT of the shipped size (the cost does not depend on the weights).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import median_seconds

from captum_multimodal import (
    AttentionGradCAM,
    AttentionRollout,
    CoAttentionRelevancy,
    LxmertAdapter,
    RawAttention,
)
from captum_multimodal.models.lxmert import build_lxmert, grid_boxes, lxmert_answer, lxmert_config


def batch_of(size: int, config: dict, device: torch.device) -> tuple[tuple, tuple]:
    generator = torch.Generator().manual_seed(size)
    ids = torch.randint(4, config["vocab_size"], (size, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[size // 2 :, 7:] = 0  # half the batch padded
    feats = torch.rand(size, 16, config["visual_feat_dim"], generator=generator)
    boxes = grid_boxes().expand(size, -1, -1)
    box_mask = torch.ones(size, 16, dtype=torch.long)
    inputs = (ids.to(device), feats.to(device), boxes.to(device))
    return inputs, (mask.to(device), box_mask.to(device))


def forward_backward(model: torch.nn.Module, inputs: tuple, extra: tuple):
    """The model's own forward and backward (to the visual features) for its argmax."""

    def run():
        ids, feats, boxes = inputs
        feats = feats.detach().requires_grad_()
        logits = lxmert_answer(model, ids, feats, boxes, *extra)
        return torch.autograd.grad(logits.max(dim=1).values.sum(), feats)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = lxmert_config()
    torch.manual_seed(0)
    model = build_lxmert(**config).to(device).eval()
    adapter = LxmertAdapter(model)
    methods = {
        "CoAttentionRelevancy": CoAttentionRelevancy(adapter),
        "RawAttention": RawAttention(adapter),
        "AttentionRollout": AttentionRollout(adapter),
        "AttentionGradCAM": AttentionGradCAM(adapter),
    }
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"LXMERT l/r/x = {config['l_layers']}/{config['r_layers']}/{config['x_layers']}, "
        f"hidden {config['hidden_size']}, 9 text tokens + 16 boxes\n"
    )
    print("| method | x fwd+bwd, batch 1 | x fwd+bwd, batch 32 | batch 32 vs 32 x batch 1 |")
    print("| --- | ---: | ---: | ---: |")
    small, large = batch_of(1, config, device), batch_of(32, config, device)
    singles = [batch_of(1, config, device) for _ in range(32)]
    unit_small = median_seconds(forward_backward(model, *small))
    unit_large = median_seconds(forward_backward(model, *large))
    loop = median_seconds(lambda: [forward_backward(model, *s)() for s in singles])
    print(f"| the model's own fwd+bwd | 1.00 | 1.00 | {loop / unit_large:.1f}x |")
    for name, method in methods.items():

        def call(batch, method=method):
            return method.attribute(batch[0], additional_forward_args=batch[1])

        ratio_small = median_seconds(lambda: call(small)) / unit_small
        batched = median_seconds(lambda: call(large))
        loop = median_seconds(lambda: [call(s) for s in singles])
        print(
            f"| {name} | {ratio_small:.2f} | {batched / unit_large:.2f} | {loop / batched:.1f}x |"
        )


if __name__ == "__main__":
    main()

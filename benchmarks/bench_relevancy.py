"""Cost of CoAttentionRelevancy and the attention baselines on a VisualBERT.

Run: ``python benchmarks/bench_relevancy.py [--device cuda]``. For batch 1 and 32: each
method's time as a multiple of the model's own forward+backward (goal for
CoAttentionRelevancy: at most 1.3x), and the per-sample cost of one batch of 32 against
32 calls at batch 1 (goal: at least 3x better), next to the same gain for the model's own
forward+backward.
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
    RawAttention,
    VisualBertAdapter,
)
from captum_multimodal.models.visual_bert import (
    build_visual_bert,
    visual_bert_answer,
    visual_bert_config,
)


def batch_of(size: int, config: dict, device: torch.device) -> tuple[tuple, tuple]:
    generator = torch.Generator().manual_seed(size)
    ids = torch.randint(4, config["vocab_size"], (size, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[size // 2 :, 7:] = 0  # half the batch padded
    visual = torch.rand(size, 16, config["visual_embedding_dim"], generator=generator)
    visual_mask = torch.ones(size, 16, dtype=torch.long)
    return (ids.to(device), visual.to(device)), (mask.to(device), visual_mask.to(device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = visual_bert_config()
    torch.manual_seed(0)
    model = build_visual_bert(**config).to(device).eval()
    adapter = VisualBertAdapter(model)
    methods = {
        "CoAttentionRelevancy": CoAttentionRelevancy(adapter),
        "RawAttention": RawAttention(adapter),
        "AttentionRollout": AttentionRollout(adapter),
        "AttentionGradCAM": AttentionGradCAM(adapter),
    }

    def forward_backward(inputs, extra):
        def run():
            (ids, visual), (mask, visual_mask) = inputs, extra
            visual = visual.detach().requires_grad_()
            logits = visual_bert_answer(model, ids, visual, mask, visual_mask)
            return torch.autograd.grad(logits.max(dim=1).values.sum(), visual)

        return run

    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"VisualBERT {config['num_hidden_layers']} layers, hidden {config['hidden_size']}, "
        "9 text + 16 visual tokens\n"
    )
    print("| method | x fwd+bwd, batch 1 | x fwd+bwd, batch 32 | batch 32 vs 32 x batch 1 |")
    print("| --- | ---: | ---: | ---: |")
    small, large = batch_of(1, config, device), batch_of(32, config, device)
    singles = [batch_of(1, config, device) for _ in range(32)]
    unit_small = median_seconds(forward_backward(*small))
    unit_large = median_seconds(forward_backward(*large))
    loop = median_seconds(lambda: [forward_backward(*s)() for s in singles])
    print(f"| the model's own fwd+bwd | 1.00 | 1.00 | {loop / unit_large:.1f}x |")
    for name, method in methods.items():

        def call(batch, method=method):
            return method.attribute(batch[0], additional_forward_args=batch[1])

        ratio_small = median_seconds(lambda: call(small)) / unit_small
        ratio_large = median_seconds(lambda: call(large)) / unit_large
        loop = median_seconds(lambda: [call(s) for s in singles])
        batched = median_seconds(lambda: call(large))
        print(f"| {name} | {ratio_small:.2f} | {ratio_large:.2f} | {loop / batched:.1f}x |")


if __name__ == "__main__":
    main()

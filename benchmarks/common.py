"""Shared timing helpers: every figure is a ratio to the model's own forward+backward."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils import benchmark


def median_seconds(function: Callable[[], object], min_run_time: float = 1.0) -> float:
    """Median wall time of ``function`` by ``torch.utils.benchmark`` (warm-up included)."""
    function()
    timer = benchmark.Timer(stmt="function()", globals={"function": function})
    return timer.blocked_autorange(min_run_time=min_run_time).median


def forward_backward(model: torch.nn.Module, image, args, target) -> Callable[[], object]:
    """One forward and one backward to the image: the unit every ratio is measured in."""

    def run():
        x = image.detach().requires_grad_()
        logits = model(x, *args)
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
        return grad

    return run

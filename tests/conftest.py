import pytest
import torch

from captum_multimodal.datasets import ANSWERS, SyntheticVQA, Vocabulary, collate_vqa
from captum_multimodal.models import MLB


@pytest.fixture
def tiny_mlb() -> MLB:
    """A small random MLB in eval mode, on the synthetic vocabulary and answers."""
    torch.manual_seed(0)
    return MLB(
        vocab_size=len(Vocabulary()),
        num_answers=len(ANSWERS),
        embedding_dim=8,
        question_dim=12,
        attention_dim=10,
        joint_dim=16,
    ).eval()


@pytest.fixture
def batch() -> dict:
    """Eight synthetic examples with questions of different lengths (padding present)."""
    data = SyntheticVQA(8, seed=11)
    return collate_vqa([data[i] for i in range(8)])


def _model_state(model: torch.nn.Module) -> dict:
    return {
        "hooks": [
            (
                len(m._forward_hooks),
                len(m._forward_pre_hooks),
                len(m._backward_hooks),
                len(m._backward_pre_hooks),
            )
            for m in model.modules()
        ],
        "tensor hooks": [bool(p._backward_hooks) for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "attention": getattr(getattr(model, "config", None), "_attn_implementation", None),
        "values": [t.detach().clone() for t in (*model.parameters(), *model.buffers())],
    }


class ModelState:
    """What an attribution must leave unchanged: module and tensor hooks, modes, flags,
    attention implementation, parameters and buffers; and no ``.grad`` written."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.before = _model_state(model)

    def assert_unchanged(self) -> None:
        after = _model_state(self.model)
        for key in ("hooks", "tensor hooks", "modes", "requires_grad", "attention"):
            assert self.before[key] == after[key], f"{key} changed"
        values = zip(self.before["values"], after["values"], strict=True)
        assert all(torch.equal(a, b) for a, b in values), "parameters or buffers changed"
        assert all(p.grad is None for p in self.model.parameters()), ".grad was written"


@pytest.fixture
def model_state():
    """Call with a model to snapshot it; ``.assert_unchanged()`` compares with the snapshot."""
    return ModelState

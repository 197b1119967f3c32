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


def _model_state(model: torch.nn.Module) -> tuple:
    hooks = sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(m._backward_pre_hooks)
        for m in model.modules()
    )
    return (
        hooks,
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [t.detach().clone() for t in (*model.parameters(), *model.buffers())],
    )


class ModelState:
    """What an attribution must leave unchanged: hooks, modes, flags, parameters and buffers."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.before = _model_state(model)

    def assert_unchanged(self) -> None:
        after = _model_state(self.model)
        assert self.before[0] == after[0], "hooks were left on the model"
        assert self.before[1] == after[1], "train/eval mode changed"
        assert self.before[2] == after[2], "requires_grad flags changed"
        assert all(torch.equal(a, b) for a, b in zip(self.before[3], after[3], strict=True))


@pytest.fixture
def model_state():
    """Call with a model to snapshot it; ``.assert_unchanged()`` compares with the snapshot."""
    return ModelState

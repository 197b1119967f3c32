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

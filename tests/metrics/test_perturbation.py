import pytest
import torch

from captum_multimodal.metrics import PERTURBATION_STEPS, perturbation_curve


def test_curve_and_area_by_hand():
    # sample 0 is answered right while token 2 is kept; sample 1 while token 0 is kept
    relevance = torch.tensor([[0.1, 0.2, 0.9, 0.4], [0.3, 0.8, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, True], [True, True, False, False]])
    labels = torch.tensor([1, 1])

    def predict(keep):
        return torch.stack([keep[0, 2], keep[1, 0]]).long()

    steps = [0.0, 0.5, 1.0]
    # most relevant first: step .5 removes token 2 (of 4) and token 1 (of 2) -> [0, 1]
    accuracy, area = perturbation_curve(predict, relevance, labels, valid, True, steps)
    assert accuracy.tolist() == [1.0, 0.5, 0.0]
    assert area == pytest.approx(0.5 * (1.0 + 0.5) / 2 + 0.5 * (0.5 + 0.0) / 2)
    # least relevant first: step .5 removes tokens 0, 3 and token 0 (padding never) -> [1, 0]
    accuracy, _ = perturbation_curve(predict, relevance, labels, valid, False, steps)
    assert accuracy.tolist() == [1.0, 0.5, 0.0]


def test_default_steps_and_errors():
    assert (
        PERTURBATION_STEPS[0] == 0 and PERTURBATION_STEPS[-1] == 1 and len(PERTURBATION_STEPS) == 9
    )
    with pytest.raises(ValueError, match="relevance"):
        perturbation_curve(lambda k: k[:, 0], torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        perturbation_curve(lambda k: k[:, 0], torch.zeros(2, 3), torch.zeros(3))

import torch

from captum_multimodal.datasets import add_special_tokens
from captum_multimodal.models import load_pretrained
from captum_multimodal.models.visual_bert import GRID, grid_features


def test_special_tokens_wrap_each_question():
    question = torch.tensor([[9, 8, 7], [9, 8, 0]])
    ids, mask = add_special_tokens(question, (question != 0).long())
    assert ids.tolist() == [[2, 9, 8, 7, 3], [2, 9, 8, 3, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]


def test_grid_features_are_the_pooled_backbone_map():
    backbone = load_pretrained("mlb").backbone
    images = torch.rand(2, 3, 64, 64)
    tokens = grid_features(images, backbone)
    with torch.no_grad():
        full = backbone(images)  # (2, 64, 8, 8)
    cell = full[:, :, 2:4, 4:6].mean(dim=(2, 3))  # the token of grid row 1, column 2
    torch.testing.assert_close(tokens[:, 1 * GRID + 2], cell)
    assert tokens.shape == (2, GRID * GRID, 64)


def test_shipped_visual_bert_answers_fresh_questions():
    from captum_multimodal.datasets import SyntheticVQA, collate_vqa
    from captum_multimodal.models import shipped_metrics
    from captum_multimodal.models.training import evaluate_visual_bert

    model = load_pretrained("visual_bert")
    assert type(model).__name__ == "VisualBertForQuestionAnswering" and not model.training
    data = SyntheticVQA(400, seed=1234)  # neither the training nor the held-out seed
    batch = collate_vqa([data[i] for i in range(len(data))])
    metrics = evaluate_visual_bert(model, load_pretrained("mlb").backbone, batch)
    assert metrics["accuracy"] >= 0.9
    assert abs(metrics["accuracy"] - shipped_metrics("visual_bert")["accuracy"]) < 0.05

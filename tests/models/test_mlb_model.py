import pytest
import torch

from captum_multimodal.datasets import SyntheticVQA, collate_vqa
from captum_multimodal.models import (
    MLB,
    load_checkpoint,
    load_pretrained,
    save_checkpoint,
    shipped_metrics,
    torchvision_trunk,
)
from captum_multimodal.models.training import default_mlb_config, evaluate


def test_batched_forward_equals_per_sample_forward(tiny_mlb, batch):
    logits = tiny_mlb(batch["image"], batch["question"], batch["attention_mask"])
    assert logits.shape == (8, tiny_mlb.classifier.out_features)
    for b in range(8):
        n = int(batch["attention_mask"][b].sum())
        single = tiny_mlb(batch["image"][b : b + 1], batch["question"][b : b + 1, :n])
        torch.testing.assert_close(logits[b : b + 1], single, rtol=1e-4, atol=1e-5)


def test_extra_padding_changes_nothing(tiny_mlb, batch):
    padded_q = torch.nn.functional.pad(batch["question"], (0, 3))
    padded_m = torch.nn.functional.pad(batch["attention_mask"], (0, 3))
    torch.testing.assert_close(
        tiny_mlb(batch["image"], padded_q, padded_m),
        tiny_mlb(batch["image"], batch["question"], batch["attention_mask"]),
    )


def test_question_vector_is_the_gru_state_after_the_last_word(tiny_mlb, batch):
    encoder = tiny_mlb.question_encoder
    q = encoder(batch["question"], batch["attention_mask"])
    for b in range(8):
        n = int(batch["attention_mask"][b].sum())
        _, last = encoder.rnn(encoder.embedding(batch["question"][b : b + 1, :n]))
        torch.testing.assert_close(q[b], last[0, 0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (lambda i, q, m: (i.long(), q, m), "image"),
        (lambda i, q, m: (i[0], q, m), "image"),
        (lambda i, q, m: (i, q.float(), m), "question"),
        (lambda i, q, m: (i[:3], q, m), "batch size"),
        (lambda i, q, m: (i, q, m[:, :-1]), "attention_mask"),
        (lambda i, q, m: (i, q, torch.cat([torch.zeros_like(m[:1]), m[1:]])), "no real tokens"),
        (lambda i, q, m: (i, q, m.flip(1)), "right-padded"),
    ],
)
def test_bad_input_is_named(tiny_mlb, batch, change, name):
    inputs = change(batch["image"], batch["question"], batch["attention_mask"])
    with pytest.raises(ValueError, match=name):
        tiny_mlb(*inputs)


def test_checkpoint_round_trip(tiny_mlb, batch, tmp_path):
    config = default_mlb_config() | {"embedding_dim": 8, "question_dim": 12}
    config |= {"attention_dim": 10, "joint_dim": 16}
    save_checkpoint(tiny_mlb, tmp_path / "m.pt", config, {"accuracy": 0.5})
    loaded = load_checkpoint("mlb", tmp_path / "m.pt")
    assert not loaded.training
    args = (batch["image"], batch["question"], batch["attention_mask"])
    torch.testing.assert_close(loaded(*args), tiny_mlb(*args))


def test_shipped_mlb_answers_fresh_questions():
    model = load_pretrained("mlb")
    assert isinstance(model, MLB) and not model.training
    assert (
        default_mlb_config().items()
        <= {
            "vocab_size": model.question_encoder.embedding.num_embeddings,
            "num_answers": model.classifier.out_features,
        }.items()
    )
    data = SyntheticVQA(400, seed=1234)  # a seed used neither in training nor for the README figure
    metrics = evaluate(model, collate_vqa([data[i] for i in range(len(data))]))
    assert metrics["accuracy"] >= 0.9
    assert abs(metrics["accuracy"] - shipped_metrics("mlb")["accuracy"]) < 0.05


def test_unknown_model_names():
    with pytest.raises(ValueError, match="name"):
        load_pretrained("vqa-9000")


def test_torchvision_trunk_is_optional():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install torchvision"):
            torchvision_trunk("resnet18")
        return
    model = MLB(vocab_size=25, num_answers=16, backbone=torchvision_trunk("resnet18")).eval()
    out = model(torch.rand(1, 3, 64, 64), torch.tensor([[5, 6, 7]]))
    assert out.shape == (1, 16)


def test_backbone_without_channels_needs_feature_channels():
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    with pytest.raises(ValueError, match="feature_channels"):
        MLB(vocab_size=5, num_answers=3, backbone=backbone)
    model = MLB(vocab_size=5, num_answers=3, backbone=backbone, feature_channels=4)
    assert model(torch.rand(1, 3, 10, 10), torch.tensor([[1, 2]])).shape == (1, 3)

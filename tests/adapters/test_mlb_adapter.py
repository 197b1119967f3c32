import pytest
import torch
from torch import nn

from captum_multimodal.adapters import MLBAdapter
from captum_multimodal.nn import Hadamard


def _hook_counts(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_reference_sites_are_on_the_path_to_the_answer(tiny_mlb, batch):
    sites = MLBAdapter(tiny_mlb).sites
    seen = {}
    handles = [
        module.register_forward_hook(lambda m, i, o, key=key: seen.__setitem__(key, o))
        for key, module in vars(sites).items()
    ]
    logits = tiny_mlb(batch["image"], batch["question"], batch["attention_mask"])
    for handle in handles:
        handle.remove()
    q = tiny_mlb.question_encoder(batch["question"], batch["attention_mask"])
    torch.testing.assert_close(seen["textual"], torch.tanh(tiny_mlb.fusion.textual[0](q)))
    torch.testing.assert_close(seen["fusion"], seen["textual"] * seen["visual"])
    torch.testing.assert_close(tiny_mlb.classifier(seen["fusion"]), logits)
    assert seen["embedding"].shape == (*batch["question"].shape, 8)
    assert seen["conv"].shape == (8, 64, 8, 8) and sites.conv is tiny_mlb.backbone[-3]
    torch.testing.assert_close(seen["attention"].sum(dim=(2, 3)), torch.ones(8, 2))


def test_attention_maps_leave_no_hook(tiny_mlb, batch):
    adapter = MLBAdapter(tiny_mlb)
    before = _hook_counts(tiny_mlb)
    alpha = adapter.attention_maps(batch["image"], batch["question"], batch["attention_mask"])
    assert alpha.shape == (8, 2, 8, 8)
    assert _hook_counts(tiny_mlb) == before


class OwnModel(nn.Module):
    """A user's Hadamard-fusion model with names of its own and no attention."""

    def __init__(self):
        super().__init__()
        self.words = nn.Embedding(10, 4)
        self.q_proj = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.v_proj = nn.Sequential(nn.Linear(5, 6), nn.Tanh())
        self.product = Hadamard()
        self.head = nn.Linear(6, 3)

    def forward(self, image, question, attention_mask=None):
        q = self.q_proj(self.words(question).mean(1))
        return self.head(self.product(q, self.v_proj(self.cnn(image))))


def test_own_model_takes_modules_and_names():
    model = OwnModel()
    adapter = MLBAdapter(
        model,
        textual_layer="q_proj",
        visual_layer=model.v_proj,
        embedding_layer="words",
        fusion_layer=model.product,
        conv_layer="cnn.0",
    )
    assert adapter.sites.textual is model.q_proj and adapter.sites.visual is model.v_proj
    assert adapter.sites.conv is model.cnn[0] and adapter.sites.attention is None
    with pytest.raises(ValueError, match="attention_layer"):
        adapter.attention_maps(torch.rand(1, 3, 8, 8), torch.tensor([[1, 2]]))


def test_own_model_missing_sites_are_named():
    with pytest.raises(ValueError, match="textual_layer, visual_layer, embedding_layer"):
        MLBAdapter(OwnModel())


def test_bad_sites(tiny_mlb):
    with pytest.raises(ValueError, match="textual_layer"):
        MLBAdapter(tiny_mlb, textual_layer=nn.Linear(2, 2))
    with pytest.raises(ValueError, match="visual_layer"):
        MLBAdapter(tiny_mlb, visual_layer="fusion.nothing")
    with pytest.raises(TypeError, match="embedding_layer"):
        MLBAdapter(tiny_mlb, embedding_layer=3)
    with pytest.raises(TypeError, match="model"):
        MLBAdapter("not a model")


def test_forward_arguments_feed_the_model(tiny_mlb, batch):
    inputs, args = MLBAdapter.forward_arguments(batch)
    assert inputs[0] is batch["image"] and args == (batch["question"], batch["attention_mask"])
    assert tiny_mlb(*inputs, *args).shape[0] == 8

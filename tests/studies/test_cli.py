import subprocess
import sys

import matplotlib.image
import pytest
import torch

from captum_multimodal.datasets import SyntheticVQA, collate_vqa
from captum_multimodal.models import load_checkpoint, load_pretrained
from captum_multimodal.studies.cli import main
from captum_multimodal.studies.demo import run_demo


@pytest.mark.parametrize(
    "argv", [["--help"], ["demo", "--help"], ["train", "--help"], ["study", "--help"]]
)
def test_help_explains_the_subcommands(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "demo" in text or "train" in text or "study" in text
    if argv == ["--help"]:
        assert "demo" in text and "train" in text


def test_demo_studies_every_shipped_model_and_scores_saliency_as_by_hand(tmp_path):
    summaries = run_demo(tmp_path, n_examples=8, seed=5, progress=False)
    assert set(summaries) == {"mlb", "visual_bert", "lxmert", "clip"}
    mlb_methods = {row["method"] for row in summaries["mlb"]}
    assert {
        "HadamardDeviation",
        "Saliency",
        "GuidedBackprop",
        "IntegratedGradients",
        "LayerGradCam",
        "QuestionMaskedGradCAM (n=5)",
    } <= mlb_methods
    for name in ("visual_bert", "lxmert"):
        assert {row["method"] for row in summaries[name]} == {
            "CoAttentionRelevancy",
            "RawAttention",
            "AttentionRollout",
            "AttentionGradCAM",
        }

    model = load_pretrained("mlb")
    data = SyntheticVQA(8, seed=5)
    batch = collate_vqa([data[i] for i in range(8)])
    image = batch["image"].clone().requires_grad_()
    logits = model(image, batch["question"], batch["attention_mask"])
    target = logits.argmax(dim=1)
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), image)
    peak = grad.abs().sum(dim=1).flatten(1).argmax(dim=1)
    referred = batch["has_referent"]
    hits = batch["mask"].flatten(1).gather(1, peak[:, None])[:, 0][referred].float()
    (saliency,) = [
        r for r in summaries["mlb"] if r["method"] == "Saliency" and r["metric"] == "pointing_game"
    ]
    assert saliency["mean"] == pytest.approx(hits.mean().item())
    assert saliency["n"] == int(referred.sum())

    text = (tmp_path / "summary.md").read_text()
    assert "## MLB" in text and "## VisualBERT" in text and "| Saliency |" in text
    assert "## CLIP" in text and "## LXMERT" in text and "## Tensor fusion" in text
    assert (tmp_path / "tensor_fusion" / "shares.png").exists()
    for model_name in ("mlb", "visual_bert", "lxmert", "clip"):
        curves = ("curves.png",) if model_name != "clip" else ()  # CLIP's metrics have none
        for figure in ("summary.png", "examples.png", *curves):
            picture = read_image(tmp_path / model_name / figure)
            assert picture.shape[0] > 200 and picture[..., :3].std() > 0.05


def read_image(path):
    return matplotlib.image.imread(path)


def test_command_line_runs_as_a_module(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "captum_multimodal.studies",
            "demo",
            "--out",
            str(out),
            "--examples",
            "4",
            "--models",
            "mlb",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| HadamardDeviation |" in result.stdout
    assert (out / "mlb" / "results.csv").exists()


def test_train_writes_a_loadable_checkpoint(tmp_path, capsys):
    path = tmp_path / "mlb.pt"
    main(
        [
            "train",
            "mlb",
            "--out",
            str(path),
            "--steps",
            "2",
            "--images",
            "40",
            "--eval-size",
            "16",
            "--quiet",
        ]
    )
    assert "accuracy" in capsys.readouterr().out
    checkpoint = torch.load(path, weights_only=True)
    assert 0 <= checkpoint["metrics"]["accuracy"] <= 1
    assert not load_checkpoint("mlb", path).training


def test_counts_must_be_positive():
    with pytest.raises(SystemExit):
        main(["demo", "--examples", "0"])


def test_train_visual_bert_writes_a_loadable_checkpoint(tmp_path, capsys):
    path = tmp_path / "vb.pt"
    main(
        [
            "train",
            "visual_bert",
            "--out",
            str(path),
            "--steps",
            "2",
            "--images",
            "16",
            "--eval-size",
            "8",
            "--quiet",
        ]
    )
    assert "accuracy" in capsys.readouterr().out
    model = load_checkpoint("visual_bert", path)
    assert type(model).__name__ == "VisualBertForQuestionAnswering" and not model.training

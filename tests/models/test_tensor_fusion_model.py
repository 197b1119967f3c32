import copy
import csv

import matplotlib.image
import pytest
import torch

from captum_multimodal.models import (
    TensorFusionClassifier,
    run_tensor_fusion_toy,
    toy_classifier,
    toy_views,
)
from captum_multimodal.models.tensor_fusion import MOTIF_LENGTH
from captum_multimodal.nn import IterativeBatchNorm, TensorFusion, VectorBatchNorm
from captum_multimodal.studies.cli import main


def contains(sequences, motif):
    """Whether each row contains ``motif`` as a contiguous run, by sliding windows."""
    windows = sequences.unfold(1, len(motif), 1)
    return (windows == motif).all(dim=2).any(dim=1)


def test_toy_views_labels_are_the_xor_of_motif_presence():
    views, label = toy_views(400, relevant=(0, 2), seed=3)
    assert len(views) == 3 and all(v.shape == (400, 100) for v in views)
    assert all(v.min() >= 0 and v.max() <= 3 for v in views)
    # the motif of a view: the window shared by every sample with the motif
    present = []
    for view in views:
        windows = view.unfold(1, MOTIF_LENGTH, 1).reshape(-1, MOTIF_LENGTH)
        values, counts = torch.unique(windows, dim=0, return_counts=True)
        motif = values[counts.argmax()]
        assert counts.max() > 150  # about half the samples carry it
        present.append(contains(view, motif))
    assert torch.equal(label.bool(), present[0] ^ present[2])
    assert 0.3 < present[1].float().mean() < 0.7
    again, _ = toy_views(400, relevant=(0, 2), seed=3)
    assert all(torch.equal(a, b) for a, b in zip(views, again, strict=True))


@pytest.mark.parametrize(
    ("normalization", "fusion", "norm"),
    [
        ("none", TensorFusion, torch.nn.Identity),
        ("vbn", TensorFusion, VectorBatchNorm),
        ("ibn", IterativeBatchNorm, torch.nn.Identity),
    ],
)
def test_classifier_structure(normalization, fusion, norm):
    model = toy_classifier(normalization)
    assert type(model.fusion) is fusion and all(type(n) is norm for n in model.norms)
    (a, b, c), _ = toy_views(5, relevant=(0,))
    assert model(a, b, c).shape == (5, 1)
    assert model.head.in_features == 125


def test_eval_uses_running_statistics_and_switching_changes_nothing():
    torch.manual_seed(0)
    model = toy_classifier("ibn")
    (a, b, c), _ = toy_views(32, relevant=(0,))
    model(a, b, c)  # one training step of statistics
    before = copy.deepcopy(model.state_dict())
    model.eval().train().eval()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        evaluated = model(a[:4], b[:4], c[:4])  # eval: no batch statistics, per-sample result
        one_by_one = torch.cat([model(a[i : i + 1], b[i : i + 1], c[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(evaluated, one_by_one)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        trained = model.train()(a[:4], b[:4], c[:4])
    assert not torch.allclose(trained, evaluated)


def test_bad_arguments():
    with pytest.raises(ValueError, match="normalization"):
        TensorFusionClassifier([torch.nn.Linear(2, 2)], [2], 1, normalization="bn")
    with pytest.raises(ValueError, match="encoders and dims"):
        TensorFusionClassifier([torch.nn.Linear(2, 2)], [2, 2], 1)
    with pytest.raises(ValueError, match="relevant"):
        toy_views(3, relevant=(3,))
    with pytest.raises(ValueError, match="n_train"):
        run_tensor_fusion_toy("unused", n_train=1)


def test_short_toy_run_writes_the_table_and_the_chart(tmp_path):
    """A few seconds: view 1 alone decides the label. The centred shares must find view 1
    for every normaliser (the full run's degree inflation is measured, not asserted)."""
    rows = run_tensor_fusion_toy(
        tmp_path, datasets=["1"], n_train=1000, n_test=300, epochs=8, progress=False
    )
    assert [(r["normalization"], r["quantity"]) for r in rows] == [
        (n, q) for n in ("none", "vbn", "ibn") for q in ("beta", "raw share", "share")
    ]
    subsets = ["1", "2", "3", "12", "13", "23", "123"]
    for row in rows:
        values = torch.tensor([row[s] for s in subsets])
        assert abs(values.sum() - 1) < 1e-4 and values.min() >= 0  # p = 1: betas sum to 1
        assert row["accuracy"] > 0.85
        if row["quantity"] == "share" or (
            row["normalization"] == "ibn" and row["quantity"] != "beta"
        ):
            assert row["1"] > 0.6 and values.argmax() == 0
    with open(tmp_path / "table.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 9
    assert "| 1 | ibn |" in (tmp_path / "table.md").read_text()
    for chart in ("beta.png", "shares.png"):
        assert matplotlib.image.imread(tmp_path / chart).shape[0] > 100


def test_cli_subcommand(tmp_path, capsys):
    code = main(
        [
            "tensor-fusion-toy",
            "--out",
            str(tmp_path),
            "--datasets",
            "12",
            "--train",
            "128",
            "--test",
            "64",
            "--epochs",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    assert "| 12 | none |" in capsys.readouterr().out
    assert (tmp_path / "shares.png").exists()
    with pytest.raises(SystemExit):
        main(["tensor-fusion-toy", "--epochs", "0"])

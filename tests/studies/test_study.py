"""The study runner: end to end on a tiny study, kill-and-resume, and the config path."""

import csv
import math
import statistics

import pyarrow.parquet
import pytest
import torch

from captum_multimodal.datasets import SyntheticVQA, collate_vqa
from captum_multimodal.studies import zoo
from captum_multimodal.studies.cli import main
from captum_multimodal.studies.config import load_study
from captum_multimodal.studies.study import Method, Metric, Study, run_study


def tiny_study(model, methods=("Saliency", "HadamardDeviation"), size=10):
    return Study(
        name="tiny",
        subject=zoo.MLBSubject(model),
        dataset=SyntheticVQA(size, seed=4),
        methods=[zoo.method(name) for name in methods],
        metrics=[zoo.metric("pointing_game"), zoo.metric("key_token")],
        batch_size=4,
    )


def read(path, drop_seconds=True):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r for r in rows if not (drop_seconds and r["metric"] == "seconds")]


def test_tiny_study_end_to_end(tiny_mlb, tmp_path):
    summary = run_study(tiny_study(tiny_mlb), tmp_path, progress=False)
    rows = read(tmp_path / "results.csv", drop_seconds=False)
    metrics = {"pointing_game", "pointing_game_4px", "key_token_hit", "key_token_rank", "seconds"}
    # Saliency has no text part, so no key-token rows
    expected = 10 * len(metrics) + 10 * (len(metrics) - 2)
    assert len(rows) == expected
    assert len({(r["example"], r["method"], r["metric"]) for r in rows}) == expected

    # Saliency's pointing game, computed here with plain autograd
    data = SyntheticVQA(10, seed=4)
    batch = collate_vqa([data[i] for i in range(10)])
    image = batch["image"].clone().requires_grad_()
    logits = tiny_mlb(image, batch["question"], batch["attention_mask"])
    target = logits.argmax(dim=1)
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), image)
    peak = grad.abs().sum(dim=1).flatten(1).argmax(dim=1)
    hits = batch["mask"].flatten(1).gather(1, peak[:, None])[:, 0].float()
    stored = {
        int(r["example"]): float(r["value"])
        for r in rows
        if r["method"] == "Saliency" and r["metric"] == "pointing_game"
    }
    for i in range(10):
        if batch["has_referent"][i]:
            assert stored[i] == hits[i].item()
        else:
            assert math.isnan(stored[i])

    # the summary: mean and 1.96 standard errors of the defined values
    values = [v for v in stored.values() if not math.isnan(v)]
    (row,) = [r for r in summary if r["method"] == "Saliency" and r["metric"] == "pointing_game"]
    assert row["n"] == len(values)
    assert row["mean"] == pytest.approx(statistics.mean(values))
    assert row["ci95"] == pytest.approx(1.96 * statistics.stdev(values) / math.sqrt(len(values)))
    assert "| Saliency |" in (tmp_path / "summary.md").read_text()
    for name in ("summary.png", "examples.png", "manifest.json", "summary.csv"):
        assert (tmp_path / name).exists()
    table = pyarrow.parquet.read_table(tmp_path / "results.parquet").to_pylist()
    assert len(table) == expected
    assert [(r["example"], r["method"], r["metric"]) for r in table] == [
        (int(r["example"]), r["method"], r["metric"]) for r in rows
    ]


def test_killed_study_resumes_without_lost_or_repeated_rows(tiny_mlb, tmp_path):
    run_study(tiny_study(tiny_mlb), tmp_path / "straight", progress=False)

    calls = []
    explain = zoo.method("Saliency").explain

    def failing_on_third_chunk(subject, batch, target):
        calls.append(len(batch["answer"]))
        if len(calls) == 4:  # warm-up call, then chunks 0 and 1, then fail in chunk 2
            raise KeyboardInterrupt
        return explain(subject, batch, target)

    study = tiny_study(tiny_mlb)
    study.methods = [Method("Saliency", failing_on_third_chunk), study.methods[1]]
    with pytest.raises(KeyboardInterrupt):
        run_study(study, tmp_path / "resumed", progress=False)
    assert sorted(p.name for p in (tmp_path / "resumed" / "parts").glob("*.csv")) == [
        "chunk_000000.csv",
        "chunk_000001.csv",
    ]
    assert not list((tmp_path / "resumed" / "parts").glob(".*"))  # no half-written part

    calls.clear()
    run_study(study, tmp_path / "resumed", progress=False)
    # warm-up, the missing chunk (2 examples), then chunk 0 again, for the example figure only
    assert calls == [1, 2, 4]
    assert read(tmp_path / "resumed" / "results.csv") == read(tmp_path / "straight" / "results.csv")


def test_a_folder_of_another_study_is_not_resumed(tiny_mlb, tmp_path):
    run_study(tiny_study(tiny_mlb, size=6), tmp_path, progress=False)
    changed = tiny_study(tiny_mlb, size=6)
    changed.batch_size = 3  # chunk 1 would now mean other examples
    with pytest.raises(ValueError, match=r"another study \(differs in \['batch_size'\]\)"):
        run_study(changed, tmp_path, progress=False)
    with pytest.raises(ValueError, match="methods"):
        run_study(tiny_study(tiny_mlb, methods=("Saliency",), size=6), tmp_path, progress=False)


def test_two_metrics_reporting_one_name_are_refused(tiny_mlb, tmp_path):
    study = tiny_study(tiny_mlb, size=2)
    study.metrics = [zoo.metric("pointing_game"), Metric("again", zoo.METRICS["pointing_game"])]
    with pytest.raises(ValueError, match="already reported"):
        run_study(study, tmp_path, progress=False)


def test_config_file_gives_the_python_declarations_results(tiny_mlb, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo.subjects, "load_pretrained", lambda name, device="cpu": tiny_mlb)
    config = tmp_path / "study.toml"
    config.write_text(
        """
name = "tiny"
batch_size = 4
[subject]
factory = "captum_multimodal.studies.zoo:MLBSubject"
[dataset]
factory = "captum_multimodal.datasets:SyntheticVQA"
size = 10
seed = 4
[[methods]]
factory = "captum_multimodal.studies.zoo:method"
name = "Saliency"
[[methods]]
factory = "captum_multimodal.studies.zoo:method"
name = "HadamardDeviation"
[[metrics]]
factory = "captum_multimodal.studies.zoo:metric"
name = "pointing_game"
[[metrics]]
factory = "captum_multimodal.studies.zoo:metric"
name = "key_token"
"""
    )
    run_study(load_study(config), tmp_path / "from_config", progress=False)
    run_study(tiny_study(tiny_mlb), tmp_path / "from_python", progress=False)
    assert read(tmp_path / "from_config" / "results.csv") == read(
        tmp_path / "from_python" / "results.csv"
    )
    main(["study", str(config), "--out", str(tmp_path / "cli"), "--quiet"])
    assert read(tmp_path / "cli" / "results.csv") == read(tmp_path / "from_python" / "results.csv")


def test_bad_studies_and_configs_are_named(tiny_mlb, tmp_path):
    with pytest.raises(ValueError, match="methods"):
        Study("x", zoo.MLBSubject(tiny_mlb), SyntheticVQA(2), [], [zoo.metric("pointing_game")])
    with pytest.raises(ValueError, match="batch_size"):
        tiny_study(tiny_mlb).__class__(
            "x",
            zoo.MLBSubject(tiny_mlb),
            SyntheticVQA(2),
            [zoo.method("Saliency")],
            [zoo.metric("pointing_game")],
            batch_size=0,
        )
    with pytest.raises(ValueError, match="name must be one of"):
        zoo.method("Nope")
    with pytest.raises(ValueError, match="name must be one of"):
        zoo.metric("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('study = "captum_multimodal.studies.zoo:nothing_here"\n')
    with pytest.raises(ValueError, match="study: cannot import"):
        load_study(bad)
    bad.write_text("[subject]\nfactory = 'a:b'\n")
    with pytest.raises(ValueError, match="missing"):
        load_study(bad)
    with pytest.raises(ValueError, match="config must be an existing TOML file"):
        load_study(tmp_path / "absent.toml")

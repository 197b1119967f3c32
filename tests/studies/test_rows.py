"""A study over a Hugging Face datasets.Dataset (built locally) gives the rows of the same
study over the in-memory synthetic data."""

import csv

import datasets
import pytest
import torch

from captum_multimodal.datasets import SyntheticVQA
from captum_multimodal.studies import zoo
from captum_multimodal.studies.rows import RowDataset
from captum_multimodal.studies.study import Study, run_study

TENSORS = ("image", "question", "key_tokens", "answer", "mask")


def to_example(row):
    example = {key: torch.tensor(row[key]) for key in TENSORS}
    example["image"] = example["image"].float()
    example["key_tokens"] = example["key_tokens"].bool()
    example["mask"] = example["mask"].bool()
    for key in ("has_referent", "template", "question_text", "answer_text"):
        example[key] = row[key]
    example["objects"] = None
    return example


def study(data, tiny_mlb):
    return Study(
        name="rows",
        subject=zoo.MLBSubject(tiny_mlb),
        dataset=data,
        methods=[zoo.method("Saliency"), zoo.method("HadamardDeviation")],
        metrics=[zoo.metric("pointing_game"), zoo.metric("key_token")],
        batch_size=3,
    )


def read(path):
    with open(path, newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["metric"] != "seconds"]


def test_hugging_face_rows_give_the_same_study(tiny_mlb, tmp_path):
    synthetic = SyntheticVQA(7, seed=8)
    examples = [synthetic[i] for i in range(7)]
    columns = {
        key: [e[key].tolist() if isinstance(e[key], torch.Tensor) else e[key] for e in examples]
        for key in (*TENSORS, "has_referent", "template", "question_text", "answer_text")
    }
    table = datasets.Dataset.from_dict(columns)
    run_study(study(RowDataset(table, to_example), tiny_mlb), tmp_path / "hf", progress=False)
    run_study(study(synthetic, tiny_mlb), tmp_path / "direct", progress=False)
    assert read(tmp_path / "hf" / "results.csv") == read(tmp_path / "direct" / "results.csv")


def test_bad_rows_are_named():
    with pytest.raises(TypeError, match="rows"):
        RowDataset(3, to_example)
    with pytest.raises(TypeError, match="to_example must be callable"):
        RowDataset([], None)
    with pytest.raises(TypeError, match="to_example must return a dict"):
        RowDataset([1], lambda row: row)[0]

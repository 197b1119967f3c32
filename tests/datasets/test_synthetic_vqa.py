import numpy as np
import pytest
import torch

from captum_multimodal.datasets import (
    ANSWERS,
    COLORS,
    SHAPES,
    SyntheticVQA,
    SyntheticVQAPairs,
    Vocabulary,
    collate_pairs,
    collate_vqa,
)


def oracle(question: str, objects) -> tuple[str, int | None]:
    """The answer and referred object, derived from the words and the scene alone."""
    words = question.split()
    color = next((w for w in words if w in COLORS), None)
    shape = next((w for w in words if w in SHAPES), None)
    by_shape = {o.shape: i for i, o in enumerate(objects)}
    by_color = {o.color: i for i, o in enumerate(objects)}
    if question.startswith("what color is the"):
        return objects[by_shape[shape]].color, by_shape[shape]
    if question.startswith("what shape is the"):
        return objects[by_color[color]].shape, by_color[color]
    if question.startswith("how big is the"):
        return objects[by_shape[shape]].size, by_shape[shape]
    if question.startswith("is there a"):
        index = by_color.get(color)
        if index is not None and objects[index].shape == shape:
            return "yes", index
        return "no", None
    if question.startswith("is the"):
        index = by_color[color]
        return ("yes" if objects[index].shape == shape else "no"), index
    raise AssertionError(f"unexpected question {question!r}")


def test_same_seed_same_examples_and_other_seed_differs():
    a, b, c = SyntheticVQA(5, seed=7), SyntheticVQA(5, seed=7), SyntheticVQA(5, seed=8)
    for i in range(5):
        assert torch.equal(a[i]["image"], b[i]["image"])
        assert a[i]["question_text"] == b[i]["question_text"]
    assert not all(torch.equal(a[i]["image"], c[i]["image"]) for i in range(5))


def test_answers_masks_and_key_words_match_the_scene():
    data = SyntheticVQA(300, seed=3)
    vocab = Vocabulary()
    for i in range(len(data)):
        item = data[i]
        answer, referent = oracle(item["question_text"], item["objects"])
        assert ANSWERS[int(item["answer"])] == answer == item["answer_text"]
        assert item["has_referent"] == (referent is not None)
        assert vocab.decode(item["question"]) == item["question_text"].split()
        if referent is None:
            assert not item["mask"].any()
        else:
            # the mask is exactly the pixels painted in the referred object's colour
            color = torch.tensor(COLORS[item["objects"][referent].color])
            painted = (item["image"] == color[:, None, None]).all(dim=0)
            assert torch.equal(item["mask"], painted)
            assert item["mask"].sum() > 20
        words = item["question_text"].split()
        keys = [w for w, k in zip(words, item["key_tokens"].tolist(), strict=True) if k]
        if item["template"] in (0, 3):
            assert keys == [w for w in words if w in SHAPES]
        elif item["template"] in (1, 4):
            assert keys == [w for w in words if w in COLORS]
        else:
            assert set(keys) <= set(COLORS) | set(SHAPES) and keys[0] in COLORS


def test_every_answer_and_template_occurs_and_yes_no_are_balanced():
    data = SyntheticVQA(600, seed=0)
    answers = [data[i]["answer_text"] for i in range(len(data))]
    assert set(answers) == set(ANSWERS)
    yes, no = answers.count("yes"), answers.count("no")
    assert 0.7 < yes / no < 1.4


def test_collate_pads_right_and_masks_padding():
    data = SyntheticVQA(16, seed=1)
    items = [data[i] for i in range(16)]
    batch = collate_vqa(items)
    lengths = torch.tensor([len(x["question"]) for x in items])
    assert lengths.min() < lengths.max()  # the batch really has padding
    assert torch.equal(batch["attention_mask"].sum(1), lengths)
    for row, item in enumerate(items):
        n = len(item["question"])
        assert torch.equal(batch["question"][row, :n], item["question"])
        assert (batch["question"][row, n:] == Vocabulary.pad_id).all()
        assert not batch["key_tokens"][row, n:].any()
    assert batch["image"].shape == (16, 3, 64, 64)
    assert batch["mask"].dtype == torch.bool


def test_pairs_share_image_and_answer_but_not_the_object():
    pairs = SyntheticVQAPairs(40, seed=5)
    first, second = collate_pairs([pairs[i] for i in range(40)])
    assert torch.equal(first["image"], second["image"])
    assert torch.equal(first["answer"], second["answer"])
    assert first["mask"].flatten(1).any(1).all() and second["mask"].flatten(1).any(1).all()
    assert not (first["mask"] & second["mask"]).any()
    assert all(a != b for a, b in zip(first["question_text"], second["question_text"], strict=True))
    for batch in (first, second):
        for text, objects, answer in zip(
            batch["question_text"], batch["objects"], batch["answer_text"], strict=True
        ):
            assert oracle(text, objects)[0] == answer


def test_image_size_is_respected():
    item = SyntheticVQA(1, seed=0, image_size=96)[0]
    assert item["image"].shape == (3, 96, 96) and item["mask"].shape == (96, 96)
    assert float(item["image"].min()) >= 0 and float(item["image"].max()) <= 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"size": -1}, "size"), ({"size": 2.5}, "size"), ({"image_size": 16}, "image_size")],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticVQA(**kwargs)


def test_index_out_of_range_and_empty_collate():
    with pytest.raises(IndexError):
        SyntheticVQA(3)[3]
    with pytest.raises(ValueError, match="examples"):
        collate_vqa([])


def test_vocabulary_unknown_words():
    vocab = Vocabulary()
    assert vocab.encode("what colour is it")[1] == vocab.unk_id
    assert vocab.tokens[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert np.unique(vocab.tokens).size == len(vocab)


def test_examples_do_not_depend_on_the_process(tmp_path):
    """Set iteration order changes with PYTHONHASHSEED; the data must not."""
    import os
    import subprocess
    import sys

    script = (
        "from captum_multimodal.datasets import SyntheticVQA, SyntheticVQAPairs\n"
        "print([SyntheticVQA(40, seed=2)[i]['question_text'] for i in range(40)])\n"
        "print([p['question_text'] for i in range(10) for p in SyntheticVQAPairs(10, seed=2)[i]])\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1

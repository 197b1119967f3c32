"""Synthetic visual question answering with ground truth.

Every example is drawn from a seed: an RGB scene with three or four coloured
shapes (each colour and each shape at most once per scene, so a colour or a
shape names one object), a templated question, its answer, the pixel mask of
the object the question refers to and the position of the word(s) that
identify that object. Nothing is downloaded; the same seed and index always
give the same example.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from captum_multimodal.datasets.scenes import (
    COLORS,
    SHAPES,
    SceneObject,
    render_scene,
    sample_scene,
)

TEMPLATES: tuple[str, ...] = (
    "what color is the {shape} ?",
    "what shape is the {color} thing ?",
    "is there a {color} {shape} ?",
    "how big is the {shape} ?",
    "is the {color} thing a {shape} ?",
)
"""Question templates; the index of a template is the ``template`` field of an example."""

ANSWERS: tuple[str, ...] = (*COLORS, *SHAPES, "yes", "no", "small", "large")
"""Every answer the data can have; an answer's class index is its position here."""

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


class Vocabulary:
    """Word-level vocabulary of the synthetic questions.

    Index 0 is ``[PAD]``, 1 ``[UNK]``, 2 ``[CLS]`` and 3 ``[SEP]``; the words of
    every template, colour and shape follow in sorted order.

    Examples:
        >>> vocab = Vocabulary()
        >>> ids = vocab.encode("what color is the circle ?")
        >>> vocab.decode(ids)
        ['what', 'color', 'is', 'the', 'circle', '?']
    """

    def __init__(self) -> None:
        words = set(COLORS) | set(SHAPES)
        for template in TEMPLATES:
            words |= {w for w in template.split() if not w.startswith("{")}
        self.tokens: list[str] = [*SPECIAL_TOKENS, *sorted(words)]
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}

    pad_id = 0
    unk_id = 1

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Maps a whitespace-separated question to token ids (unknown words to ``[UNK]``)."""
        return [self.index.get(word, self.unk_id) for word in text.split()]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> list[str]:
        """Maps token ids back to words, dropping ``[PAD]``."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return [self.tokens[i] for i in ids if i != self.pad_id]


def add_special_tokens(
    question: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] question [SEP], right-padded: (B, T) ids and mask to (B, T + 2).

    Examples:
        >>> ids, mask = add_special_tokens(torch.tensor([[9, 8, 0]]), torch.tensor([[1, 1, 0]]))
        >>> ids.tolist(), mask.tolist()
        ([[2, 9, 8, 3, 0]], [[1, 1, 1, 1, 0]])
    """
    vocab = Vocabulary()
    batch = len(question)
    lengths = attention_mask.sum(dim=1)
    ids = torch.nn.functional.pad(question * attention_mask, (1, 1), value=vocab.pad_id)
    ids[:, 0] = vocab.index["[CLS]"]
    ids[torch.arange(batch), lengths + 1] = vocab.index["[SEP]"]
    mask = torch.nn.functional.pad(attention_mask, (1, 1))
    mask[:, 0] = 1
    mask[torch.arange(batch), lengths + 1] = 1
    return ids, mask


@dataclasses.dataclass(frozen=True)
class Question:
    """A question about a scene, its answer, the object it refers to and its key words.

    Examples:
        >>> question = scene_questions([SceneObject("circle", "red", "small", (8.0, 8.0))])[0]
        >>> question.text, question.answer, question.key_positions
        ('what color is the circle ?', 'red', (4,))
    """

    text: str
    answer: str
    template: int
    referent: int | None
    key_positions: tuple[int, ...]


def scene_questions(objects: Sequence[SceneObject]) -> list[Question]:
    """Every question the templates can ask about a scene, with answers and referents.

    Examples:
        >>> questions = scene_questions([SceneObject("cross", "blue", "large", (8.0, 8.0))])
        >>> [q.answer for q in questions if q.template == 1]
        ['cross']
    """
    questions = []
    colors = {o.color for o in objects}
    for i, obj in enumerate(objects):
        questions.append(Question(TEMPLATES[0].format(shape=obj.shape), obj.color, 0, i, (4,)))
        questions.append(Question(TEMPLATES[1].format(color=obj.color), obj.shape, 1, i, (4,)))
        questions.append(
            Question(TEMPLATES[2].format(color=obj.color, shape=obj.shape), "yes", 2, i, (3, 4))
        )
        questions.append(Question(TEMPLATES[3].format(shape=obj.shape), obj.size, 3, i, (4,)))
        for shape in SHAPES:
            answer = "yes" if shape == obj.shape else "no"
            text = TEMPLATES[4].format(color=obj.color, shape=shape)
            questions.append(Question(text, answer, 4, i, (2,)))
    present_shapes = [shape for shape in SHAPES if any(o.shape == shape for o in objects)]
    for color in COLORS:
        for shape in present_shapes:
            if not any(o.color == color and o.shape == shape for o in objects):
                # a colour that is absent, or present on another shape: nothing is referred to
                text = TEMPLATES[2].format(color=color, shape=shape)
                key = (3, 4) if color in colors else (3,)
                questions.append(Question(text, "no", 2, None, key))
    return questions


def _pick_question(questions: list[Question], rng: np.random.Generator) -> Question:
    """Chooses a template uniformly, then (for yes/no templates) the answer uniformly."""
    template = int(rng.integers(len(TEMPLATES)))
    pool = [q for q in questions if q.template == template]
    if template in (2, 4):
        answer = ("yes", "no")[int(rng.integers(2))]
        pool = [q for q in pool if q.answer == answer]
    return pool[int(rng.integers(len(pool)))]


class SyntheticVQA(Dataset):
    """Deterministic synthetic VQA examples with ground-truth masks and key words.

    Example ``i`` depends only on ``(seed, i, questions_per_image)``, so two datasets
    with the same arguments agree and a held-out set is simply another seed.

    Args:
        size (int): Number of examples.
        seed (int): Seed of the data; different seeds give independent examples.
        image_size (int): Height and width of the images in pixels (at least 32).
        questions_per_image (int): Consecutive examples ``k * j .. k * j + k - 1`` ask
            (independently drawn) questions about the same image ``j``.

    Each item is a dict with
        ``image`` (3, H, W) float32 in [0, 1]; ``question`` (T,) int64 token ids;
        ``answer`` int64 index into :data:`ANSWERS`; ``mask`` (H, W) bool, the
        referred object (all False when the question refers to nothing, as for
        "is there a red cross ?" answered "no"); ``key_tokens`` (T,) bool, the
        word(s) that identify the object; ``has_referent`` bool; ``template`` int;
        ``question_text``, ``answer_text`` str; ``objects`` the scene as
        :class:`SceneObject` s.

    Examples:
        >>> data = SyntheticVQA(size=4, seed=0)
        >>> item = data[0]
        >>> item["image"].shape, item["mask"].shape
        (torch.Size([3, 64, 64]), torch.Size([64, 64]))
    """

    def __init__(
        self, size: int = 1000, seed: int = 0, image_size: int = 64, questions_per_image: int = 1
    ) -> None:
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be a non-negative int, got {size!r}")
        if not isinstance(image_size, int) or image_size < 32:
            raise ValueError(f"image_size must be an int >= 32, got {image_size!r}")
        if not isinstance(questions_per_image, int) or questions_per_image < 1:
            raise ValueError(
                f"questions_per_image must be a positive int, got {questions_per_image!r}"
            )
        self.size = size
        self.seed = seed
        self.image_size = image_size
        self.questions_per_image = questions_per_image
        self.vocab = Vocabulary()

    def __len__(self) -> int:
        return self.size

    def scene(self, image_index: int) -> tuple[list[SceneObject], np.ndarray, list[np.ndarray]]:
        """The objects, the rendered (3, H, W) image and the per-object masks of one image."""
        rng = np.random.default_rng([self.seed, image_index])
        objects = sample_scene(rng, self.image_size)
        return (objects, *render_scene(objects, self.image_size, rng))

    def question(self, index: int, objects: Sequence[SceneObject]) -> Question:
        """The question of example ``index`` about its image's ``objects``."""
        return _pick_question(scene_questions(objects), self._rng(index))

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for a dataset of size {self.size}")
        image_index, slot = divmod(index, self.questions_per_image)
        return np.random.default_rng([self.seed, image_index, slot])

    def _example(
        self, objects, question: Question, image: np.ndarray, masks: list[np.ndarray]
    ) -> dict:
        ids = self.vocab.encode(question.text)
        key_tokens = torch.zeros(len(ids), dtype=torch.bool)
        key_tokens[list(question.key_positions)] = True
        if question.referent is None:
            mask = np.zeros((self.image_size, self.image_size), dtype=bool)
        else:
            mask = masks[question.referent]
        return {
            "image": torch.from_numpy(image),
            "question": torch.tensor(ids, dtype=torch.long),
            "answer": torch.tensor(ANSWERS.index(question.answer)),
            "mask": torch.from_numpy(mask.copy()),
            "key_tokens": key_tokens,
            "has_referent": question.referent is not None,
            "template": question.template,
            "question_text": question.text,
            "answer_text": question.answer,
            "objects": tuple(objects),
        }

    def __getitem__(self, index: int) -> dict:
        objects, image, masks = self.scene(index // self.questions_per_image)
        return self._example(objects, self.question(index, objects), image, masks)


class SyntheticVQAPairs(SyntheticVQA):
    """Pairs of questions about one image with the same answer but different referents.

    The case question-masked Grad-CAM is about: "how big is the circle ?" and
    "how big is the square ?" both answered "large" should be explained by
    different regions. Each item is a tuple of two example dicts (as in
    :class:`SyntheticVQA`) sharing ``image`` and ``answer``, with disjoint masks.

    Examples:
        >>> first, second = SyntheticVQAPairs(size=2, seed=0)[0]
        >>> bool(first["answer"] == second["answer"])
        True
    """

    def __getitem__(self, index: int) -> tuple[dict, dict]:
        rng = self._rng(index)
        objects, image, masks = self.scene(index // self.questions_per_image)
        groups: dict[tuple[int, str], list[Question]] = {}
        for q in scene_questions(objects):
            if q.referent is not None:
                groups.setdefault((q.template, q.answer), []).append(q)
        candidates = [g for g in groups.values() if len({q.referent for q in g}) > 1]
        group = candidates[int(rng.integers(len(candidates)))]
        first = group[int(rng.integers(len(group)))]
        others = [q for q in group if q.referent != first.referent]
        second = others[int(rng.integers(len(others)))]
        return (
            self._example(objects, first, image, masks),
            self._example(objects, second, image, masks),
        )


def collate_vqa(examples: Sequence[dict], pad_id: int = Vocabulary.pad_id) -> dict:
    """Stacks examples into a batch, right-padding the questions.

    Returns:
        dict: ``image`` (B, 3, H, W), ``question`` (B, T) padded with ``pad_id``,
        ``attention_mask`` (B, T) int64 (1 for real tokens), ``key_tokens`` (B, T)
        bool, ``answer`` (B,), ``mask`` (B, H, W), ``has_referent`` (B,) bool,
        ``template`` (B,), and lists ``question_text``, ``answer_text``, ``objects``.

    Examples:
        >>> batch = collate_vqa([SyntheticVQA(2, seed=1)[i] for i in range(2)])
        >>> batch["question"].shape == batch["attention_mask"].shape
        True
    """
    if len(examples) == 0:
        raise ValueError("examples must contain at least one example, got an empty sequence")
    questions = [e["question"] for e in examples]
    question = torch.nn.utils.rnn.pad_sequence(questions, batch_first=True, padding_value=pad_id)
    lengths = torch.tensor([len(q) for q in questions])
    attention_mask = (torch.arange(question.shape[1])[None, :] < lengths[:, None]).long()
    key_tokens = torch.nn.utils.rnn.pad_sequence(
        [e["key_tokens"] for e in examples], batch_first=True, padding_value=False
    )
    return {
        "image": torch.stack([e["image"] for e in examples]),
        "question": question,
        "attention_mask": attention_mask,
        "key_tokens": key_tokens,
        "answer": torch.stack([e["answer"] for e in examples]),
        "mask": torch.stack([e["mask"] for e in examples]),
        "has_referent": torch.tensor([e["has_referent"] for e in examples]),
        "template": torch.tensor([e["template"] for e in examples]),
        "question_text": [e["question_text"] for e in examples],
        "answer_text": [e["answer_text"] for e in examples],
        "objects": [e["objects"] for e in examples],
    }


def collate_pairs(pairs: Sequence[tuple[dict, dict]]) -> tuple[dict, dict]:
    """Collates pairs into two aligned batches (first questions, second questions).

    Examples:
        >>> pairs = SyntheticVQAPairs(2, seed=0)
        >>> first, second = collate_pairs([pairs[0], pairs[1]])
        >>> torch.equal(first["image"], second["image"])
        True
    """
    if len(pairs) == 0:
        raise ValueError("pairs must contain at least one pair, got an empty sequence")
    return collate_vqa([p[0] for p in pairs]), collate_vqa([p[1] for p in pairs])

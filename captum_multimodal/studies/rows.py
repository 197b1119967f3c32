"""Data where users keep it: any table of rows, a Hugging Face ``datasets.Dataset``
included, as a study's data set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset


class RowDataset(Dataset):
    """A table of rows turned into study examples by a user function.

    Args:
        rows: Anything with ``len`` and integer indexing that gives one row: a Hugging
            Face ``datasets.Dataset`` (rows are dicts of Python values), a list of
            dicts, a pandas table as ``frame.to_dict("records")``...
        to_example: Turns one row into the example dict the study's ``collate`` and
            methods expect (model inputs as tensors, the target, optional ground truth:
            for :func:`~captum_multimodal.datasets.collate_vqa`, the keys of a
            :class:`~captum_multimodal.datasets.SyntheticVQA` example).

    Examples:
        >>> import torch
        >>> table = [{"x": [1.0, 2.0], "label": 1}, {"x": [3.0, 4.0], "label": 0}]
        >>> data = RowDataset(table, lambda row: {"x": torch.tensor(row["x"]),
        ...                                       "answer": torch.tensor(row["label"])})
        >>> len(data), data[1]["x"].tolist()
        (2, [3.0, 4.0])
    """

    def __init__(self, rows: Any, to_example: Callable[[Any], dict]) -> None:
        if not hasattr(rows, "__len__") or not hasattr(rows, "__getitem__"):
            raise TypeError(
                f"rows must support len() and indexing (a datasets.Dataset, a list of dicts), "
                f"got {type(rows).__name__}"
            )
        if not callable(to_example):
            raise TypeError(f"to_example must be callable, got {type(to_example).__name__}")
        self.rows = rows
        self.to_example = to_example

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        example = self.to_example(self.rows[index])
        if not isinstance(example, dict):
            raise TypeError(
                f"to_example must return a dict, got {type(example).__name__} for row {index}"
            )
        return example

"""Zadeh et al.'s tensor fusion and the map between its entries and subsets of modalities."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


def modality_subsets(num_modalities: int) -> list[tuple[int, ...]]:
    """Every subset of ``range(num_modalities)``, by size, then lexicographically.

    The empty subset comes first; this is the column order of every per-subset tensor
    in the package (blocks, relevances, contributions).

    Examples:
        >>> modality_subsets(3)
        [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    """
    if isinstance(num_modalities, bool) or not isinstance(num_modalities, int):
        raise TypeError(f"num_modalities must be an int, got {type(num_modalities).__name__}")
    if num_modalities < 1:
        raise ValueError(f"num_modalities must be at least 1, got {num_modalities}")
    return [
        subset
        for size in range(num_modalities + 1)
        for subset in itertools.combinations(range(num_modalities), size)
    ]


def block_assignment(dims: Sequence[int]) -> torch.Tensor:
    """For each entry of the flattened fused tensor, the position of its subset.

    Entry (i_1, ..., i_M) of the tensor product of the vectors ``[1, f^m]`` belongs
    to the subset of modalities m with i_m >= 1: it is a product of one feature of
    each modality in the subset and of the appended ones of the others.

    Args:
        dims (Sequence[int]): Feature sizes d_1, ..., d_M.

    Returns:
        Tensor: (prod(d_m + 1),) long, indices into :func:`modality_subsets` (M).

    Examples:
        >>> block_assignment([1, 2])  # (1, f1) x (1, f2_1, f2_2)
        tensor([0, 2, 2, 1, 3, 3])
    """
    dims = _check_dims(dims)
    subsets = modality_subsets(len(dims))
    position = torch.empty(2 ** len(dims), dtype=torch.long)
    for column, subset in enumerate(subsets):
        position[sum(1 << m for m in subset)] = column
    code = torch.zeros(1, dtype=torch.long)
    for m, d in enumerate(dims):
        present = (torch.arange(d + 1) > 0).long() << m
        code = (code[:, None] + present[None, :]).reshape(-1)
    return position[code]


class TensorFusion(nn.Module):
    r"""Tensor fusion (Zadeh et al., 2017): append 1 to each modality, outer product, flatten.

    .. math::
        z = \mathrm{vec}\big([1, f^1] \otimes [1, f^2] \otimes \cdots \otimes [1, f^M]\big)

    The first modality's index varies slowest. The entries split into one block per
    subset S of modalities (:attr:`subsets`): block S holds
    :math:`\otimes_{m \in S} f^m` (flattened in the same order) and block ``()`` is the
    constant 1 at position 0. :meth:`block_indices` gives each block's positions and
    :attr:`assignment` each position's block.

    Args:
        dims (Sequence[int]): Feature sizes d_1, ..., d_M of the modality vectors.

    Examples:
        >>> fusion = TensorFusion([2, 3])
        >>> z = fusion(torch.ones(4, 2), 2 * torch.ones(4, 3))
        >>> z.shape, fusion.subsets
        (torch.Size([4, 12]), [(), (0,), (1,), (0, 1)])
        >>> z[0, fusion.block_indices((0, 1))]
        tensor([2., 2., 2., 2., 2., 2.])
    """

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = _check_dims(dims)
        self.subsets = modality_subsets(len(self.dims))
        self.register_buffer("assignment", block_assignment(self.dims), persistent=False)

    @property
    def out_features(self) -> int:
        """Length of the fused vector, prod(d_m + 1)."""
        return math.prod(d + 1 for d in self.dims)

    def block_indices(self, subset: Sequence[int]) -> torch.Tensor:
        """Positions of block ``subset`` in the fused vector, in the order of
        :math:`\\mathrm{vec}(\\otimes_{m \\in S} f^m)`.

        Args:
            subset (Sequence[int]): Modality indices, ascending (e.g. ``(0, 2)``).

        Returns:
            Tensor: (prod of d_m over the subset,) long.
        """
        key = tuple(subset)
        if key not in self.subsets:
            raise ValueError(f"subset must be one of {self.subsets}, got {subset!r}")
        return torch.nonzero(self.assignment == self.subsets.index(key)).flatten()

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        """Fuses the modality vectors.

        Args:
            *features (Tensor): M tensors (B, d_m), in modality order.

        Returns:
            Tensor: (B, prod(d_m + 1)).
        """
        check_features(features, self.dims)
        fused = None
        for f in features:
            padded = torch.cat([torch.ones_like(f[:, :1]), f], dim=1)
            fused = padded if fused is None else (fused[:, :, None] * padded[:, None, :])
            fused = fused.reshape(len(f), -1)
        return fused


def check_features(features: Sequence[torch.Tensor], dims: Sequence[int]) -> None:
    """Raises unless ``features`` are M float tensors (B, d_m) of one batch size."""
    if len(features) != len(dims):
        raise ValueError(f"expected {len(dims)} modality tensors, got {len(features)}")
    for m, (f, d) in enumerate(zip(features, dims, strict=True)):
        if not isinstance(f, torch.Tensor) or not f.is_floating_point():
            raise TypeError(f"features[{m}] must be a float tensor, got {type(f).__name__}")
        if f.dim() != 2 or f.shape[1] != d or len(f) != len(features[0]):
            raise ValueError(
                f"features[{m}] must have shape (B, {d}) with the batch size of features[0] "
                f"({len(features[0])}), got {tuple(f.shape)}"
            )


def _check_dims(dims: Sequence[int]) -> tuple[int, ...]:
    if isinstance(dims, (int, torch.Tensor)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims
    ):
        raise ValueError(f"dims must be a sequence of positive ints (d_1, ..., d_M), got {dims}")
    if not dims:
        raise ValueError("dims must name at least one modality")
    return tuple(dims)

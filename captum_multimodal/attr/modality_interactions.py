"""Model-agnostic per-subset (Möbius) interactions of modalities against a background."""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum._utils.common import _format_tensor_into_tuples
from captum._utils.typing import TargetType
from captum.attr._utils.attribution import PerturbationAttribution
from captum.log import log_usage
from torch import nn

from captum_multimodal._utils.checks import check_finite
from captum_multimodal._utils.modules import eval_mode
from captum_multimodal.attr.tensor_fusion_disentangle import target_indices
from captum_multimodal.nn.tensor_fusion import modality_subsets


class ModalityInteractions(PerturbationAttribution):
    r"""Möbius decomposition of any multimodal model's output over subsets of modalities.

    Each input tensor is one modality. With K background rows :math:`b_k` (one row of
    every modality's background tensor, used jointly),

    .. math::
        v_x(S) = \frac{1}{K}\sum_{k=1}^K F(x_S, b_{k, \bar S}), \qquad
        m_x(S) = \sum_{L \subseteq S} (-1)^{|S \setminus L|}\, v_x(L),

    where :math:`(x_S, b_{k,\bar S})` takes modalities in S from x and the others
    from :math:`b_k`. By Möbius inversion :math:`\sum_S m_x(S) = v_x(\text{all}) =
    F(x)`; :math:`m_x(\emptyset)` is the mean background output. With a background
    made of every combination of per-modality rows (the product of the marginals) and
    a model linear in a tensor fusion, this equals :class:`TensorFusionDisentangle`
    with those rows as ``baselines``.

    All :math:`2^M K` variants of every sample run as one batch of
    :math:`B \cdot 2^M \cdot K` rows (mind memory for large inputs). An
    ``nn.Module`` runs in eval mode for the call (its modes are restored); batch
    statistics would mix the variants.

    Args:
        forward_func (Callable): Called as ``forward_func(*inputs)``; returns (B, C)
            or (B,).

    Attributes:
        subsets (list of tuple of int): The columns of :meth:`attribute`, ``()``
            first; set by the first call (it tells M).

    Examples:
        >>> model = lambda a, b: (a * b).sum(1, keepdim=True) + a.sum(1, keepdim=True)
        >>> explainer = ModalityInteractions(model)
        >>> m = explainer.attribute((torch.ones(2, 3), torch.ones(2, 3)),
        ...                         baselines=(torch.zeros(1, 3), torch.zeros(1, 3)))
        >>> explainer.subsets, m[0]
        ([(), (0,), (1,), (0, 1)], tensor([0., 3., 0., 3.]))
    """

    def __init__(self, forward_func: Callable) -> None:
        if not callable(forward_func):
            raise TypeError(f"forward_func must be callable, got {type(forward_func).__name__}")
        super().__init__(forward_func)
        self.subsets: list[tuple[int, ...]] | None = None

    @log_usage()
    def attribute(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        baselines: torch.Tensor | tuple[torch.Tensor, ...],
        target: TargetType = None,
    ) -> torch.Tensor:
        """Per-sample Möbius terms of the target output for every subset of modalities.

        Args:
            inputs (tuple of Tensor): One tensor per modality, (B, ...) each.
            baselines (tuple of Tensor): One tensor per modality, (K, ...) each with
                the trailing shape of its input; row k of all of them is one
                background sample.
            target (int, list or Tensor, optional): Output index per sample (B,) or
                one for all; may be None when the model has one output.

        Returns:
            Tensor: (B, 2^M), column j for ``subsets[j]``; rows sum to the target
            output, column 0 is the mean background output.
        """
        inputs_tuple = _format_tensor_into_tuples(inputs)
        background = _check_background(inputs_tuple, baselines)
        check_finite([(f"inputs[{i}]", x) for i, x in enumerate(inputs_tuple)])
        check_finite([(f"baselines[{i}]", x) for i, x in enumerate(background)])
        subsets = modality_subsets(len(inputs_tuple))
        batch, rows = len(inputs_tuple[0]), len(background[0])
        mixed = []
        for m, (x, b) in enumerate(zip(inputs_tuple, background, strict=True)):
            rest = x.shape[1:]
            keep = torch.tensor([m in s for s in subsets], device=x.device)
            keep = keep.view(1, len(subsets), 1, *[1] * len(rest))
            variant = torch.where(keep, x[:, None, None], b.to(x.device)[None, None])
            mixed.append(variant.expand(batch, len(subsets), rows, *rest).reshape(-1, *rest))
        module = self.forward_func if isinstance(self.forward_func, nn.Module) else nn.Module()
        with eval_mode(module), torch.no_grad():
            output = self.forward_func(*mixed)
        if not isinstance(output, torch.Tensor) or output.dim() not in (1, 2):
            raise ValueError(
                "forward_func must return a (B, C) or (B,) tensor, got "
                f"{getattr(output, 'shape', type(output).__name__)}"
            )
        values = output.reshape(batch, len(subsets), rows, -1).mean(dim=2)
        index = target_indices(target, batch, values.shape[2], values.device)
        values = values.gather(2, index[:, None, None].expand(batch, len(subsets), 1))[..., 0]
        self.subsets = subsets
        return values @ _mobius(subsets, values.dtype, values.device).T


def _mobius(subsets: list[tuple[int, ...]], dtype, device) -> torch.Tensor:
    """(2^M, 2^M): entry (S, L) is (-1)^{|S|-|L|} when L is a subset of S, else 0."""
    matrix = torch.zeros(len(subsets), len(subsets), dtype=dtype, device=device)
    for row, outer in enumerate(subsets):
        for column, inner in enumerate(subsets):
            if set(inner) <= set(outer):
                matrix[row, column] = (-1) ** (len(outer) - len(inner))
    return matrix


def _check_background(
    inputs: tuple[torch.Tensor, ...], baselines: torch.Tensor | tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, ...]:
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or len(x) != len(inputs[0]):
            raise ValueError(f"inputs[{i}] must be a tensor (B, ...) with the batch of inputs[0]")
    if baselines is None:
        raise ValueError("baselines (one background tensor per modality) is required")
    background = _format_tensor_into_tuples(baselines)
    if len(background) != len(inputs):
        raise ValueError(
            f"baselines must hold one tensor per modality ({len(inputs)}), got {len(background)}"
        )
    for i, (x, b) in enumerate(zip(inputs, background, strict=True)):
        if not isinstance(b, torch.Tensor) or b.shape[1:] != x.shape[1:] or len(b) < 1:
            raise ValueError(
                f"baselines[{i}] must have shape (K, {', '.join(map(str, x.shape[1:]))}) like "
                f"inputs[{i}] without its batch, got {getattr(b, 'shape', type(b).__name__)}"
            )
        if len(b) != len(background[0]):
            raise ValueError(
                f"baselines must all have the same number of rows K, got {len(background[0])} "
                f"and {len(b)} (baselines[{i}])"
            )
        if b.dtype != x.dtype:
            raise TypeError(f"baselines[{i}] must have the dtype of inputs[{i}] ({x.dtype})")
    return background

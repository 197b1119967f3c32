"""The lp-norm multimodal head: one linear map per block, relevances and their regulariser."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from captum_multimodal.nn.tensor_fusion import TensorFusion


class ModalityWeights(nn.Linear):
    r"""Linear head on a fused tensor, read as one linear map :math:`W_I` per block.

    Ledent et al.'s lp-norm multimodal network (MNL): training the per-block maps
    with relevance weights on the lp sphere and squared-L2 weight decay is equivalent
    to training the plain linear head with the regulariser

    .. math::
        \lambda \Big(\sum_I \lVert W_I \rVert^q\Big)^{2/q}, \qquad q = \frac{2p}{p + 1},

    after which the relevances are

    .. math::
        \beta_I = \frac{\lVert W_I \rVert^{2/(p+1)}}
        {\big(\sum_J \lVert W_J \rVert^{2p/(p+1)}\big)^{1/p}}, \qquad
        \sum_I \beta_I^p = 1.

    (The poster prints q = (p+1)/2p; q = 2p/(p+1) is the exponent that makes the
    two formulas consistent, the classic lp-MKL duality, in which the block's
    features are scaled by :math:`\sqrt{\beta_I}`. Scaling them by
    :math:`\beta_I` itself gives q = 2p/(p+2) and exponent 2/(p+2) instead. The
    relevances rank the blocks identically either way; only their spread differs.)
    :math:`\lVert W_I \rVert` is the Frobenius norm of the block's columns over all
    outputs. The column of the constant entry (subset ``()``) duplicates the bias and
    is left out of both.

    Args:
        dims (Sequence[int]): Feature sizes d_1, ..., d_M of the fused modalities.
        out_features (int): Number of outputs (classes).
        p (float): The lp exponent, p >= 1 (p = 1: sparse relevances).
        bias (bool): Add a bias.

    Examples:
        >>> head = ModalityWeights([2, 3], out_features=1, p=1.0)
        >>> head.relevance().shape, round(head.relevance().sum().item(), 4)
        (torch.Size([3]), 1.0)
        >>> head.regularizer(1e-3) > 0
        tensor(True)
    """

    def __init__(
        self, dims: Sequence[int], out_features: int, p: float = 1.0, bias: bool = True
    ) -> None:
        layout = TensorFusion(dims)
        super().__init__(layout.out_features, out_features, bias=bias)
        if not p >= 1:
            raise ValueError(f"p must be at least 1, got {p}")
        self.dims, self.p, self.subsets = layout.dims, float(p), layout.subsets
        self.register_buffer("assignment", layout.assignment, persistent=False)

    def block_norms(self) -> torch.Tensor:
        """:math:`\\lVert W_I \\rVert` for the non-empty subsets, (2^M - 1,), in the order
        of ``subsets[1:]``."""
        squares = self.weight.pow(2).sum(dim=0)
        per_block = squares.new_zeros(len(self.subsets)).index_add(0, self.assignment, squares)
        return per_block[1:].sqrt()

    def relevance(self) -> torch.Tensor:
        """:math:`\\beta_I` for the non-empty subsets, (2^M - 1,), in the order of
        ``subsets[1:]``; :math:`\\sum_I \\beta_I^p = 1`."""
        norms = self.block_norms().detach()
        total = norms.pow(2 * self.p / (self.p + 1)).sum().pow(1 / self.p)
        return norms.pow(2 / (self.p + 1)) / total

    def regularizer(self, strength: float) -> torch.Tensor:
        """:math:`\\lambda (\\sum_I \\lVert W_I \\rVert^q)^{2/q}`, differentiable; add it to
        the loss.

        Args:
            strength (float): :math:`\\lambda`.

        Returns:
            Tensor: scalar.
        """
        q = 2 * self.p / (self.p + 1)
        return strength * self.block_norms().pow(q).sum().pow(2 / q)

"""Building blocks of multimodal low-rank bilinear (MLB) networks.

Kim et al., "Hadamard Product for Low-rank Bilinear Pooling" (ICLR 2017), as
written in Kim & Zhang, "Visual Explanations from Hadamard Product in
Multimodal Deep Networks", eq. 4-7. Every intermediate an explanation method
needs (the textual vector Q, the visual vector V, their product F and the
attention maps alpha) is the output of a named submodule, so it can be reached
with a forward hook or handed to a Captum layer method.
"""

from __future__ import annotations

import torch
from torch import nn


class Hadamard(nn.Module):
    """Element-wise product of two tensors of the same shape; its output is the joint vector F.

    Examples:
        >>> Hadamard()(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
        tensor([3., 8.])
    """

    def forward(self, textual: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        if textual.shape != visual.shape:
            raise ValueError(
                f"textual and visual must have the same shape, got {tuple(textual.shape)} "
                f"and {tuple(visual.shape)}"
            )
        return textual * visual


class LatticeSoftmax(nn.Module):
    """Softmax over the S x S lattice of each glimpse: (B, G, S, S) -> (B, G, S, S).

    Examples:
        >>> alpha = LatticeSoftmax()(torch.zeros(1, 2, 3, 3))
        >>> alpha.sum(dim=(2, 3))
        tensor([[1., 1.]])
    """

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.flatten(2).softmax(dim=-1).view_as(logits)


class LowRankBilinearAttention(nn.Module):
    """MLB attention with G glimpses (eq. 4) and the attended visual feature (eq. 5).

    alpha = softmax(P^T (tanh(U^T q 1^T) o tanh(V^T F^T))), with 1 x 1 convolutions
    for the per-location projections; v_hat concatenates, over glimpses g, the
    alpha_g-weighted sum of the feature vectors.

    Args:
        question_dim (int): Size N of the question vector q.
        feature_channels (int): Channels M of the feature map F.
        hidden_dim (int): Rank d of the low-rank bilinear pooling.
        glimpses (int): Number G of attention maps.
        dropout (float): Dropout on the joint representation before P (train mode only).

    Shapes:
        question (B, N) and features (B, M, S, S) give v_hat (B, G * M) and
        alpha (B, G, S, S). ``self.probs`` outputs alpha.

    Examples:
        >>> attention = LowRankBilinearAttention(8, 4, 16, glimpses=2)
        >>> v_hat, alpha = attention(torch.randn(3, 8), torch.randn(3, 4, 5, 5))
        >>> v_hat.shape, alpha.shape
        (torch.Size([3, 8]), torch.Size([3, 2, 5, 5]))
    """

    def __init__(
        self,
        question_dim: int,
        feature_channels: int,
        hidden_dim: int,
        glimpses: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.glimpses = glimpses
        self.question_projection = nn.Sequential(nn.Linear(question_dim, hidden_dim), nn.Tanh())
        self.feature_projection = nn.Sequential(
            nn.Conv2d(feature_channels, hidden_dim, kernel_size=1), nn.Tanh()
        )
        self.joint = Hadamard()
        self.dropout = nn.Dropout(dropout)
        self.glimpse_logits = nn.Conv2d(hidden_dim, glimpses, kernel_size=1)
        self.probs = LatticeSoftmax()

    def forward(
        self, question: torch.Tensor, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        projected = self.feature_projection(features)
        replicated = self.question_projection(question)[:, :, None, None].expand_as(projected)
        joint = self.joint(replicated, projected)
        alpha = self.probs(self.glimpse_logits(self.dropout(joint)))
        attended = torch.einsum("bgs,bms->bgm", alpha.flatten(2), features.flatten(2))
        return attended.flatten(1), alpha


class MLBFusion(nn.Module):
    """The Hadamard joint function of eq. 6: Q = tanh(W_q q), V = tanh(V_v v_hat), F = Q o V.

    Submodules ``textual``, ``visual`` and ``hadamard`` output Q, V and F.

    Args:
        question_dim (int): Size of q.
        visual_dim (int): Size of v_hat.
        joint_dim (int): Size of Q, V and F.

    Examples:
        >>> fusion = MLBFusion(8, 6, 10)
        >>> fusion(torch.randn(2, 8), torch.randn(2, 6)).shape
        torch.Size([2, 10])
    """

    def __init__(self, question_dim: int, visual_dim: int, joint_dim: int) -> None:
        super().__init__()
        self.textual = nn.Sequential(nn.Linear(question_dim, joint_dim), nn.Tanh())
        self.visual = nn.Sequential(nn.Linear(visual_dim, joint_dim), nn.Tanh())
        self.hadamard = Hadamard()

    def forward(self, question: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        return self.hadamard(self.textual(question), self.visual(visual))

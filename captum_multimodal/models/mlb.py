"""The MLB visual question answering model (Kim & Zhang, eq. 4-8), small enough to train on CPU."""

from __future__ import annotations

import torch
from torch import nn

from captum_multimodal.nn import LowRankBilinearAttention, MLBFusion


class SmallConvNet(nn.Sequential):
    """Four convolution, batch-norm, ReLU blocks: (B, 3, H, W) to (B, C, H/8, W/8).

    The default image backbone of :class:`MLB`; ``last_conv`` is the layer Grad-CAM
    reads. Batch norm is what lets the visual path of MLB train at all from scratch
    (without it the visual tanh saturates and the model settles on answer priors).

    Args:
        channels (tuple of int): Output channels of the four convolutions.

    Examples:
        >>> SmallConvNet()(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, channels: tuple[int, int, int, int] = (24, 32, 48, 64)) -> None:
        layers: list[nn.Module] = []
        in_channels = 3
        for i, out_channels in enumerate(channels):
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, stride=1 if i == 0 else 2, padding=1),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
            in_channels = out_channels
        super().__init__(*layers)
        self.out_channels = in_channels

    @property
    def last_conv(self) -> nn.Conv2d:
        return self[-3]


def torchvision_trunk(name: str = "resnet152", weights: str | None = None) -> nn.Module:
    """A torchvision ResNet without its pooling and classifier, as an :class:`MLB` backbone.

    torchvision is optional; install it to use this (``pip install torchvision``).
    The trunk's ``out_channels`` attribute is set for :class:`MLB`.

    Args:
        name (str): A torchvision ResNet constructor, e.g. ``"resnet152"`` as in the paper.
        weights (str, optional): Passed to the constructor, e.g. ``"IMAGENET1K_V2"``.

    Returns:
        nn.Sequential: The trunk, (B, 3, H, W) images to (B, C, H/32, W/32) features.

    Raises:
        ImportError: torchvision is not installed.

    Examples:
        >>> try:  # torchvision is optional
        ...     trunk = torchvision_trunk("resnet18")
        ... except ImportError:
        ...     trunk = None
        >>> trunk is None or trunk.out_channels == 512
        True
    """
    try:
        import torchvision.models
    except ImportError as error:
        raise ImportError(
            "torchvision_trunk needs torchvision; install it with `pip install torchvision`"
        ) from error
    resnet = getattr(torchvision.models, name)(weights=weights)
    trunk = nn.Sequential(*list(resnet.children())[:-2])
    trunk.out_channels = resnet.fc.in_features
    return trunk


class QuestionEncoder(nn.Module):
    """Word embedding and a GRU; the question vector q is the GRU state at the last real token.

    Questions must be right-padded. ``embedding`` outputs the word vectors (B, T, D).

    Examples:
        >>> encoder = QuestionEncoder(vocab_size=10, embedding_dim=4, hidden_dim=6)
        >>> ids = torch.tensor([[5, 6, 7], [5, 6, 0]])
        >>> encoder(ids, (ids != 0).long()).shape
        torch.Size([2, 6])
    """

    def __init__(
        self, vocab_size: int, embedding_dim: int, hidden_dim: int, pad_id: int = 0
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.rnn = nn.GRU(embedding_dim, hidden_dim, batch_first=True)

    def forward(self, question: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(self.embedding(question))
        last = attention_mask.sum(dim=1) - 1
        return states[torch.arange(len(states), device=states.device), last]


class MLB(nn.Module):
    """Multimodal low-rank bilinear attention network for VQA (eq. 4-8).

    image -> backbone feature map F (B, C, S, S); question -> q (B, N);
    attention (eq. 4-5) -> v_hat; fusion (eq. 6) -> F = Q o V; classifier (eq. 7) -> logits.

    Sites for explanation methods: ``fusion.textual`` (Q), ``fusion.visual`` (V),
    ``fusion.hadamard`` (F), ``question_encoder.embedding`` (word vectors q),
    ``backbone.last_conv`` (last convolution), ``attention.probs`` (alpha).

    Args:
        vocab_size (int): Number of token ids.
        num_answers (int): Number of answer classes.
        backbone (nn.Module, optional): Any module mapping images to (B, C, S, S) with an
            ``out_channels`` attribute (or pass ``feature_channels``).
            Default: :class:`SmallConvNet`.
        feature_channels (int, optional): C, when the backbone has no ``out_channels``.
        embedding_dim (int): Word-vector size.
        question_dim (int): Question-encoder (GRU) size.
        attention_dim (int): Low-rank size inside the attention.
        joint_dim (int): Size K of the fusion vectors Q, V and F.
        glimpses (int): Attention glimpses G.
        dropout (float): Dropout inside the attention (train mode only).
        pad_id (int): Token id of padding.

    Forward:
        image (B, 3, H, W) float, question (B, T) int64, attention_mask (B, T) optional,
        right-padded, 1 for real tokens (default: ``question != pad_id``).
        Returns logits (B, num_answers).

    Examples:
        >>> model = MLB(vocab_size=25, num_answers=16).eval()
        >>> model(torch.rand(2, 3, 64, 64), torch.tensor([[5, 6, 7], [5, 6, 0]])).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        vocab_size: int,
        num_answers: int,
        backbone: nn.Module | None = None,
        feature_channels: int | None = None,
        embedding_dim: int = 32,
        question_dim: int = 64,
        attention_dim: int = 64,
        joint_dim: int = 128,
        glimpses: int = 2,
        dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else SmallConvNet()
        channels = feature_channels or getattr(self.backbone, "out_channels", None)
        if channels is None:
            raise ValueError(
                "feature_channels is required when the backbone has no `out_channels` attribute"
            )
        self.pad_id = pad_id
        self.question_encoder = QuestionEncoder(vocab_size, embedding_dim, question_dim, pad_id)
        self.attention = LowRankBilinearAttention(
            question_dim, channels, attention_dim, glimpses, dropout
        )
        self.fusion = MLBFusion(question_dim, glimpses * channels, joint_dim)
        self.classifier = nn.Linear(joint_dim, num_answers)

    def forward(
        self,
        image: torch.Tensor,
        question: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        attention_mask = self._check_inputs(image, question, attention_mask)
        return self.answer_from_features(self.backbone(image), question, attention_mask)

    def answer_from_features(
        self, features: torch.Tensor, question: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits from backbone features (B, C, S, S) and questions (eq. 4-7), unchecked.

        Lets training ask several questions about one image for one backbone pass.
        """
        q = self.question_encoder(question, attention_mask)
        attended, _ = self.attention(q, features)
        return self.classifier(self.fusion(q, attended))

    def _check_inputs(self, image, question, attention_mask) -> torch.Tensor:
        if not (isinstance(image, torch.Tensor) and image.dim() == 4 and image.is_floating_point()):
            raise ValueError(
                f"image must be a float tensor of shape (B, 3, H, W), got {_describe(image)}"
            )
        if (
            not isinstance(question, torch.Tensor)
            or question.dim() != 2
            or question.is_floating_point()
        ):
            raise ValueError(f"question must be an int64 tensor (B, T), got {_describe(question)}")
        if len(image) != len(question):
            raise ValueError(
                f"image and question must have the same batch size, got {len(image)} and "
                f"{len(question)}"
            )
        if attention_mask is None:
            attention_mask = (question != self.pad_id).long()
        elif attention_mask.shape != question.shape:
            raise ValueError(
                f"attention_mask must have the shape of question {tuple(question.shape)}, "
                f"got {tuple(attention_mask.shape)}"
            )
        lengths = attention_mask.sum(dim=1)
        if bool((lengths == 0).any()):
            rows = torch.nonzero(lengths == 0).flatten().tolist()
            raise ValueError(f"question rows {rows} have no real tokens (attention_mask all 0)")
        positions = torch.arange(question.shape[1], device=question.device)
        if not torch.equal(attention_mask.bool(), positions[None, :] < lengths[:, None]):
            raise ValueError("attention_mask must be right-padded: ones first, then zeros")
        return attention_mask


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"

"""Batch norms for tensor fusion: Vector BatchNorm and Iterative BatchNorm (Ledent et al.)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from captum_multimodal.nn.tensor_fusion import TensorFusion, check_features


class VectorBatchNorm(nn.Module):
    r"""Batch norm of a whole feature vector: centred, then divided by the batch's RMS norm.

    Ledent et al.'s Vector BatchNorm (VBN): with :math:`\mu_B` the mini-batch mean,

    .. math::
        \hat f(x_i) = \frac{f(x_i) - \mu_B}
        {\sqrt{\tfrac{1}{|B|}\sum_{i \in B} \lVert f(x_i) - \mu_B \rVert_2^2 + \epsilon}}

    so the mean squared L2 norm of the output over the batch is 1 (the poster's
    :math:`\sigma^2` lacks the square, a typo: the norm is kept constant only with it).
    Unlike ``nn.BatchNorm1d`` the whole vector shares one scale and there is no
    affine part, so a modality cannot grow its features to look less important.
    In eval mode the running mean and running mean squared norm (updated with
    ``momentum`` in training, as in ``nn.BatchNorm1d``) are used.

    Args:
        num_features (int): d, the feature size.
        momentum (float): Weight of the new batch in the running estimates.
        eps (float): Added to the mean squared norm.

    Examples:
        >>> norm = VectorBatchNorm(3)
        >>> out = norm(torch.randn(16, 3) * 5 + 2)
        >>> round(out.pow(2).sum(1).mean().item(), 3), out.mean(0).abs().max() < 1e-5
        (1.0, tensor(True))
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        _check_momentum(momentum)
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_sq_norm", torch.tensor(float(num_features)))
        self.register_buffer("num_batches_tracked", torch.tensor(0))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Args:
            features (Tensor): (B, d).

        Returns:
            Tensor: (B, d).
        """
        check_features((features,), (self.num_features,))
        if not self.training:
            return (features - self.running_mean) / (self.running_sq_norm + self.eps).sqrt()
        _check_batch(features)
        mean = features.mean(dim=0)
        centred = features - mean
        sq_norm = centred.pow(2).sum(dim=1).mean()
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_sq_norm.lerp_(sq_norm, self.momentum)
            self.num_batches_tracked += 1
        return centred / (sq_norm + self.eps).sqrt()


class IterativeBatchNorm(TensorFusion):
    r"""Tensor fusion whose blocks are centred Wick products, each scaled to unit RMS norm.

    Ledent et al.'s Iterative BatchNorm (IBN). With
    :math:`X_J = \otimes_{m \in J} f^m` and :math:`\mu_J = \mathbb{E}[X_J]` over the
    batch, block I of the output is

    .. math::
        \Psi_\emptyset = 1, \qquad
        \Psi_I = X_I - \sum_{T \subsetneq I} \mu_{I \setminus T} \otimes \Psi_T,
        \qquad
        \tilde\Psi_I = \Psi_I \Big/ \sqrt{\tfrac{1}{|B|}\textstyle\sum_i
        \lVert \Psi_I(x_i) \rVert^2 + \epsilon},

    the Wick product of the modality features, equal to the poster's
    inclusion-exclusion formula with the :math:`(-1)^\ell \ell!` terms (unroll the
    recursion: each chain of subsets is one ordering of disjoint blocks). Every
    :math:`\Psi_I` has batch mean 0, and every block containing a modality whose
    features are constant over the batch vanishes, so a block cannot use learned
    constants to carry what fewer modalities explain (the mechanism of degree
    inflation). For one or two modalities it is VBN of each modality before the
    product, minus the batch mean of that product (the cross-covariance), rescaled.

    The output has :class:`TensorFusion`'s layout (constant 1 at position 0, block I
    at :meth:`block_indices` ``(I)``), so a linear head reads it like a fused tensor.

    Eval mode uses running estimates of every :math:`\mu_J` and every block's mean
    squared norm (``momentum`` updates in training). These lag behind the encoders
    during training, and stale means leak main effects into interaction blocks:
    call :meth:`recompute_statistics` after training to set them exactly.

    Args:
        dims (Sequence[int]): Feature sizes d_1, ..., d_M.
        momentum (float): Weight of the new batch in the running estimates.
        eps (float): Added to each block's mean squared norm.

    Examples:
        >>> ibn = IterativeBatchNorm([2, 3])
        >>> f1, f2 = torch.randn(32, 2), torch.randn(32, 3)
        >>> z = ibn(f1, f2)
        >>> z[:, ibn.block_indices((0, 1))].mean(0).abs().max() < 1e-5
        tensor(True)
    """

    def __init__(self, dims: Sequence[int], momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__(dims)
        _check_momentum(momentum)
        self.momentum, self.eps = momentum, eps
        for subset in self.subsets[1:]:
            shape = [self.dims[m] for m in subset]
            self.register_buffer(_mean_name(subset), torch.zeros(shape))
        self.register_buffer("running_sq_norm", torch.ones(len(self.subsets) - 1))
        self.register_buffer("num_batches_tracked", torch.tensor(0))

    def running_means(self) -> dict[tuple[int, ...], torch.Tensor]:
        """The running :math:`\\mu_J` for every non-empty subset J, shape (d_j, ...)."""
        return {subset: getattr(self, _mean_name(subset)) for subset in self.subsets[1:]}

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        """Args:
            *features (Tensor): M tensors (B, d_m), in modality order.

        Returns:
            Tensor: (B, prod(d_m + 1)), the normalised Wick products in fused layout.
        """
        check_features(features, self.dims)
        if self.training:
            _check_batch(features[0])
            means = self._batch_means(features)
            wick = self._wick(features, means)
            sq_norms = torch.stack([wick[s].flatten(1).pow(2).sum(1).mean() for s in wick])
            with torch.no_grad():
                for subset, mean in means.items():
                    getattr(self, _mean_name(subset)).lerp_(mean, self.momentum)
                self.running_sq_norm.lerp_(sq_norms, self.momentum)
                self.num_batches_tracked += 1
        else:
            wick = self._wick(features, self.running_means())
            sq_norms = self.running_sq_norm
        scales = (sq_norms + self.eps).rsqrt()
        fused = features[0].new_zeros((len(features[0]), *(d + 1 for d in self.dims)))
        fused[(slice(None), *[0] * len(self.dims))] = 1
        for index, (subset, psi) in enumerate(wick.items()):
            where = [slice(1, None) if m in subset else 0 for m in range(len(self.dims))]
            fused[(slice(None), *where)] = psi * scales[index]
        return fused.flatten(1)

    @torch.no_grad()
    def recompute_statistics(self, model: nn.Module, batches: Iterable) -> None:
        """Sets the running statistics to their exact values over a dataset.

        Two passes over ``batches``: the first averages every :math:`X_J`, the second
        the squared norm of every :math:`\\Psi_I` built from those means. The model
        runs in eval mode under ``no_grad`` (its modes are restored); only this
        module's running statistics change.

        Args:
            model (nn.Module): The model containing this module.
            batches (Iterable): Each item is the model's input: a tensor, or a tuple
                or list of positional inputs (e.g. a ``DataLoader`` over the inputs
                only). Iterated twice.
        """
        sums: dict[tuple[int, ...], torch.Tensor] = {}
        counts = [0]

        def add_moments(_module, features):
            for subset, value in self._batch_means(features).items():
                sums[subset] = sums.get(subset, 0) + value * len(features[0])
            counts[0] += len(features[0])

        self._run_with_hook(model, batches, add_moments)
        if not counts[0]:
            raise ValueError("batches must yield at least one batch")
        means = {subset: total / counts[0] for subset, total in sums.items()}
        squares = []

        def add_squares(_module, features):
            wick = self._wick(features, means)
            squares.append(torch.stack([wick[s].flatten(1).pow(2).sum(1).sum() for s in wick]))

        self._run_with_hook(model, batches, add_squares)
        for subset, mean in means.items():
            getattr(self, _mean_name(subset)).copy_(mean)
        self.running_sq_norm.copy_(torch.stack(squares).sum(0) / counts[0])

    def _run_with_hook(self, model: nn.Module, batches: Iterable, hook) -> None:
        training = [module for module in model.modules() if module.training]
        handle = self.register_forward_pre_hook(hook)
        try:
            model.eval()
            for batch in batches:
                model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
        finally:
            handle.remove()
            for module in training:
                module.training = True

    def _product(self, tensors: dict[int, torch.Tensor], subset: tuple[int, ...], within):
        """Outer product of per-modality tensors (lead, d_m) over ``subset``, shaped
        (lead, *[d_m if m in subset else 1 for m in within])."""
        out = None
        for m in subset:
            shape = [self.dims[k] if k == m else 1 for k in within]
            term = tensors[m].reshape(-1, *shape)
            out = term if out is None else out * term
        return out

    def _batch_means(self, features: Sequence[torch.Tensor]) -> dict:
        columns = dict(enumerate(features))
        return {s: self._product(columns, s, s).mean(dim=0) for s in self.subsets[1:]}

    def _wick(self, features: Sequence[torch.Tensor], means: dict) -> dict:
        columns = dict(enumerate(features))
        wick: dict[tuple[int, ...], torch.Tensor] = {}
        for subset in self.subsets[1:]:
            psi = self._product(columns, subset, subset) - means[subset]
            for inner in self.subsets[1:]:
                if set(inner) < set(subset):
                    rest = tuple(m for m in subset if m not in inner)
                    shape = [self.dims[m] if m in rest else 1 for m in subset]
                    lead = [len(features[0])] + [self.dims[m] if m in inner else 1 for m in subset]
                    psi = psi - means[rest].reshape(shape) * wick[inner].reshape(lead)
            wick[subset] = psi
        return wick


def _mean_name(subset: tuple[int, ...]) -> str:
    return "running_mean_" + "_".join(str(m) for m in subset)


def _check_momentum(momentum: float) -> None:
    if not 0 < momentum <= 1:
        raise ValueError(f"momentum must be in (0, 1], got {momentum}")


def _check_batch(features: torch.Tensor) -> None:
    if len(features) < 2:
        raise ValueError(
            f"features must hold at least 2 samples in training mode (batch statistics), "
            f"got {len(features)}"
        )

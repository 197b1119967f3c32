"""Exact per-subset contributions of a model whose head is linear in a tensor fusion."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from captum._utils.common import _format_tensor_into_tuples
from captum._utils.typing import TargetType
from captum.attr import LayerAttribution
from captum.log import log_usage
from torch import nn

from captum_multimodal._utils.checks import check_finite, check_same_device, check_targets
from captum_multimodal._utils.modules import eval_mode, resolve_submodule
from captum_multimodal.nn.batch_norm import IterativeBatchNorm
from captum_multimodal.nn.tensor_fusion import TensorFusion


class TensorFusionDisentangle(LayerAttribution):
    r"""Splits a tensor-fusion model's logit exactly into one term per subset of modalities.

    For a head linear in Zadeh's fused tensor,
    :math:`y(x) = b + \sum_S \langle W_S, X_S(x) \rangle` with
    :math:`X_S = \otimes_{m \in S} f^m` (Ledent et al.'s setting), write every
    :math:`X_S` in centred Wick products :math:`\Psi_T` (:class:`IterativeBatchNorm`):
    :math:`X_S = \sum_{T \subseteq S} \mu_{S \setminus T} \otimes \Psi_T`. Then

    .. math::
        y(x) = \sum_T c_T(x), \qquad c_T(x) = \langle \tilde W_T, \Psi_T(x) \rangle,
        \qquad \tilde W_T = \sum_{S \supseteq T} W_S \times_{S \setminus T}
        \mu_{S \setminus T},

    with the bias in the constant :math:`c_\emptyset`. This is the Möbius /
    functional-ANOVA form: every :math:`c_T` with T non-empty has mean 0 under the
    centring moments and holds nothing that a strict subset of T explains, so a
    model that only uses modality 1 gets :math:`c_{\{1\}}` alone even if it stores
    that information in a higher-order block (degree inflation).

    Where the centring moments come from:

    - ``fusion_layer`` an :class:`IterativeBatchNorm`: its own running statistics;
      its blocks already are the (normalised) :math:`\Psi_T`, so
      :math:`c_T = \langle W_T, \tilde\Psi_T \rangle`. ``baselines`` must be None.
    - any other fusion (raw or VBN features): ``baselines``, a batch of model
      inputs; the moments are those of the product of its per-modality marginals,
      :math:`\mu_J = \otimes_{m \in J} \bar f^m` with :math:`\bar f^m` the mean of
      modality m's features over the batch, so that
      :math:`\Psi_T = \otimes_{m \in T} (f^m - \bar f^m)`. With these moments the
      result equals :class:`ModalityInteractions` run with every combination of the
      baselines' per-modality rows as background.

    Cost: one forward pass (plus one on ``baselines``) and one product of the head's
    weights with the fused tensor; no gradients.

    Args:
        forward_func (nn.Module): The model; called as ``forward_func(*inputs)``.
        fusion_layer (nn.Module or str): :class:`TensorFusion`,
            :class:`IterativeBatchNorm`, or a module whose forward takes the M
            modality vectors (B, d_m) as positional tensors and returns Zadeh's
            flattened product (1 appended first, modalities in argument order,
            the first modality's index slowest). Runs once per forward pass.
        head (nn.Linear or str): The linear module that reads the fusion output
            directly (e.g. :class:`ModalityWeights`).

    Attributes:
        subsets (list of tuple of int): The columns of :meth:`attribute`, starting
            with ``()`` (the constant); None for a user's fusion module until the
            first call tells M.

    Examples:
        >>> from captum_multimodal.nn import ModalityWeights
        >>> class Model(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fusion, self.head = TensorFusion([2, 3]), ModalityWeights([2, 3], 4)
        ...     def forward(self, a, b):
        ...         return self.head(self.fusion(a, b))
        >>> model = Model()
        >>> explainer = TensorFusionDisentangle(model, model.fusion, model.head)
        >>> inputs = (torch.randn(5, 2), torch.randn(5, 3))
        >>> background = (torch.randn(9, 2), torch.randn(9, 3))
        >>> c = explainer.attribute(inputs, target=1, baselines=background)
        >>> c.shape, explainer.subsets
        (torch.Size([5, 4]), [(), (0,), (1,), (0, 1)])
        >>> torch.allclose(c.sum(1), model(*inputs)[:, 1], atol=1e-5)
        True
    """

    def __init__(
        self, forward_func: nn.Module, fusion_layer: nn.Module | str, head: nn.Module | str
    ) -> None:
        if not isinstance(forward_func, nn.Module):
            raise TypeError(
                f"forward_func must be an nn.Module (its layers are hooked), "
                f"got {type(forward_func).__name__}"
            )
        layer = resolve_submodule(forward_func, fusion_layer, "fusion_layer")
        super().__init__(forward_func, layer)
        self.head = resolve_submodule(forward_func, head, "head")
        if not isinstance(self.head, nn.Linear):
            raise TypeError(
                f"head must be an nn.Linear reading the fused tensor, got "
                f"{type(self.head).__name__}"
            )
        self.subsets = layer.subsets if isinstance(layer, TensorFusion) else None
        self._layouts: dict[tuple, TensorFusion] = {}

    @log_usage()
    def attribute(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        target: TargetType = None,
        baselines: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        r"""Per-sample contributions of every subset of modalities to the target logit.

        Args:
            inputs (Tensor or tuple of Tensor): The model's inputs, batch first (B).
            target (int, list or Tensor, optional): Output index per sample (B,) or
                one for all; may be None when the head has one output.
            baselines (Tensor or tuple of Tensor, optional): Inputs of a reference
                batch (any size, at least 1), structured like ``inputs``; required
                unless ``fusion_layer`` is an :class:`IterativeBatchNorm`, which
                centres with its running statistics instead.

        Returns:
            Tensor: (B, 2^M), column j for ``subsets[j]``; column 0 is the constant.
            Rows sum to the head's output at ``target``.
        """
        inputs_tuple = _format_tensor_into_tuples(inputs)
        own_statistics = isinstance(self.layer, IterativeBatchNorm)
        if own_statistics and baselines is not None:
            raise ValueError(
                "baselines must be None when fusion_layer is an IterativeBatchNorm: it "
                "centres with its own running statistics"
            )
        if not own_statistics and baselines is None:
            raise ValueError(
                "baselines (a reference batch of inputs) is required for a fusion_layer "
                "without running statistics: it gives the centring moments"
            )
        named = [(f"inputs[{i}]", x) for i, x in enumerate(inputs_tuple)]
        if baselines is not None:
            baselines = _format_tensor_into_tuples(baselines)
            if len(baselines) != len(inputs_tuple):
                raise ValueError(
                    f"baselines must hold {len(inputs_tuple)} tensors like inputs, "
                    f"got {len(baselines)}"
                )
            named += [(f"baselines[{i}]", x) for i, x in enumerate(baselines)]
        check_finite(named)
        check_same_device(self.forward_func, named)
        with eval_mode(self.forward_func), torch.no_grad():
            features, fused = self._run(inputs_tuple)
            fusion = self._layout(features)
            rows = target_indices(target, len(fused), self.head.out_features, fused.device)
            weight = self.head.weight[rows]
            if own_statistics:
                per_entry = weight * fused
            else:
                means = [f.mean(dim=0) for f in self._run(baselines)[0]]
                centred = [f - mean for f, mean in zip(features, means, strict=True)]
                per_entry = _recentre(weight, means) * fusion(*centred)
            contributions = per_entry.new_zeros(len(fused), len(fusion.subsets))
            contributions.index_add_(1, fusion.assignment, per_entry)
            if self.head.bias is not None:
                contributions[:, 0] += self.head.bias[rows]
        self.subsets = fusion.subsets
        return contributions

    def _layout(self, features: tuple[torch.Tensor, ...]) -> TensorFusion:
        """A :class:`TensorFusion` for these feature sizes on their device (cached)."""
        key = (tuple(f.shape[1] for f in features), features[0].device)
        if key not in self._layouts:
            self._layouts[key] = TensorFusion(key[0]).to(key[1])
        return self._layouts[key]

    def _run(
        self, inputs: tuple[torch.Tensor, ...]
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """One forward pass; the fusion layer's inputs and output."""
        with _recording(self.layer, self.head) as record:
            self.forward_func(*inputs)
        for name, calls in (("fusion_layer", record["fusion"]), ("head", record["head"])):
            if len(calls) != 1:
                raise ValueError(f"{name} must run exactly once per forward pass, ran {len(calls)}")
        (features, fused), head_input = record["fusion"][0], record["head"][0]
        if not features or not all(isinstance(f, torch.Tensor) and f.dim() == 2 for f in features):
            raise ValueError("fusion_layer must take the modality vectors (B, d_m) as arguments")
        if not isinstance(self.layer, TensorFusion) and not _is_fusion(
            fused, self._layout(features)(*features)
        ):
            raise ValueError(
                "fusion_layer must return Zadeh's flattened product of its inputs with 1 "
                "appended first (TensorFusion's layout)"
            )
        if head_input is not fused and not _is_fusion(head_input, fused, tolerance=0.0):
            raise ValueError("head must read the output of fusion_layer directly")
        return features, fused


def _is_fusion(output: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-5) -> bool:
    """Whether ``output`` is ``expected`` up to ``tolerance`` (and of its shape)."""
    return output.shape == expected.shape and torch.allclose(
        output, expected, atol=tolerance, rtol=tolerance
    )


@contextlib.contextmanager
def _recording(fusion: nn.Module, head: nn.Module) -> Iterator[dict[str, list]]:
    record: dict[str, list] = {"fusion": [], "head": []}
    handles = [
        fusion.register_forward_hook(lambda _m, a, out: record["fusion"].append((a, out))),
        head.register_forward_pre_hook(lambda _m, a: record["head"].append(a[0])),
    ]
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()


def _recentre(weight: torch.Tensor, means: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""The head's rows on the centred fused tensor: :math:`\tilde W_T` in block T.

    ``[1, f] = A [1, f - \bar f]`` with ``A = [[1, 0], [\bar f, I]]`` per modality, so
    the weights on the centred fusion are W contracted with A along every mode: only
    index 0 of mode m changes, by the contraction of the other indices with
    :math:`\bar f^m`.
    """
    shaped = weight.reshape(len(weight), *(len(mean) + 1 for mean in means))
    for m, mean in enumerate(means):
        moved = shaped.movedim(m + 1, -1)
        first = moved[..., :1] + moved[..., 1:] @ mean[:, None]
        shaped = torch.cat([first, moved[..., 1:]], dim=-1).movedim(-1, m + 1)
    return shaped.reshape(len(weight), -1)


def target_indices(
    target: TargetType, batch_size: int, classes: int, device: torch.device
) -> torch.Tensor:
    """The output index of each sample, (B,) long, from Captum-style ``target``.

    None is allowed only for one output; an int or one-element tensor applies to all
    samples; a list or 1-D tensor gives one index per sample.
    """
    if target is None:
        if classes != 1:
            raise ValueError(f"target is required: the head has {classes} outputs, not 1")
        return torch.zeros(batch_size, dtype=torch.long, device=device)
    if isinstance(target, bool) or not isinstance(target, (int, list, tuple, torch.Tensor)):
        raise TypeError(f"target must be an int, a list or a tensor, got {type(target).__name__}")
    rows = torch.as_tensor(target, device=device)
    check_targets(rows, classes)
    if rows.numel() == 1:
        return rows.reshape(()).long().expand(batch_size)
    if rows.dim() != 1 or len(rows) != batch_size:
        raise ValueError(
            f"target must be one index or one per sample ({batch_size}), got shape "
            f"{tuple(rows.shape)}"
        )
    return rows.long()


def variance_share(contributions: torch.Tensor) -> torch.Tensor:
    r"""Var(:math:`c_S`) / :math:`\sum_T` Var(:math:`c_T`) over the batch, per subset.

    Args:
        contributions (Tensor): (B, 2^M) from :meth:`TensorFusionDisentangle.attribute`
            or :meth:`ModalityInteractions.attribute`.

    Returns:
        Tensor: (2^M - 1,), the non-empty subsets (``subsets[1:]``); sums to 1.

    Examples:
        >>> variance_share(torch.tensor([[1.0, 2.0, 0.0], [1.0, 0.0, 1.0]]))
        tensor([0.8000, 0.2000])
    """
    _check_contributions(contributions)
    variances = contributions[:, 1:].var(dim=0, correction=0)
    return variances / variances.sum().clamp_min(torch.finfo(variances.dtype).tiny)


def shapley_values(contributions: torch.Tensor, subsets: Sequence[tuple[int, ...]]) -> torch.Tensor:
    r"""Shapley value of each modality, :math:`\phi_m = \sum_{S \ni m} c_S / |S|`.

    Args:
        contributions (Tensor): (B, 2^M), columns following ``subsets``.
        subsets (Sequence[tuple[int, ...]]): The explainer's ``subsets``.

    Returns:
        Tensor: (B, M); rows sum to the logit minus the constant term.

    Examples:
        >>> shapley_values(torch.tensor([[0.5, 1.0, 2.0, 4.0]]), [(), (0,), (1,), (0, 1)])
        tensor([[3., 4.]])
    """
    _check_contributions(contributions)
    if len(subsets) != contributions.shape[1]:
        raise ValueError(
            f"subsets must have one entry per column ({contributions.shape[1]}), got {len(subsets)}"
        )
    modalities = max((max(s) for s in subsets if s), default=-1) + 1
    share = contributions.new_zeros(len(subsets), modalities)
    for column, subset in enumerate(subsets):
        for m in subset:
            share[column, m] = 1 / len(subset)
    return contributions @ share


def _check_contributions(contributions: torch.Tensor) -> None:
    if not isinstance(contributions, torch.Tensor) or contributions.dim() != 2:
        raise ValueError(
            "contributions must be a (B, 2^M) tensor, got "
            f"{getattr(contributions, 'shape', type(contributions).__name__)}"
        )

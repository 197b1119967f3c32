"""Grad-CAM whose gradients at the fusion layer are masked to question-sensitive neurons."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from captum._utils.common import (
    _format_additional_forward_args,
    _format_tensor_into_tuples,
    _select_targets,
)
from captum._utils.typing import TargetType
from captum.attr import LayerAttribution
from captum.attr._utils.attribution import GradientAttribution
from captum.log import log_usage
from torch import nn

from captum_multimodal._utils.checks import (
    check_finite,
    check_same_device,
    check_targets,
    named_inputs,
)
from captum_multimodal._utils.modules import eval_mode, record_outputs, resolve_submodule
from captum_multimodal.attr.neuron_ranking import check_top_ns, top_mask

SENSITIVITIES = ("sum", "l1", "l2")


class QuestionMaskedGradCAM(LayerAttribution, GradientAttribution):
    r"""Grad-CAM that lets only the question-sensitive fusion neurons speak.

    Ummettuguli, "Towards visual explanations that ground multiple modalities":
    Grad-CAM maps for two questions with the same answer look alike because the
    answer's gradient hardly depends on the question. At the fusion ("combine")
    layer A, rank the neurons by their sensitivity to the question
    representation q, keep the gradient of the target at the top-n neurons, zero
    it at the others, and compute Grad-CAM at ``layer`` from what flows back:

    .. math::
        \alpha_k = \frac{1}{Z}\sum_{ij} \frac{\partial y}{\partial L^k_{ij}}\Big|_{
        \partial y / \partial A \,\odot\, m}, \qquad
        \mathrm{cam} = \mathrm{ReLU}\Big(\sum_k \alpha_k L^k\Big)

    with m the 0/1 mask of the kept neurons. Paths from ``layer`` to the output
    that avoid A keep their gradient, so ``top_n = K`` is exactly
    :class:`captum.attr.LayerGradCam` and ``top_n = 0`` leaves only those paths
    (zero for MLB, where everything passes through the fusion).

    Sensitivity of neuron k (J = dA/dq of one sample, flattened over q):

    - ``"sum"`` (default): the row sum :math:`(J\mathbf{1})_k`, ranked largest
      first (the seed's tables list positive top values). Computed for all
      neurons at once with the double-backward trick (a vector-Jacobian product
      with a dummy cotangent, differentiated again), which also works through
      cuDNN/oneDNN recurrent kernels where forward-mode AD does not.
    - ``"l1"``, ``"l2"``: the row norms. Exact, but they need the whole
      Jacobian: one vectorised backward per fusion neuron (K of them, batched
      with ``is_grads_batched``), far more than one backward pass.

    The definitions rank neurons almost independently; say which one you report.

    Variants from the paper's future work: ``word_index=i`` ranks by the
    sensitivity to word i's vector only (``question_layer`` must output
    (B, T, D)); ``contrast_inputs`` keeps the top-n neurons of this question
    that are not among the top-n of another question about the same image.

    The model runs in eval mode for the call; its modes are restored.

    Args:
        forward_func (nn.Module): The model.
        layer (nn.Module or str): Where Grad-CAM is computed; its output is
            (B, C, h, w) or any (B, C, ...) grid.
        fusion_layer (nn.Module or str): Outputs the fusion activations A (B, K).
        question_layer (nn.Module or str): Outputs the question representation q:
            word vectors (B, T, D) or an encoder's vector (B, D).

    Examples:
        >>> from captum_multimodal.adapters import MLBAdapter
        >>> from captum_multimodal.models import MLB
        >>> model = MLB(vocab_size=25, num_answers=16).eval()
        >>> cam = QuestionMaskedGradCAM.from_adapter(MLBAdapter(model))
        >>> image, question = torch.rand(2, 3, 64, 64), torch.tensor([[5, 6, 7], [5, 6, 0]])
        >>> cam.attribute(image, target=3, top_n=10, additional_forward_args=(question,)).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        forward_func: nn.Module,
        layer: nn.Module | str,
        fusion_layer: nn.Module | str,
        question_layer: nn.Module | str,
    ) -> None:
        if not isinstance(forward_func, nn.Module):
            raise TypeError(
                f"forward_func must be an nn.Module (its layers are hooked), "
                f"got {type(forward_func).__name__}"
            )
        layer = resolve_submodule(forward_func, layer, "layer")
        LayerAttribution.__init__(self, forward_func, layer)
        GradientAttribution.__init__(self, forward_func)
        self.fusion_layer = resolve_submodule(forward_func, fusion_layer, "fusion_layer")
        self.question_layer = resolve_submodule(forward_func, question_layer, "question_layer")

    @classmethod
    def from_adapter(cls, adapter: Any) -> QuestionMaskedGradCAM:
        """Builds it from an adapter's sites: the last convolution, the fusion output F
        and the word-embedding layer (e.g. an ``MLBAdapter``)."""
        sites = adapter.sites
        if sites.conv is None or sites.fusion is None:
            raise ValueError(
                "the adapter must name a convolutional layer and a fusion layer "
                "(conv_layer and fusion_layer of MLBAdapter)"
            )
        return cls(adapter.model, sites.conv, sites.fusion, sites.embedding)

    def neuron_sensitivity(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        additional_forward_args: Any = None,
        word_index: int | None = None,
        sensitivity: str = "sum",
    ) -> torch.Tensor:
        """Sensitivity of each fusion neuron to the question, (B, K).

        Args:
            inputs (Tensor or tuple of Tensor): As for :meth:`attribute`.
            additional_forward_args (Any, optional): As for :meth:`attribute`.
            word_index (int, optional): Only the columns of word ``word_index``.
            sensitivity (str): ``"sum"``, ``"l1"`` or ``"l2"`` (see the class docstring).

        Returns:
            Tensor: (B, K), larger means more sensitive.
        """
        _check_sensitivity(sensitivity)
        with _Recording(self) as record:
            record.run(inputs, additional_forward_args)
            return record.sensitivity(word_index, sensitivity).detach()

    @log_usage()
    def attribute(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        target: TargetType = None,
        top_n: int = 25,
        additional_forward_args: Any = None,
        sensitivity: str = "sum",
        word_index: int | None = None,
        contrast_inputs: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        relu_attributions: bool = True,
        contrast_additional_forward_args: Any = None,
    ) -> torch.Tensor:
        """Question-masked Grad-CAM at ``layer``.

        Args:
            inputs (Tensor or tuple of Tensor): The model's leading inputs.
            target (int, tuple, Tensor or list, optional): Output indices to explain,
                in Captum's format (e.g. the predicted answers, (B,)).
            top_n (int): Fusion neurons kept, 0 <= top_n <= K.
            additional_forward_args (Any, optional): Further forward arguments.
            sensitivity (str): ``"sum"``, ``"l1"`` or ``"l2"``.
            word_index (int, optional): Rank by one word's vector (per-word variant).
            contrast_inputs (optional): Inputs of another question about the same
                image; drop the neurons in its top-n (contrastive variant).
            relu_attributions (bool): ReLU on the map, as Grad-CAM does.
            contrast_additional_forward_args (Any, optional): Additional forward
                arguments of the contrasting question (for MLB: its
                ``(question, attention_mask)``); default: ``additional_forward_args``.

        Returns:
            Tensor: (B, 1, h, w), the layer's grid, like ``LayerGradCam``; upsample
            with ``LayerAttribution.interpolate``.
        """
        return self.sweep(
            inputs,
            target,
            [top_n],
            additional_forward_args,
            sensitivity,
            word_index,
            contrast_inputs,
            relu_attributions,
            contrast_additional_forward_args,
        )[top_n]

    def sweep(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        target: TargetType = None,
        top_ns: Sequence[int] = (10, 25, 50, 100, 200, 400, 1000),
        additional_forward_args: Any = None,
        sensitivity: str = "sum",
        word_index: int | None = None,
        contrast_inputs: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        relu_attributions: bool = True,
        contrast_additional_forward_args: Any = None,
    ) -> dict[int, torch.Tensor]:
        """:meth:`attribute` for several ``top_n`` from one forward and one batched backward.

        Values of ``top_ns`` above K are clipped to K (so the paper's list works on
        smaller fusion layers), duplicates merged.

        Returns:
            dict: ``top_n`` (after clipping) to its (B, 1, h, w) map.
        """
        _check_sensitivity(sensitivity)
        if isinstance(top_ns, int) or len(top_ns) == 0:
            raise ValueError(f"top_ns must be a non-empty sequence of ints, got {top_ns!r}")
        with _Recording(self) as record:
            record.run(inputs, additional_forward_args)
            width = record.fusion.shape[1]
            counts = check_top_ns(top_ns, width, clip=len(top_ns) > 1)
            scores = record.sensitivity(word_index, sensitivity).detach()
            masks = torch.stack([top_mask(scores, n) for n in counts])
            if contrast_inputs is not None:
                other_args = (
                    additional_forward_args
                    if contrast_additional_forward_args is None
                    else contrast_additional_forward_args
                )
                with _Recording(self) as contrast:
                    contrast.run(contrast_inputs, other_args)
                    other = contrast.sensitivity(word_index, sensitivity).detach()
                if other.shape != scores.shape:
                    raise ValueError(
                        "contrast_inputs must give fusion activations of shape "
                        f"{tuple(scores.shape)}, got {tuple(other.shape)}"
                    )
                masks = masks * (1 - torch.stack([top_mask(other, n) for n in counts]))
            cams = record.masked_grad_cam(target, masks, relu_attributions)
        return dict(zip(counts, cams.detach().unbind(0), strict=True))


class _Recording:
    """One forward pass with the layer, fusion and question outputs kept as graph nodes.

    The layer and question outputs are replaced by leaves with the same values, so
    gradients reach them even when the model's parameters are frozen. Hooks live
    only inside the ``with`` block.
    """

    def __init__(self, explainer: QuestionMaskedGradCAM) -> None:
        self.explainer = explainer
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> _Recording:
        explainer = self.explainer
        sites = {
            "layer": explainer.layer,
            "fusion": explainer.fusion_layer,
            "question": explainer.question_layer,
        }
        with contextlib.ExitStack() as stack:
            self.outputs = stack.enter_context(
                record_outputs(sites, as_leaves={"layer", "question"})
            )
            stack.enter_context(eval_mode(explainer.forward_func))
            stack.enter_context(torch.enable_grad())
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)

    def run(self, inputs, additional_forward_args) -> None:
        inputs = _format_tensor_into_tuples(inputs)
        args = _format_additional_forward_args(additional_forward_args) or ()
        check_finite(named_inputs(inputs, args))
        check_same_device(self.explainer.forward_func, named_inputs(inputs, args))
        self.output = self.explainer.forward_func(*inputs, *args)
        names = {"layer": "layer", "fusion": "fusion_layer", "question": "question_layer"}
        for key, name in names.items():
            if len(self.outputs[key]) != 1:
                raise ValueError(
                    f"{name} must run exactly once per forward pass, ran "
                    f"{len(self.outputs[key])} times"
                )
        self.layer, self.fusion, self.question = (self.outputs[k][0] for k in names)
        if self.fusion.dim() != 2:
            raise ValueError(
                f"fusion_layer must output (B, K) activations, got {tuple(self.fusion.shape)}"
            )
        if self.question.dim() not in (2, 3) or len(self.question) != len(self.fusion):
            raise ValueError(
                "question_layer must output (B, T, D) word vectors or a (B, D) vector with "
                f"the batch size of the fusion ({len(self.fusion)}), got "
                f"{tuple(self.question.shape)}"
            )
        if self.layer.dim() < 3:
            raise ValueError(f"layer must output a (B, C, ...) grid, got {tuple(self.layer.shape)}")

    def sensitivity(self, word_index: int | None, kind: str) -> torch.Tensor:
        """(B, K) sensitivity of the fusion neurons to the question (or one word)."""
        columns = torch.ones_like(self.question)
        if word_index is not None:
            if self.question.dim() != 3:
                raise ValueError("word_index needs question_layer to output (B, T, D) word vectors")
            length = self.question.shape[1]
            if isinstance(word_index, bool) or not isinstance(word_index, int):
                raise TypeError(f"word_index must be an int, got {type(word_index).__name__}")
            if not 0 <= word_index < length:
                raise ValueError(f"word_index must be in [0, {length}), got {word_index}")
            columns = torch.zeros_like(self.question)
            columns[:, word_index] = 1
        if kind == "sum":
            dummy = torch.zeros_like(self.fusion, requires_grad=True)
            (vjp,) = torch.autograd.grad(
                self.fusion, self.question, dummy, create_graph=True, allow_unused=True
            )
            if vjp is None:
                return torch.zeros_like(self.fusion)
            (scores,) = torch.autograd.grad(vjp, dummy, columns, retain_graph=True)
            return scores
        width = self.fusion.shape[1]
        basis = torch.eye(width, dtype=self.fusion.dtype, device=self.fusion.device)
        basis = basis[:, None, :].expand(width, *self.fusion.shape)
        (jacobian,) = torch.autograd.grad(
            self.fusion, self.question, basis, retain_graph=True, is_grads_batched=True
        )  # (K, B, ...q)
        rows = (jacobian * columns).flatten(2)
        scores = rows.abs().sum(dim=2) if kind == "l1" else rows.norm(dim=2)
        return scores.T

    def masked_grad_cam(self, target, masks: torch.Tensor, relu: bool) -> torch.Tensor:
        """Grad-CAM maps (N, B, 1, ...) for N masks (N, B, K) over the fusion neurons."""
        check_targets(target, self.output.shape[1])
        selected = _select_targets(self.output, target)
        total = selected.sum()
        full, to_fusion = torch.autograd.grad(
            total, (self.layer, self.fusion), retain_graph=True, allow_unused=True
        )
        if full is None:
            full = torch.zeros_like(self.layer)
        if to_fusion is None:
            to_fusion = torch.zeros_like(self.fusion)
        dropped = to_fusion.detach()[None] * (1 - masks)
        if len(masks) == 1:  # one mask: a plain backward, without vmap's overhead
            (through_dropped,) = torch.autograd.grad(
                self.fusion, self.layer, dropped[0], retain_graph=True, allow_unused=True
            )
            through_dropped = None if through_dropped is None else through_dropped[None]
        else:
            (through_dropped,) = torch.autograd.grad(
                self.fusion,
                self.layer,
                dropped,
                retain_graph=True,
                is_grads_batched=True,
                allow_unused=True,
            )
        grads = full[None] if through_dropped is None else full[None] - through_dropped
        weights = grads.mean(dim=tuple(range(3, grads.dim())), keepdim=True)
        cams = (weights * self.layer.detach()[None]).sum(dim=2, keepdim=True)
        return F.relu(cams) if relu else cams


def _check_sensitivity(sensitivity: str) -> None:
    if sensitivity not in SENSITIVITIES:
        raise ValueError(f"sensitivity must be one of {SENSITIVITIES}, got {sensitivity!r}")

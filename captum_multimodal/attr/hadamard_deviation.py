"""Visual and textual explanations from a Hadamard-product joint function (Kim & Zhang)."""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.common import _format_additional_forward_args, _format_tensor_into_tuples
from captum.attr._core.guided_backprop_deconvnet import ModifiedReluGradientAttribution
from captum.log import log_usage
from torch import nn

from captum_multimodal._utils.checks import check_finite, check_same_device, named_inputs
from captum_multimodal._utils.modules import eval_mode, record_outputs, resolve_submodule


class HadamardDeviation(ModifiedReluGradientAttribution):
    r"""Explains both inputs of a Hadamard joint function F = Q o V.

    Kim & Zhang, "Visual Explanations from Hadamard Product in Multimodal Deep
    Networks" (2017), eq. 2-3:

    .. math::
        \nabla_v = (V - F)\,\partial V / \partial I, \qquad
        \nabla_q = (Q - F)\,\partial Q / \partial q

    where I is the image, q the word vectors (the output of the word-embedding
    layer) and F is held constant (detached). Each is one vector-Jacobian product
    from its own root after a single forward pass: the visual one from V to I, the
    textual one from Q to q. Starting from Q keeps the path q -> attention -> V out
    of :math:`\nabla_q`, and starting from V keeps everything of Q out of
    :math:`\nabla_v`, exactly as two separate backward passes would.

    With ``guided=True`` (the paper's choice) every ``nn.ReLU`` module the gradient
    passes through uses the guided back-propagation rule (Springenberg et al.),
    applied with Captum's own :class:`~captum.attr.GuidedBackprop` hooks; in MLB
    models those are the ReLUs of the image backbone. ReLUs written as
    ``torch.relu`` calls are not modules and keep their plain gradient.

    Which Hadamard product is explained: the one whose factors the two layers
    output. In MLB the attention also contains a Hadamard product (per lattice
    location, one per glimpse); the paper explains the fusion product of eq. 6 (the
    layers that output Q and V right before the classifier), which is what
    :meth:`from_adapter` picks. To explain another site, pass the layers that
    output its two factors; each must run exactly once per forward pass.

    Differences from the authors' public Lua visualisation code, which users
    comparing with it should know: that code seeds the backward passes with
    F - V and F - Q (the opposite sign), lets the attention path leak into the
    textual gradient (one backward from both roots) and standardises with
    statistics of the whole tensor. This class follows the paper's eq. 2-3 and 9-11.

    The model runs in eval mode for the call (dropout and batch statistics would make
    the explanation random and update running statistics); its modes are restored.

    Args:
        forward_func (nn.Module): The model; called as
            ``forward_func(*inputs, *additional_forward_args)``.
        textual_layer (nn.Module or str): Outputs the textual vector Q (B, K).
        visual_layer (nn.Module or str): Outputs the visual vector V (B, K).
        embedding_layer (nn.Module or str): Outputs the word vectors q (B, T, D).
        guided (bool): Guided back-propagation through ReLU modules (default True);
            False gives the plain gradient.

    Examples:
        >>> from captum_multimodal.adapters import MLBAdapter
        >>> from captum_multimodal.models import MLB
        >>> model = MLB(vocab_size=25, num_answers=16).eval()
        >>> explainer = HadamardDeviation.from_adapter(MLBAdapter(model))
        >>> image, question = torch.rand(2, 3, 64, 64), torch.tensor([[5, 6, 7], [5, 6, 0]])
        >>> visual, textual = explainer.attribute(image, additional_forward_args=(question,))
        >>> visual.shape, textual.shape
        (torch.Size([2, 3, 64, 64]), torch.Size([2, 3, 32]))
    """

    def __init__(
        self,
        forward_func: nn.Module,
        textual_layer: nn.Module | str,
        visual_layer: nn.Module | str,
        embedding_layer: nn.Module | str,
        guided: bool = True,
    ) -> None:
        if not isinstance(forward_func, nn.Module):
            raise TypeError(
                f"forward_func must be an nn.Module (its layers are hooked), "
                f"got {type(forward_func).__name__}"
            )
        super().__init__(forward_func, use_relu_grad_output=False)
        self.textual_layer = resolve_submodule(forward_func, textual_layer, "textual_layer")
        self.visual_layer = resolve_submodule(forward_func, visual_layer, "visual_layer")
        self.embedding_layer = resolve_submodule(forward_func, embedding_layer, "embedding_layer")
        self.guided = bool(guided)

    @classmethod
    def from_adapter(cls, adapter: Any, guided: bool = True) -> HadamardDeviation:
        """Builds the explainer from an adapter's sites (e.g. an ``MLBAdapter``).

        Examples:
            >>> from captum_multimodal.adapters import MLBAdapter
            >>> from captum_multimodal.models import MLB
            >>> explainer = HadamardDeviation.from_adapter(MLBAdapter(MLB(25, 16)))
            >>> explainer.guided
            True
        """
        sites = adapter.sites
        return cls(adapter.model, sites.textual, sites.visual, sites.embedding, guided=guided)

    @log_usage()
    def attribute(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        additional_forward_args: Any = None,
        image_index: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Computes the visual and the textual explanation of a batch.

        Args:
            inputs (Tensor or tuple of Tensor): The model's leading inputs; the one
                at ``image_index`` is the image (B, C, H, W), float.
            additional_forward_args (Any, optional): Further forward arguments (for
                MLB: ``(question, attention_mask)``), passed after ``inputs``.
            image_index (int): Which of ``inputs`` is the image.

        Returns:
            tuple of Tensor: ``visual_attr`` (B, C, H, W), :math:`\nabla_v`, the shape
            of the image; ``textual_attr`` (B, T, D), :math:`\nabla_q`, one vector per
            word vector (padded positions get whatever gradient reaches them: zero when
            the model ignores padding, as MLB does; reduce with :func:`token_scores`).
        """
        inputs_tuple = _format_tensor_into_tuples(inputs)
        image = self._check_image(inputs_tuple, image_index)
        call_inputs = list(inputs_tuple)
        call_inputs[image_index] = image
        args = _format_additional_forward_args(additional_forward_args) or ()
        check_finite(named_inputs(inputs_tuple, args))
        check_same_device(self.model, named_inputs(inputs_tuple, args))
        sites = {"Q": self.textual_layer, "V": self.visual_layer, "q": self.embedding_layer}
        try:
            if self.guided:
                self.model.apply(self._register_hooks)
            with (
                record_outputs(sites, as_leaves={"q"}) as captured,
                eval_mode(self.model),
                torch.enable_grad(),
            ):
                self.forward_func(*call_inputs, *args)
                textual, visual, word_vectors = self._check_sites(captured)
                joint = (textual * visual).detach()
                visual_attr = _vector_jacobian(visual, image, visual - joint, "visual_layer")
                textual_attr = _vector_jacobian(
                    textual, word_vectors, textual - joint, "textual_layer"
                )
        finally:
            self._remove_hooks()
            self.backward_hooks = []
        return visual_attr, textual_attr

    def _check_image(self, inputs: tuple, image_index: int) -> torch.Tensor:
        if isinstance(image_index, bool) or not isinstance(image_index, int):
            raise TypeError(f"image_index must be an int, got {type(image_index).__name__}")
        if not -len(inputs) <= image_index < len(inputs):
            raise ValueError(
                f"image_index must index one of the {len(inputs)} inputs, got {image_index}"
            )
        image = inputs[image_index]
        if not isinstance(image, torch.Tensor) or not image.is_floating_point():
            raise TypeError(
                f"inputs[{image_index}] (the image) must be a float tensor, got "
                f"{getattr(image, 'dtype', type(image).__name__)}"
            )
        return image.detach().requires_grad_()

    @staticmethod
    def _check_sites(captured: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        names = {"Q": "textual_layer", "V": "visual_layer", "q": "embedding_layer"}
        for key, name in names.items():
            if len(captured[key]) != 1:
                raise ValueError(
                    f"{name} must run exactly once per forward pass, ran {len(captured[key])} "
                    "times; pass the layer of the one Hadamard site to explain"
                )
        textual, visual, word_vectors = captured["Q"][0], captured["V"][0], captured["q"][0]
        if not isinstance(textual, torch.Tensor) or not isinstance(visual, torch.Tensor):
            raise TypeError("textual_layer and visual_layer must output a single tensor each")
        if textual.shape != visual.shape:
            raise ValueError(
                "textual_layer and visual_layer outputs (Q and V) must have the same shape, "
                f"got {tuple(textual.shape)} and {tuple(visual.shape)}"
            )
        if word_vectors.dim() != 3 or len(word_vectors) != len(textual):
            raise ValueError(
                "embedding_layer must output word vectors of shape (B, T, D) with the batch "
                f"size of Q ({len(textual)}), got {tuple(word_vectors.shape)}"
            )
        return textual, visual, word_vectors


def _vector_jacobian(
    output: torch.Tensor, wrt: torch.Tensor, cotangent: torch.Tensor, layer: str
) -> torch.Tensor:
    (grad,) = torch.autograd.grad(
        output, wrt, grad_outputs=cotangent.detach(), retain_graph=True, allow_unused=True
    )
    if grad is None:
        raise ValueError(f"the output of {layer} does not depend on the input it is explained by")
    return grad


def standardize_image(visual_attr: torch.Tensor) -> torch.Tensor:
    """Eq. 9: per sample and channel, (x - mean) / std over the pixels.

    Uses the population standard deviation; a constant channel gives zeros.

    Args:
        visual_attr (Tensor): (B, C, H, W).

    Returns:
        Tensor: (B, C, H, W).

    Examples:
        >>> z = standardize_image(torch.arange(8.0).view(1, 2, 2, 2))
        >>> z.mean(dim=(2, 3)).abs().max() < 1e-6
        tensor(True)
    """
    if not isinstance(visual_attr, torch.Tensor) or visual_attr.dim() != 4:
        raise ValueError(
            "visual_attr must be a (B, C, H, W) tensor, "
            f"got {getattr(visual_attr, 'shape', type(visual_attr).__name__)}"
        )
    std, mean = torch.std_mean(visual_attr, dim=(2, 3), keepdim=True, correction=0)
    return torch.where(std > 0, (visual_attr - mean) / std.clamp_min(1e-30), 0.0)


def token_scores(
    textual_attr: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 10-11: the sum over D of |grad| per token, as z-scores over each question's tokens.

    Padding (``attention_mask == 0``) is left out of the mean and standard deviation
    (population) and scores 0. A question with one real token, or whose tokens all
    score the same, gets zeros, never NaN.

    Args:
        textual_attr (Tensor): (B, T, D), the textual explanation.
        attention_mask (Tensor, optional): (B, T), 1 for real tokens. Default: all real.

    Returns:
        Tensor: (B, T) z-scores.

    Examples:
        >>> attr = torch.tensor([[[1.0], [3.0], [0.0]]])
        >>> token_scores(attr, torch.tensor([[1, 1, 0]]))
        tensor([[-1.,  1.,  0.]])
    """
    if not isinstance(textual_attr, torch.Tensor) or textual_attr.dim() != 3:
        raise ValueError(
            "textual_attr must be a (B, T, D) tensor, "
            f"got {getattr(textual_attr, 'shape', type(textual_attr).__name__)}"
        )
    if attention_mask is None:
        attention_mask = torch.ones(textual_attr.shape[:2], device=textual_attr.device)
    elif attention_mask.shape != textual_attr.shape[:2]:
        raise ValueError(
            f"attention_mask must have shape {tuple(textual_attr.shape[:2])} (B, T), "
            f"got {tuple(attention_mask.shape)}"
        )
    real = attention_mask.to(textual_attr.dtype)
    magnitude = textual_attr.abs().sum(dim=2)
    count = real.sum(dim=1, keepdim=True).clamp_min(1)
    mean = (magnitude * real).sum(dim=1, keepdim=True) / count
    std = (((magnitude - mean) ** 2 * real).sum(dim=1, keepdim=True) / count).sqrt()
    z = torch.where(std > 0, (magnitude - mean) / std.clamp_min(1e-30), 0.0)
    return z.masked_fill(real == 0, 0.0)

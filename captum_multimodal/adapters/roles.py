"""Any transformer: the user declares what each attention module does."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from captum._utils.common import _format_additional_forward_args, _format_tensor_into_tuples
from torch import nn

from captum_multimodal._utils.checks import check_finite, check_same_device, named_inputs
from captum_multimodal._utils.modules import resolve_submodule
from captum_multimodal.adapters._recording import attention_calls, checked_attentions, explaining
from captum_multimodal.attr.relevancy_engine import AttentionEvent, AttentionRecording


class AttentionRolesAdapter:
    """Records the attention of any model whose attention modules the user names.

    The functions below get the model inputs as ``(*inputs, *additional_forward_args)``.
    The declared modules are hooked only during the call (removed also when it raises);
    the model runs in eval mode, eagerly, and gets its own modes back.

    Args:
        model: The model; it is not modified.
        roles: Attention module (or its dotted name) to its role: ``"a"``, self-attention
            of stream a; ``"a->b"``, queries of a attending to keys of b; a list of roles,
            one per call in forward order, for a module called several times (a shared
            cross-attention). A module returns ``(output, probabilities (B, H, S_q, S_k),
            ...)`` when called with ``output_attentions=True`` (transformers' eager
            attention modules do) or always. Events keep the call order; a module's
            ``layer`` (``start_layer``) is its place in ``roles``; the cross events of one
            module in one forward are updated together.
        streams: Function of the inputs returning ``{stream: {part: mask (B, S_part)}}``:
            a stream is its parts' positions concatenated in order, masks 1 for real
            tokens; every part is an output of the explanation, in this order.
        readout: ``(stream, position)``, the row the model's head reads; ``position`` an
            int or a function of the inputs returning a (B,) index.
        logits (optional): Function of the inputs running the model and returning the
            (B, C) logits explained; default ``model(*inputs, *args)`` (its ``logits``).
        one_way (bool): Encoder-decoder cross-attention (no update of the query stream's
            self-relevancy from the key stream).

    Examples:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> from captum_multimodal import CoAttentionRelevancy
        >>> config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=32, attn_implementation="eager")
        >>> model = BertForSequenceClassification(config)
        >>> adapter = AttentionRolesAdapter(
        ...     model,
        ...     roles={f"bert.encoder.layer.{i}.attention.self": "text" for i in range(2)},
        ...     streams=lambda ids: {"text": {"text": torch.ones_like(ids)}},
        ...     readout=("text", 0))
        >>> CoAttentionRelevancy(adapter).attribute(torch.tensor([[2, 5, 6, 3]])).shape
        torch.Size([1, 4])
    """

    def __init__(
        self,
        model: nn.Module,
        roles: Mapping[nn.Module | str, str | Sequence[str]],
        streams: Callable[..., Mapping[str, Mapping[str, torch.Tensor]]],
        readout: tuple[str, int | Callable[..., torch.Tensor]],
        logits: Callable[..., torch.Tensor] | None = None,
        one_way: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(roles, Mapping) or not roles:
            raise ValueError("roles must be a non-empty mapping of attention modules to roles")
        self.roles = {}
        for layer, role in roles.items():
            calls = [role] if isinstance(role, str) else list(role)
            if not calls or not all(isinstance(c, str) and c.count("->") <= 1 for c in calls):
                raise ValueError(f'roles must map to "a", "a->b" or a list of them, got {role!r}')
            self.roles[resolve_submodule(model, layer, "roles")] = [c.split("->") for c in calls]
        if not callable(streams):
            raise TypeError(f"streams must be a function of the inputs, got {streams!r}")
        if not isinstance(readout, tuple) or len(readout) != 2:
            raise ValueError(f"readout must be (stream, position), got {readout!r}")
        self.model, self.streams, self.readout, self.one_way = model, streams, readout, one_way
        self.logits = logits or self._default_logits

    def _default_logits(self, *args: Any) -> torch.Tensor:
        output = self.model(*args)
        return getattr(output, "logits", output)

    @contextlib.contextmanager
    def record(
        self, inputs: Any, additional_forward_args: Any = None
    ) -> Iterator[AttentionRecording]:
        """One forward pass; yields the recording (see the class docstring)."""
        inputs = _format_tensor_into_tuples(inputs)
        extra = tuple(_format_additional_forward_args(additional_forward_args) or ())
        check_finite(named_inputs(inputs, extra))
        check_same_device(self.model, named_inputs(inputs, extra))
        args = (*inputs, *extra)
        valid, parts = {}, {}
        for stream, masks in self.streams(*args).items():
            start = 0
            for part, mask in masks.items():
                if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
                    raise ValueError(f"streams must give (B, S) masks, got {part!r}: {mask!r}")
                parts[part] = (stream, slice(start, start + mask.shape[1]))
                start += mask.shape[1]
            valid[stream] = torch.cat(list(masks.values()), dim=1).bool()
        stream, position = self.readout
        if stream not in valid:
            raise ValueError(f"readout names stream {stream!r}, not one of {list(valid)}")
        reference = next(iter(valid.values()))
        if callable(position):
            position = position(*args)
        index = torch.as_tensor(position, device=reference.device).expand(len(reference))
        with explaining(self.model):
            with attention_calls(self.roles) as calls:
                logits = self.logits(*args)
            yield AttentionRecording(
                logits=logits,
                events=self._events(calls, valid),
                valid=valid,
                readout=(stream, index),
                parts=parts,
            )

    def _events(self, calls: list, valid: dict[str, torch.Tensor]) -> list[AttentionEvent]:
        if any(probs is None for _, probs in calls):  # a fused kernel computed no maps
            checked_attentions(None, self.model)
        layers = {module: i for i, module in enumerate(self.roles)}
        seen = {module: 0 for module in self.roles}
        events = []
        for module, probs in calls:
            declared = self.roles[module]
            if seen[module] >= len(declared):
                raise ValueError(
                    f"roles declares {len(declared)} call(s) of {type(module).__name__} "
                    f"(layer {layers[module]}) per forward; it was called more often"
                )
            query, key = (*declared[seen[module]], declared[seen[module]][0])[:2]
            seen[module] += 1
            if query not in valid or key not in valid:
                raise ValueError(f"roles name stream {query!r} or {key!r}, not in {list(valid)}")
            group = layers[module] if query != key else None
            events.append(AttentionEvent(query, key, probs, layers[module], group, self.one_way))
        missing = [i for module, i in layers.items() if seen[module] != len(self.roles[module])]
        if missing:
            raise ValueError(f"roles declares more calls of layers {missing} than the forward made")
        return events

"""The relevancy propagation rules of Chefer, Gur & Wolf (ICCV 2021), batched.

Adapters describe one forward pass as an :class:`AttentionRecording`: the attention
events in forward order (each a self- or cross-attention of named token streams), the
valid tokens of each stream, the row the model's head reads and how that row splits
into modalities. The engine knows nothing about model families.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class AttentionEvent:
    """One attention call: softmax probabilities (B, H, S_query, S_key) of queries in
    ``query`` attending to keys in ``key`` (the same stream for self-attention).

    ``layer`` numbers the model's layers (``start_layer`` skips by it); cross events
    with the same ``group`` are updated from the matrices as they were before the group.
    ``one_way`` marks encoder-decoder cross-attention (no update of the query stream's
    self-relevancy from the key stream).
    """

    query: str
    key: str
    probs: torch.Tensor
    layer: int
    group: int | None = None
    one_way: bool = False

    @property
    def is_self(self) -> bool:
        return self.query == self.key


@dataclasses.dataclass
class AttentionRecording:
    """What an adapter hands the engine after one forward pass.

    Attributes:
        logits: (B, C) model outputs whose selected entries are explained.
        events: Attention events in forward order, their ``probs`` in the autograd graph.
        valid: Stream name to its (B, S) bool mask of real (non-padding) tokens.
        readout: (stream name, (B,) index of the row the head reads).
        parts: Output name (e.g. ``"text"``, ``"image"``) to (stream, positions): a slice,
            or a (B, K) long tensor of each sample's positions, -1 where the output has
            no token (relevance 0; ViLT's patch grid, whose tokens come in random order).
        part_readouts: Output name to its own (stream, (B,) index) where a part is read
            from another row than ``readout`` (dual encoders: CLIP reads the text at its
            end-of-text token and the image at the vision [CLS] token).
    """

    logits: torch.Tensor
    events: list[AttentionEvent]
    valid: dict[str, torch.Tensor]
    readout: tuple[str, torch.Tensor]
    parts: dict[str, tuple[str, slice | torch.Tensor]]
    part_readouts: dict[str, tuple[str, torch.Tensor]] = dataclasses.field(default_factory=dict)


def weighted_attention(probs: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
    """Ā = mean over heads of (∇A ⊙ A) clamped at 0 (clamp before the mean); (B, Sq, Sk)."""
    if grad is None:
        return torch.zeros_like(probs[:, 0])
    return (grad * probs).clamp(min=0).mean(dim=1)


def normalize_residual(relevancy: torch.Tensor) -> torch.Tensor:
    """R̄ = I + rows of (R - I) divided by their sums; a zero-sum row stays zero."""
    eye = torch.eye(relevancy.shape[-1], dtype=relevancy.dtype, device=relevancy.device)
    residual = relevancy - eye
    sums = residual.sum(dim=-1, keepdim=True)
    safe = torch.where(sums == 0, torch.ones_like(sums), sums)
    return torch.where(sums == 0, torch.zeros_like(residual), residual / safe) + eye


def propagate(
    recording: AttentionRecording,
    grads: list[torch.Tensor | None],
    normalize: bool = True,
    contextualize_cross: bool = True,
    aggregate: bool = True,
    start_layer: int = 0,
) -> dict[tuple[str, str], torch.Tensor]:
    """Runs the relevancy updates over the recorded events.

    Args:
        recording: The adapter's recording.
        grads: ∂y/∂A per event (None where the event cannot reach the target).
        normalize: Row-normalise the self-relevancy residual inside the cross rule.
        contextualize_cross: Cross rule R^sq += R̄^ssᵀ Ā R̄^qq (False: R^sq += Ā).
        aggregate: Accumulate (R += Ā R); False replaces (R = Ā R).
        start_layer: Events of layers before it are skipped.

    Returns:
        dict: (query stream, key stream) to R (B, S_query, S_key).
    """
    streams = list(recording.valid)
    batch = len(recording.logits)
    reference = recording.logits
    relevancy = {}
    for s in streams:
        for q in streams:
            size_s, size_q = recording.valid[s].shape[1], recording.valid[q].shape[1]
            if s == q:
                eye = torch.eye(size_s, dtype=reference.dtype, device=reference.device)
                relevancy[s, q] = eye.expand(batch, size_s, size_s).clone()
            else:
                relevancy[s, q] = reference.new_zeros(batch, size_s, size_q)
    snapshot, snapshot_group = None, None
    for event, grad in zip(recording.events, grads, strict=True):
        if event.layer < start_layer:
            continue
        weighted = weighted_attention(event.probs.detach(), grad)
        s, q = event.query, event.key
        if event.is_self:
            for other in streams:
                update = weighted @ relevancy[s, other]
                relevancy[s, other] = relevancy[s, other] + update if aggregate else update
            continue
        if snapshot is None or event.group is None or event.group != snapshot_group:
            snapshot = {key: value.clone() for key, value in relevancy.items()}
            snapshot_group = event.group
        if contextualize_cross:
            left, right = snapshot[s, s], snapshot[q, q]
            if normalize:
                left, right = normalize_residual(left), normalize_residual(right)
            cross = left.transpose(1, 2) @ weighted @ right
        else:
            cross = weighted
        relevancy[s, q] = relevancy[s, q] + cross if aggregate else cross
        if not event.one_way:
            update = weighted @ snapshot[q, s]
            relevancy[s, s] = relevancy[s, s] + update if aggregate else update
    return relevancy


def read_out(
    recording: AttentionRecording, relevancy: dict[tuple[str, str], torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The read-out row, its own entry zeroed, padding zeroed, split into the parts."""
    outputs = {}
    for name, (key, positions) in recording.parts.items():
        stream, index = recording.part_readouts.get(name, recording.readout)
        rows = torch.arange(len(index), device=index.device)
        row = relevancy[stream, key][rows, index].clone()
        if key == stream:
            row[rows, index] = 0
        row = row * recording.valid[key].to(row.dtype)
        if isinstance(positions, slice):
            outputs[name] = row[:, positions]
        else:  # per-sample positions, -1 where the part has no token
            outputs[name] = row.gather(1, positions.clamp(min=0)) * (positions >= 0)
    return outputs

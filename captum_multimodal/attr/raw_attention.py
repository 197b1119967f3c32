"""Baseline: the last layer's attention, averaged over heads."""

from __future__ import annotations

import torch

from captum_multimodal.attr.attention_attribution import AttentionAttribution
from captum_multimodal.attr.relevancy_engine import AttentionRecording


def readout_streams(recording: AttentionRecording) -> list[str]:
    """Every stream a part of the output is read from (two for a dual encoder)."""
    streams = [recording.readout[0], *(s for s, _ in recording.part_readouts.values())]
    return list(dict.fromkeys(streams))


def self_events(recording: AttentionRecording, stream: str, start_layer: int = 0) -> list:
    """The self-attention events of ``stream``, from ``start_layer`` on, with their index."""
    events = [
        (event, index)
        for index, event in enumerate(recording.events)
        if event.is_self and event.query == stream and event.layer >= start_layer
    ]
    if not events:
        raise ValueError(f"the recording has no self-attention of the read-out stream {stream!r}")
    return events


def last_cross_events(recording: AttentionRecording, stream: str) -> dict[str, tuple]:
    """Per other stream, the last cross-attention event from ``stream`` to it (and its
    index); empty for a single-stream model."""
    return {
        event.key: (event, index)
        for index, event in enumerate(recording.events)
        if event.query == stream and not event.is_self
    }


def readout_relevancy(
    recording: AttentionRecording,
    rows: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> dict[tuple[str, str], torch.Tensor]:
    """Relevancy dict from, per read-out stream s, its own matrix (B, S, S) and the
    matrices from s to other streams (B, S, S_other); zeros for every other pair."""
    relevancy = {}
    for stream, (matrix, cross) in rows.items():
        batch, size = matrix.shape[0], matrix.shape[1]
        for other, mask in recording.valid.items():
            relevancy[stream, other] = (
                matrix
                if other == stream
                else cross.get(other, matrix.new_zeros(batch, size, mask.shape[1]))
            )
    return relevancy


class RawAttention(AttentionAttribution):
    """Raw attention: the last layer's head-mean attention, read-out row.

    The simplest baseline of Chefer et al.: no gradients, no propagation. Same
    adapters and outputs as :class:`CoAttentionRelevancy`. In a co-attention model
    (LXMERT) the read-out stream's last self-attention gives its own tokens and its
    last cross-attention to another stream gives that stream's tokens.

    Examples:
        >>> from transformers import BertConfig, BertForSequenceClassification
        >>> from captum_multimodal.adapters import EncoderAdapter
        >>> config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=2,
        ...                     num_attention_heads=2, intermediate_size=32)
        >>> model = BertForSequenceClassification(config).eval()
        >>> RawAttention(EncoderAdapter(model)).attribute(torch.tensor([[2, 5, 3]])).shape
        torch.Size([1, 3])
    """

    needs_gradients = False

    def relevancy(self, recording, grads):
        rows = {}
        for stream in readout_streams(recording):
            event, _ = self_events(recording, stream)[-1]
            cross = {
                key: cross_event.probs.detach().mean(dim=1)
                for key, (cross_event, _) in last_cross_events(recording, stream).items()
            }
            rows[stream] = (event.probs.detach().mean(dim=1), cross)
        return readout_relevancy(recording, rows)

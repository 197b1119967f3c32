"""Comparative attribution studies: methods x metrics over a data set, resumable, by chunk.

A :class:`Study` names a subject (a model and how to feed it a batch), a data set, the
methods and the metrics. :func:`run_study` explains the data set chunk by chunk; each
chunk's rows (one per example x method x metric) are written atomically to their own
part file, so a killed run restarted with the same arguments skips the finished chunks
and neither loses nor repeats rows. The parts are then merged into the study's tables,
figures and manifest (:mod:`captum_multimodal.studies.report`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from captum_multimodal.datasets import collate_vqa
from captum_multimodal.studies.report import FIELDS, part_path, write_report


@dataclasses.dataclass(frozen=True)
class Method:
    """An attribution method in a study.

    Attributes:
        name: Its column in the tables.
        explain: ``explain(subject, batch, target)`` returns a tensor (an image map
            (B, C, H, W), (B, H, W) or a coarser (B, h, w)) or a dict of such parts
            (``{"image": ..., "text": (B, T)}``).
        sign: Captum's visualisation sign: ``"absolute_value"`` (metrics score the
            magnitude) or ``"positive"`` (metrics score the positive part).
    """

    name: str
    explain: Callable[[Any, dict, torch.Tensor], Any]
    sign: str = "absolute_value"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A score of explanations.

    Attributes:
        name: Used in error messages and the manifest.
        score: ``score(subject, batch, explanation, target)`` returns a dict of (B,)
            tensors, one per reported metric name (NaN where undefined: an example
            with no object to point at, say). Names ``"<curve>@<step>"`` are drawn as
            curves. ``explanation`` is the method's dict of parts, already reduced by
            the method's sign.
    """

    name: str
    score: Callable[[Any, dict, dict, torch.Tensor], dict[str, torch.Tensor]]


@dataclasses.dataclass
class Study:
    """What a study runs.

    Attributes:
        name: Names the study in the tables and figures.
        subject: Has ``model`` (an ``nn.Module``) and ``logits(batch)`` (the model's
            (B, classes) output for a collated batch), and optionally
            ``prepare(batch)``, called once per chunk to add what every method needs;
            methods and metrics may use more of it (``captum_multimodal.studies.zoo``
            has the shipped models' subjects).
        dataset: A ``Dataset`` of examples; example ``i`` keeps id ``i`` in the tables.
        methods: The methods compared.
        metrics: The metrics applied to every method.
        collate: Turns a list of examples into a batch dict.
        batch_size: Examples per chunk (the unit of resuming).
        target: ``"predicted"`` explains the model's answer; any other string names
            the batch key holding the targets (``"answer"``: the true answer).
        seed: Seeds torch before each chunk (methods with randomness repeat exactly).
        arguments: What built the study (config or factory arguments), for the manifest.
    """

    name: str
    subject: Any
    dataset: Dataset
    methods: Sequence[Method]
    metrics: Sequence[Metric]
    collate: Callable[[list], dict] = collate_vqa
    batch_size: int = 16
    target: str = "predicted"
    seed: int = 0
    arguments: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError("methods must name at least one method")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"methods must have distinct names, got {names}")
        if not self.metrics:
            raise ValueError("metrics must name at least one metric")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        for method in self.methods:
            if method.sign not in ("absolute_value", "positive"):
                raise ValueError(
                    f'method {method.name!r}: sign must be "absolute_value" or "positive", '
                    f"got {method.sign!r}"
                )

    @property
    def chunks(self) -> int:
        """Number of chunks the data set is split into."""
        return -(-len(self.dataset) // self.batch_size)

    def chunk_indices(self, chunk: int) -> range:
        """Example ids of ``chunk``."""
        start = chunk * self.batch_size
        return range(start, min(start + self.batch_size, len(self.dataset)))


def reduce_by_sign(parts: dict[str, torch.Tensor], sign: str) -> dict[str, torch.Tensor]:
    """Magnitude (``"absolute_value"``) or positive part (``"positive"``) of every part."""
    return {k: v.abs() if sign == "absolute_value" else v.clamp(min=0) for k, v in parts.items()}


def as_parts(explanation: Any, method: str) -> dict[str, torch.Tensor]:
    """A method's output as a dict of detached parts (a bare tensor is the ``"image"`` part)."""
    if isinstance(explanation, torch.Tensor):
        explanation = {"image": explanation}
    if not isinstance(explanation, dict) or not all(
        isinstance(v, torch.Tensor) for v in explanation.values()
    ):
        raise TypeError(
            f"method {method!r} must return a tensor or a dict of tensors, "
            f"got {type(explanation).__name__}"
        )
    return {k: v.detach() for k, v in explanation.items()}


def to_device(batch: dict, device: torch.device) -> dict:
    """Moves every tensor of a batch dict to ``device``."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def load_batch(study: Study, indices: Sequence[int]) -> dict:
    """The collated examples, on the subject model's device, with what the subject's
    ``prepare`` (when it has one) adds once for every method of the chunk."""
    device = next(study.subject.model.parameters()).device
    batch = to_device(study.collate([study.dataset[i] for i in indices]), device)
    prepare = getattr(study.subject, "prepare", None)
    return prepare(batch) if prepare is not None else batch


def warm_up(study: Study, index: int) -> None:
    """Runs every method once on example ``index``, so that one-time set-up (lazy imports,
    first-call allocations) does not count in the first chunk's timings."""
    batch = load_batch(study, [index])
    with torch.no_grad():
        target = study.subject.logits(batch).argmax(dim=1)
    for method in study.methods:
        method.explain(study.subject, batch, target)


def explain_chunk(study: Study, chunk: int) -> tuple[list[dict], dict]:
    """Runs every method and metric on one chunk.

    Returns:
        tuple: the rows (``example``, ``method``, ``metric``, ``value``; a ``seconds``
        row per example and method holds the method's time per example), and the
        batch with each method's explanation parts (for figures).
    """
    indices = study.chunk_indices(chunk)
    batch = load_batch(study, indices)
    torch.manual_seed(study.seed + chunk)
    if study.target == "predicted":
        with torch.no_grad():
            target = study.subject.logits(batch).argmax(dim=1)
    else:
        target = batch[study.target]
    device = next(study.subject.model.parameters()).device
    rows, explanations = [], {}
    for method in study.methods:
        synchronize(device)
        start = time.perf_counter()
        parts = as_parts(method.explain(study.subject, batch, target), method.name)
        synchronize(device)
        seconds = (time.perf_counter() - start) / len(indices)
        explanations[method.name] = parts
        scored = reduce_by_sign(parts, method.sign)
        values = {"seconds": torch.full((len(indices),), seconds)}
        for metric in study.metrics:
            scores = metric.score(study.subject, batch, scored, target)
            clash = sorted(set(scores) & set(values))
            if clash:
                raise ValueError(
                    f"metric {metric.name!r} reports {clash}, already reported by another "
                    "metric (or the runner's seconds); give every reported value its own name"
                )
            values |= scores
        for name, value in values.items():
            if value.shape != (len(indices),):
                raise ValueError(
                    f"metric {name!r} must give one value per example ({len(indices)},), "
                    f"got {tuple(value.shape)}"
                )
            rows += [
                {"example": i, "method": method.name, "metric": name, "value": float(v)}
                for i, v in zip(indices, value.tolist(), strict=True)
            ]
    return rows, {"batch": batch, "target": target, "explanations": explanations}


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work (CUDA kernels run asynchronously), so that
    wall-clock timings charge each method its own work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fingerprint(study: Study) -> dict:
    """What the part files of a study depend on; a resumed run must match it."""
    return {
        "study": study.name,
        "examples": len(study.dataset),
        "batch_size": study.batch_size,
        "target": study.target,
        "seed": study.seed,
        "methods": [m.name for m in study.methods],
        "metrics": [m.name for m in study.metrics],
        "arguments": study.arguments,
    }


def claim_output(study: Study, out_dir: Path) -> None:
    """Records the study's :func:`fingerprint` in ``out_dir/parts``, or checks that the
    parts already there were written by the same study.

    Raises:
        ValueError: ``out_dir`` holds the parts of another study (other methods,
            metrics, data size or batch size): resuming would mix their rows in.
    """
    path = out_dir / "parts" / "study.json"
    mine = json.loads(json.dumps(fingerprint(study), default=str))
    if path.exists():
        theirs = json.loads(path.read_text())
        if theirs != mine:
            changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise ValueError(
                f"out_dir {str(out_dir)!r} holds the parts of another study (differs in "
                f"{changed}); use a new folder, or delete its parts/ to start over"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".study.json.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(mine, indent=2) + "\n")
    os.replace(temporary, path)


def write_part(path: Path, rows: list[dict]) -> None:
    """Writes rows to ``path`` atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def run_chunks(
    study: Study,
    out_dir: str | Path,
    chunks: Sequence[int] | None = None,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> dict | None:
    """Explains the chunks whose part file does not exist yet.

    Args:
        study: The study.
        out_dir: Output folder; parts go to ``out_dir/parts``.
        chunks: The chunks this process owns (default: all).
        progress: Show a tqdm bar over examples.
        on_chunk: Called with the number of examples after each chunk (progress
            reporting of other processes).

    Returns:
        Chunk 0's batch and explanations when this call computed it (for the example
        figure), else None.
    """
    out = Path(out_dir)
    claim_output(study, out)
    owned = range(study.chunks) if chunks is None else chunks
    todo = [c for c in owned if not part_path(out, c).exists()]
    done = sum(len(study.chunk_indices(c)) for c in owned) - sum(
        len(study.chunk_indices(c)) for c in todo
    )
    total = sum(len(study.chunk_indices(c)) for c in owned)
    bar = tqdm(total=total, initial=done, desc=study.name, disable=not progress, unit="example")
    first = None
    try:
        if todo:
            warm_up(study, study.chunk_indices(todo[0])[0])
        for chunk in todo:
            rows, shown = explain_chunk(study, chunk)
            write_part(part_path(out, chunk), rows)
            first = shown if chunk == 0 else first
            bar.update(len(study.chunk_indices(chunk)))
            if on_chunk is not None:
                on_chunk(len(study.chunk_indices(chunk)))
    finally:
        bar.close()
    return first


def run_study(study: Study, out_dir: str | Path, progress: bool = True) -> list[dict]:
    """Runs a study in this process and writes its outputs.

    Writes to ``out_dir``: ``parts/`` (one CSV per chunk), ``results.csv`` (long format:
    ``example, method, metric, value``; also ``results.parquet`` when pyarrow is
    installed), ``summary.md`` / ``summary.csv`` (mean and 95% confidence interval per
    method and metric), ``summary.png`` (one panel per metric), ``curves.png`` (when a
    metric reports curves), ``examples.png`` (the first examples' maps per method, when
    the data has images) and ``manifest.json`` (versions, seeds, arguments). Rerunning
    the same study into the same folder resumes it.

    Returns:
        list of dict: The summary rows (``method``, ``metric``, ``mean``, ``ci95``, ``n``).

    Examples:
        >>> import tempfile, torch
        >>> from captum_multimodal.studies import zoo
        >>> study = zoo.shipped_study(
        ...     "mlb", size=4, methods=["Saliency"], metrics=["pointing_game"])
        >>> with tempfile.TemporaryDirectory() as out:
        ...     rows = run_study(study, out, progress=False)
        >>> sorted({row["metric"] for row in rows})
        ['pointing_game', 'pointing_game_4px', 'seconds']
    """
    shown = run_chunks(study, out_dir, progress=progress)
    # a resumed run may not have computed chunk 0: explain it again for the figure
    return write_report(study, out_dir, shown or explain_chunk(study, 0)[1], world_size=1)

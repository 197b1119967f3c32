"""A finished study's outputs: merged results, summary with confidence intervals, figures,
manifest."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import math
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from matplotlib.figure import Figure

from captum_multimodal.visualization import attribution_grid

if TYPE_CHECKING:
    from captum_multimodal.studies.study import Study

FIELDS = ("example", "method", "metric", "value")
"""Columns of the long-format results table."""

SUMMARY_FIELDS = ("method", "metric", "mean", "ci95", "n")
"""Columns of the summary table."""


def part_path(out_dir: Path, chunk: int) -> Path:
    """The part file of ``chunk`` (named by chunk, not by the process that computed it)."""
    return out_dir / "parts" / f"chunk_{chunk:06d}.csv"


def read_rows(paths: list[Path]) -> list[dict]:
    """The rows of part files, values as floats, sorted by example, method, metric."""
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += [
                {**row, "example": int(row["example"]), "value": float(row["value"])}
                for row in csv.DictReader(handle)
            ]
    return sorted(rows, key=lambda r: (r["example"], r["method"], r["metric"]))


def summarize(rows: list[dict], methods: list[str]) -> list[dict]:
    """Mean and 95% confidence half-width (normal approximation, 1.96 standard errors)
    per method and metric over the examples where the metric is defined (not NaN)."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if not math.isnan(row["value"]):
            values[row["method"], row["metric"]].append(row["value"])
    metrics = sorted({metric for _, metric in values})
    summary = []
    for method in methods:
        for metric in metrics:
            sample = torch.tensor(values.get((method, metric), []), dtype=torch.float64)
            n = len(sample)
            mean = sample.mean().item() if n else math.nan
            ci = 1.96 * sample.std().item() / math.sqrt(n) if n > 1 else math.nan
            summary.append({"method": method, "metric": metric, "mean": mean, "ci95": ci, "n": n})
    return summary


def summary_markdown(study_name: str, summary: list[dict], n_examples: int) -> str:
    """A methods x metrics Markdown table of ``mean ± ci95`` (curve points left out)."""
    metrics = sorted({r["metric"] for r in summary if "@" not in r["metric"]})
    methods = list(dict.fromkeys(r["method"] for r in summary))
    cell = {(r["method"], r["metric"]): r for r in summary}
    lines = [
        f"**{study_name}**: {n_examples} examples; mean ± 95% CI over the examples where a "
        "metric is defined (n in the CSV).",
        "",
        "| method | " + " | ".join(metrics) + " |",
        "| --- |" + " ---: |" * len(metrics),
    ]
    for method in methods:
        entries = []
        for metric in metrics:
            row = cell[method, metric]
            if math.isnan(row["mean"]):
                entries.append("")
            elif math.isnan(row["ci95"]):
                entries.append(number(row["mean"]))
            else:
                entries.append(f"{number(row['mean'])} ± {number(row['ci95'])}")
        lines.append(f"| {method} | " + " | ".join(entries) + " |")
    return "\n".join(lines) + "\n"


def number(value: float) -> str:
    """Three decimals, or three significant digits for small values (timings).

    Examples:
        >>> number(0.41234), number(0.0012345), number(0.0)
        ('0.412', '0.00123', '0.000')
    """
    return f"{value:.3f}" if value == 0 or abs(value) >= 0.01 else f"{value:.3g}"


def summary_figure(study_name: str, summary: list[dict]) -> Figure:
    """One bar panel per metric (curve points left out), methods as bars with 95% CIs."""
    metrics = sorted({r["metric"] for r in summary if "@" not in r["metric"]})
    methods = list(dict.fromkeys(r["method"] for r in summary))
    cell = {(r["method"], r["metric"]): r for r in summary}
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure = Figure(figsize=(4.2 * columns, 0.35 * len(methods) * rows + 1.2 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for ax, metric in zip(axes, metrics, strict=False):
        means = [cell[m, metric]["mean"] for m in methods]
        errors = [0 if math.isnan(e) else e for e in (cell[m, metric]["ci95"] for m in methods)]
        ax.barh(range(len(methods)), means, xerr=errors, color="tab:blue", alpha=0.8)
        ax.set_yticks(range(len(methods)), methods, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in axes[len(metrics) :]:
        ax.axis("off")
    figure.suptitle(study_name, fontsize=10)
    figure.tight_layout()
    return figure


def curves_figure(study_name: str, summary: list[dict]) -> Figure | None:
    """Mean curves of the ``"<curve>@<step>"`` metrics, one panel per curve, or None."""
    curves: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in summary:
        if "@" in row["metric"] and not math.isnan(row["mean"]):
            name, step = row["metric"].split("@")
            curves[name][row["method"]].append((float(step), row["mean"]))
    if not curves:
        return None
    figure = Figure(figsize=(4 * len(curves), 3.2))
    axes = figure.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, by_method) in zip(axes, sorted(curves.items()), strict=True):
        for method, points in by_method.items():
            steps, means = zip(*sorted(points), strict=True)
            ax.plot(steps, means, marker="o", markersize=3, label=method)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("share removed / inserted", fontsize=8)
        ax.legend(fontsize=6)
    figure.suptitle(study_name, fontsize=10)
    figure.tight_layout()
    return figure


def examples_figure(study: Study, shown: dict, count: int = 4) -> Figure | None:
    """The first examples' image maps per method beside the image and its mask, or None
    when the data has no images or no method gives an image map."""
    batch = shown["batch"]
    maps = {
        name: parts["image"][:count].float().cpu()
        for name, parts in shown["explanations"].items()
        if "image" in parts and parts["image"].dim() in (3, 4)
    }
    if "image" not in batch or not maps:
        return None
    images = batch["image"][:count].cpu()
    captions = batch.get("question_text") or batch.get("caption_text")
    masks = batch.get("mask")
    signs = {m.name: m.sign for m in study.methods}
    return attribution_grid(
        images,
        maps,
        captions[:count] if captions else None,
        masks[:count].cpu() if masks is not None else None,
        signs,
    )


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a study's numbers depend on."""
    found = {"python": platform.python_version()}
    for package in ("captum-multimodal", "torch", "captum", "transformers", "numpy"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_report(study: Study, out_dir: str | Path, shown: dict, world_size: int = 1) -> list[dict]:
    """Merges the part files of a complete study and writes its tables, figures and
    manifest (see :func:`~captum_multimodal.studies.study.run_study`).

    Raises:
        RuntimeError: Some chunk has no part file yet.
    """
    out = Path(out_dir)
    missing = [c for c in range(study.chunks) if not part_path(out, c).exists()]
    if missing:
        raise RuntimeError(
            f"study {study.name!r} is incomplete: chunks {missing[:5]} have no part file in "
            f"{out / 'parts'}; rerun the same command to finish it"
        )
    rows = read_rows([part_path(out, c) for c in range(study.chunks)])
    write_csv(out / "results.csv", FIELDS, rows)
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        pass
    else:
        table = pyarrow.Table.from_pylist(rows)
        pyarrow.parquet.write_table(table, out / "results.parquet")
    summary = summarize(rows, [m.name for m in study.methods])
    write_csv(out / "summary.csv", SUMMARY_FIELDS, summary)
    (out / "summary.md").write_text(summary_markdown(study.name, summary, len(study.dataset)))
    summary_figure(study.name, summary).savefig(out / "summary.png", dpi=110)
    curves = curves_figure(study.name, summary)
    if curves is not None:
        curves.savefig(out / "curves.png", dpi=110)
    examples = examples_figure(study, shown)
    if examples is not None:
        examples.savefig(out / "examples.png", dpi=110)
    manifest: dict[str, Any] = {
        "study": study.name,
        "examples": len(study.dataset),
        "chunks": study.chunks,
        "batch_size": study.batch_size,
        "seed": study.seed,
        "target": study.target,
        "methods": [m.name for m in study.methods],
        "metrics": [m.name for m in study.metrics],
        "arguments": study.arguments,
        "world_size": world_size,
        "device": str(next(study.subject.model.parameters()).device),
        "versions": versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return summary


def write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    """Writes dict rows to a CSV file with the given columns."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)

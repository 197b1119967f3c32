"""The demo: a comparative study of every shipped model with every applicable method."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch

from captum_multimodal.models.tensor_fusion import run_tensor_fusion_toy
from captum_multimodal.studies import zoo
from captum_multimodal.studies.study import Study, load_batch, run_study

DEMO_STUDIES = tuple(zoo.SHIPPED)
"""The demo's studies: one per shipped model
(:func:`~captum_multimodal.studies.zoo.shipped_study`)."""

EXTRAS = ("tensor_fusion",)
"""Demo parts that are not a study of a shipped model: ``"tensor_fusion"`` trains the
tensor-fusion toy classifier (view 1 decides the label) with no normalisation, VBN and
IBN for a few seconds and tabulates which subsets of views the head and the centred
decomposition credit."""


def run_demo(
    out_dir: str | Path,
    n_examples: int = 64,
    seed: int = 2,
    device: str | torch.device = "cpu",
    progress: bool = True,
    models: Sequence[str] | None = None,
) -> dict[str, list[dict]]:
    """Runs the study of every shipped model on ``n_examples`` fresh synthetic questions.

    Each study (:mod:`captum_multimodal.studies.zoo`) explains the model's predicted
    answer with every method that applies to it (ours, Captum's, the attention
    baselines) and scores each with every metric that applies (pointing game, energy
    pointing game, key-token rank, deletion/insertion, token perturbation). Each study
    writes its own folder ``out_dir/<model>/`` (see
    :func:`~captum_multimodal.studies.study.run_study`); ``out_dir/summary.md`` gathers
    the summary tables with each model's accuracy and wall time. Reruns resume.

    Args:
        out_dir: Output folder.
        n_examples (int): Questions per study (data ``seed`` is not used in training).
        seed (int): Data seed.
        device: Where the models run.
        progress (bool): Show progress bars.
        models (sequence of str, optional): Keys of :data:`DEMO_STUDIES` and names in
            :data:`EXTRAS` (default all).

    Returns:
        dict: Model name to its summary rows.
    """
    names = [*DEMO_STUDIES, *EXTRAS] if models is None else list(models)
    unknown = [n for n in names if n not in DEMO_STUDIES and n not in EXTRAS]
    if unknown:
        raise ValueError(f"models must be among {sorted([*DEMO_STUDIES, *EXTRAS])}, got {unknown}")
    if "clip" in names and (n_examples < 2 or n_examples % 2):
        raise ValueError(
            f"n_examples must be even when the CLIP study runs (two captions per image), "
            f"got {n_examples}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections, summaries = [], {}
    for name in [n for n in names if n in DEMO_STUDIES]:
        start = time.perf_counter()
        study = zoo.shipped_study(name, size=n_examples, seed=seed, device=str(device))
        summaries[name] = run_study(study, out / name, progress=progress)
        seconds = time.perf_counter() - start
        answered = (
            f"accuracy on these questions: {accuracy(study):.3f}; "
            if "answer" in study.dataset[0]
            else ""
        )
        sections.append(
            f"## {study.name}\n\n{answered}"
            f"study wall time {seconds:.1f} s; figures in `{name}/`.\n\n"
            + (out / name / "summary.md").read_text()
        )
    if "tensor_fusion" in names:
        start = time.perf_counter()
        run_tensor_fusion_toy(
            out / "tensor_fusion",
            datasets=["1"],
            n_train=600,
            n_test=300,
            epochs=6,
            progress=progress,
        )
        sections.append(
            f"## Tensor fusion (toy data, label from view 1)\n\n"
            f"{time.perf_counter() - start:.1f} s; bar charts in `tensor_fusion/`.\n\n"
            + (out / "tensor_fusion" / "table.md").read_text()
        )
    (out / "summary.md").write_text("# captum-mm demo\n\n" + "\n".join(sections))
    return summaries


@torch.no_grad()
def accuracy(study: Study) -> float:
    """Share of the study's questions the model answers right."""
    correct = 0
    for chunk in range(study.chunks):
        batch = load_batch(study, study.chunk_indices(chunk))
        correct += int((study.subject.logits(batch).argmax(dim=1) == batch["answer"]).sum())
    return correct / len(study.dataset)

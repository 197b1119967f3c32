"""The demo: a comparative study of every shipped model with every applicable method."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from captum_multimodal.studies import zoo
from captum_multimodal.studies.study import Study, load_batch, run_study

DEMO_STUDIES: dict[str, Callable[..., Study]] = {
    "mlb": zoo.mlb_study,
    "visual_bert": zoo.visual_bert_study,
}
"""The demo's studies: shipped model name to its study factory."""


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
        models (sequence of str, optional): Keys of :data:`DEMO_STUDIES` (default all).

    Returns:
        dict: Model name to its summary rows.
    """
    names = list(DEMO_STUDIES) if models is None else list(models)
    unknown = [n for n in names if n not in DEMO_STUDIES]
    if unknown:
        raise ValueError(f"models must be among {sorted(DEMO_STUDIES)}, got {unknown}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections, summaries = [], {}
    for name in names:
        start = time.perf_counter()
        study = DEMO_STUDIES[name](size=n_examples, seed=seed, device=str(device))
        summaries[name] = run_study(study, out / name, progress=progress)
        seconds = time.perf_counter() - start
        sections.append(
            f"## {study.name}\n\naccuracy on these questions: {accuracy(study):.3f}; "
            f"study wall time {seconds:.1f} s; figures in `{name}/`.\n\n"
            + (out / name / "summary.md").read_text()
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

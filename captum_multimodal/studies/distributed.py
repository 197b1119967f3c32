"""A study over several processes, on one node or several: ``torch.distributed`` under
``torchrun``.

Every process builds the study from the same config, explains its share of the chunks
(chunk ``c`` belongs to rank ``c % world_size``) and writes each chunk's rows to the
chunk's own part file, exactly as a single process does. After a barrier, rank 0 merges
the parts into the same outputs a single-process run writes. Part files are named by
chunk, not by rank, so a rerun resumes from them with any number of processes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from captum_multimodal.studies.config import load_study
from captum_multimodal.studies.report import part_path, write_report
from captum_multimodal.studies.study import Study, explain_chunk, run_chunks, run_study


def shard(chunks: int, rank: int, world_size: int) -> list[int]:
    """The chunks rank ``rank`` of ``world_size`` explains: every chunk exactly once
    across ranks, none repeated to even out the shards.

    Examples:
        >>> [shard(5, rank, 2) for rank in range(2)]
        [[0, 2, 4], [1, 3]]
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return list(range(rank, chunks, world_size))


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def default_backend() -> str:
    """``"nccl"`` when CUDA is there, ``"gloo"`` otherwise."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def run_distributed(
    config: str | Path, out_dir: str | Path, backend: str | None = None, progress: bool = True
) -> list[dict] | None:
    """Runs the study of a TOML config across the processes ``torchrun`` started.

    One process per device: with CUDA, rank r uses ``cuda:LOCAL_RANK`` (set as the
    current device before the study is built, so a config's ``device = "cuda"`` means
    each rank's own GPU) and the backend is nccl; otherwise the CPU and gloo. Without
    ``torchrun`` (``WORLD_SIZE`` unset or 1) it is :func:`run_study` in this process.

    Args:
        config: The study's TOML file (:mod:`captum_multimodal.studies.config`).
        out_dir: The output folder, shared by all ranks (a shared file system on
            several nodes).
        backend (str, optional): ``"gloo"`` or ``"nccl"``; default :func:`default_backend`.
        progress (bool): One progress bar, on rank 0, over the whole study (it counts
            the part files of all ranks each time rank 0 finishes a chunk).

    Returns:
        The summary rows on rank 0, None on the other ranks.

    Raises:
        ValueError: The backend is not available, there are more processes than
            examples, or the ranks read different configs.
    """
    if not launched_by_torchrun():
        return run_study(load_study(config), out_dir, progress=progress)
    backend = backend or default_backend()
    available = {"gloo": dist.is_gloo_available(), "nccl": dist.is_nccl_available()}
    if not available.get(backend, False):
        usable = sorted(name for name, ok in available.items() if ok)
        raise ValueError(f"backend {backend!r} is not available here; use one of {usable}")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    try:
        return _run_rank(config, Path(out_dir), progress)
    finally:
        dist.destroy_process_group()


def _run_rank(config: str | Path, out: Path, progress: bool) -> list[dict] | None:
    rank, world_size = dist.get_rank(), dist.get_world_size()
    digest = hashlib.sha256(Path(config).read_bytes()).hexdigest()
    digests: list[str | None] = [None] * world_size
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise ValueError(
            f"the ranks read different configs (sha256 {sorted(set(digests))}); every rank "
            "must see the same config file"
        )
    study = load_study(config)
    if world_size > len(study.dataset):
        raise ValueError(
            f"world size {world_size} is larger than the study's {len(study.dataset)} examples; "
            "start fewer processes"
        )
    bar = None
    if rank == 0:
        bar = tqdm(total=len(study.dataset), desc=study.name, disable=not progress)
    try:
        shown = run_chunks(
            study,
            out,
            chunks=shard(study.chunks, rank, world_size),
            progress=False,
            on_chunk=(lambda _: _show_done(bar, study, out)) if bar is not None else None,
        )
        dist.barrier()
    finally:
        if bar is not None:
            _show_done(bar, study, out)
            bar.close()
    if rank != 0:
        return None
    return write_report(study, out, shown or explain_chunk(study, 0)[1], world_size=world_size)


def _show_done(bar: tqdm, study: Study, out: Path) -> None:
    bar.n = sum(
        len(study.chunk_indices(c)) for c in range(study.chunks) if part_path(out, c).exists()
    )
    bar.refresh()

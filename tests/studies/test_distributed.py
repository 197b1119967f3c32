"""The study runner under torchrun (gloo on CPU): the same rows as one process, resume
after a killed rank with another world size, sharding."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from captum_multimodal.studies.config import load_study
from captum_multimodal.studies.distributed import shard
from captum_multimodal.studies.study import run_study

CONFIG = """
name = "shipped MLB"
batch_size = 2
[subject]
factory = "captum_multimodal.studies.zoo:MLBSubject"
[dataset]
factory = "captum_multimodal.datasets:SyntheticVQA"
size = 9
seed = 6
[[methods]]
factory = "{method_factory}"
name = "Saliency"
[[methods]]
factory = "captum_multimodal.studies.zoo:method"
name = "HadamardDeviation"
[[metrics]]
factory = "captum_multimodal.studies.zoo:metric"
name = "pointing_game"
[[metrics]]
factory = "captum_multimodal.studies.zoo:metric"
name = "key_token"
"""

FLAKY = """
import os
from captum_multimodal.studies import zoo
from captum_multimodal.studies.study import Method

def method(name):
    base = zoo.method(name)
    calls = []

    def explain(subject, batch, target):
        calls.append(1)
        # rank 1 dies in its second chunk (after the warm-up and its first chunk)
        if os.environ.get("FLAKY") == "1" and os.environ.get("RANK") == "1" and len(calls) == 3:
            os._exit(3)
        return base.explain(subject, batch, target)

    return Method(base.name, explain, base.sign)
"""


def write_config(folder: Path, method_factory="captum_multimodal.studies.zoo:method") -> Path:
    path = folder / "study.toml"
    path.write_text(CONFIG.format(method_factory=method_factory))
    return path


def torchrun(config: Path, out: Path, processes: int, env=None, check=True):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            "-m",
            "captum_multimodal.studies",
            "run",
            str(config),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=check,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=300,
    )


def rows(path: Path, keep_seconds=False):
    with open(path, newline="") as handle:
        return [r for r in csv.DictReader(handle) if keep_seconds or r["metric"] != "seconds"]


@pytest.mark.parametrize("examples", [1, 5, 8, 9, 10])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_every_chunk_exactly_once(examples, world_size):
    chunks = -(-examples // 2)
    owned = [c for rank in range(world_size) for c in shard(chunks, rank, world_size)]
    assert sorted(owned) == list(range(chunks))
    with pytest.raises(ValueError, match="rank"):
        shard(chunks, world_size, world_size)


def test_two_processes_give_the_single_process_rows_and_resume_after_a_killed_rank(tmp_path):
    config = write_config(tmp_path)
    run_study(load_study(config), tmp_path / "single", progress=False)

    result = torchrun(config, tmp_path / "two", 2)
    assert "| Saliency |" in result.stdout
    assert rows(tmp_path / "two" / "results.csv") == rows(tmp_path / "single" / "results.csv")
    summary = (tmp_path / "two" / "summary.csv").read_text().splitlines()
    single = (tmp_path / "single" / "summary.csv").read_text().splitlines()
    assert [r for r in summary if "seconds" not in r] == [r for r in single if "seconds" not in r]
    assert '"world_size": 2' in (tmp_path / "two" / "manifest.json").read_text()

    # rank 1 dies after its first chunk; rerun the same study in one process
    (tmp_path / "flaky.py").write_text(FLAKY)
    flaky = write_config(tmp_path, method_factory="flaky:method")
    env = {"PYTHONPATH": str(tmp_path), "FLAKY": "1"}
    crashed = torchrun(flaky, tmp_path / "resumed", 2, env=env, check=False)
    assert crashed.returncode != 0
    parts = sorted(p.name for p in (tmp_path / "resumed" / "parts").glob("chunk_*.csv"))
    assert "chunk_000001.csv" in parts and "chunk_000003.csv" not in parts
    assert not (tmp_path / "resumed" / "results.csv").exists()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "captum_multimodal.studies",
            "run",
            str(flaky),
            "--out",
            str(tmp_path / "resumed"),
            "--quiet",
        ],
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        timeout=300,
    )
    resumed = rows(tmp_path / "resumed" / "results.csv", keep_seconds=True)
    assert len({(r["example"], r["method"], r["metric"]) for r in resumed}) == len(resumed)
    assert rows(tmp_path / "resumed" / "results.csv") == rows(tmp_path / "single" / "results.csv")


def test_more_processes_than_examples_is_a_clear_error(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text(write_config(tmp_path).read_text().replace("size = 9", "size = 1"))
    result = torchrun(config, tmp_path / "out", 2, check=False)
    assert result.returncode != 0
    assert "world size 2 is larger than the study's 1 examples" in result.stderr


def _rank_with_its_own_config(rank, configs, out, port, reports):
    import torch.distributed as dist

    from captum_multimodal.studies.distributed import _run_rank

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        _run_rank(configs[rank], Path(out), progress=False)
    except ValueError as error:
        Path(reports[rank]).write_text(str(error))
    finally:
        dist.destroy_process_group()


def test_ranks_that_read_different_configs_are_stopped(tmp_path):
    import socket

    import torch.multiprocessing

    first = write_config(tmp_path)
    second = tmp_path / "other.toml"
    second.write_text(first.read_text().replace("size = 9", "size = 8"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reports = [str(tmp_path / f"rank{r}.txt") for r in range(2)]
    torch.multiprocessing.spawn(
        _rank_with_its_own_config,
        args=([str(first), str(second)], str(tmp_path / "out"), port, reports),
        nprocs=2,
    )
    for report in reports:
        assert "the ranks read different configs" in Path(report).read_text()
    assert not (tmp_path / "out" / "parts").exists()


def test_an_unavailable_backend_is_named(tmp_path, monkeypatch):
    from captum_multimodal.studies.distributed import run_distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr("torch.distributed.is_nccl_available", lambda: False)
    with pytest.raises(ValueError, match="backend 'nccl' is not available"):
        run_distributed(write_config(tmp_path), tmp_path / "out", backend="nccl")

"""Study throughput with 1 and 2 processes (torchrun, gloo), side by side in one run.

The study: the shipped MLB on synthetic questions with HadamardDeviation, Saliency and
LayerGradCam, scored by the pointing game. Beside it, the model's own forward+backward
throughput with the same split of the cores (one process with all threads; two
processes with one thread each), so the scaling the model itself allows shows.

    python benchmarks/bench_study.py [--examples 256]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
name = "throughput"
batch_size = 16
[subject]
factory = "captum_multimodal.studies.zoo:MLBSubject"
[dataset]
factory = "captum_multimodal.datasets:SyntheticVQA"
size = {examples}
seed = 9
[[methods]]
factory = "captum_multimodal.studies.zoo:method"
name = "HadamardDeviation"
[[methods]]
factory = "captum_multimodal.studies.zoo:method"
name = "Saliency"
[[methods]]
factory = "captum_multimodal.studies.zoo:method"
name = "LayerGradCam"
[[metrics]]
factory = "captum_multimodal.studies.zoo:metric"
name = "pointing_game"
"""

MODEL_ONLY = """
import sys, time, torch
from captum_multimodal.datasets import SyntheticVQA, collate_vqa
from captum_multimodal.models import load_pretrained
rank, world, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
model = load_pretrained("mlb")
data = SyntheticVQA(n, seed=9)
batches = [collate_vqa([data[i] for i in range(s, min(s + 16, n))]) for s in range(0, n, 16)]
mine = batches[rank::world]
start = time.perf_counter()
for b in mine:
    x = b["image"].requires_grad_()
    model(x, b["question"], b["attention_mask"]).max(1).values.sum().backward()
print(time.perf_counter() - start)
"""


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, **env})
    return time.perf_counter() - start


def model_only(examples: int, world: int, threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MODEL_ONLY, str(r), str(world), str(examples)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for r in range(world)
    ]
    return max(float(p.communicate()[0]) for p in processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=256)
    args = parser.parse_args()
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "study.toml"
        config.write_text(CONFIG.format(examples=args.examples))
        one = timed(
            [
                sys.executable,
                "-m",
                "captum_multimodal.studies",
                "run",
                str(config),
                "--out",
                f"{folder}/one",
                "--quiet",
            ],
            {"OMP_NUM_THREADS": str(cores)},
        )
        two = timed(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node=2",
                "-m",
                "captum_multimodal.studies",
                "run",
                str(config),
                "--out",
                f"{folder}/two",
                "--quiet",
            ],
            {"OMP_NUM_THREADS": str(max(1, cores // 2))},
        )
    own_one = model_only(args.examples, 1, cores)
    own_two = model_only(args.examples, 2, max(1, cores // 2))
    print(f"{cores} cores, {args.examples} examples, 3 methods; wall time includes start-up\n")
    print("| | 1 process | 2 processes (torchrun) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| study, examples/s | {args.examples / one:.1f} | {args.examples / two:.1f} "
        f"| {one / two:.2f}x |"
    )
    print(
        f"| the model's own fwd+bwd, examples/s | {args.examples / own_one:.0f} "
        f"| {args.examples / own_two:.0f} | {own_one / own_two:.2f}x |"
    )


if __name__ == "__main__":
    main()

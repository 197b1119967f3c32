"""The ``captum-mm`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from captum_multimodal.studies.demo import run_demo

    start = time.perf_counter()
    run_demo(
        args.out,
        n_examples=args.examples,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        models=args.models,
    )
    print((Path(args.out) / "summary.md").read_text())
    print(f"{time.perf_counter() - start:.1f} s; results and figures in {args.out}/")
    return 0


def _study(args: argparse.Namespace) -> int:
    from captum_multimodal.studies.distributed import run_distributed

    start = time.perf_counter()
    summary = run_distributed(args.config, args.out, backend=args.backend, progress=not args.quiet)
    if summary is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    print((Path(args.out) / "summary.md").read_text())
    print(f"{time.perf_counter() - start:.1f} s; results and figures in {args.out}/")
    return 0


def _train(args: argparse.Namespace) -> int:
    from captum_multimodal.models import load_pretrained, save_checkpoint
    from captum_multimodal.models.training import (
        default_mlb_config,
        train_mlb,
        train_visual_bert,
    )
    from captum_multimodal.models.visual_bert import visual_bert_config

    start = time.perf_counter()
    common = {"images": args.images, "eval_size": args.eval_size}
    if args.steps is not None:
        common["steps"] = args.steps
    common |= {"seed": args.seed, "progress": not args.quiet}
    if args.model == "mlb":
        model, metrics = train_mlb(device=args.device, **common)
        config = default_mlb_config()
    elif args.model == "clip":
        from captum_multimodal.models.clip import clip_config, train_clip

        model, metrics = train_clip(device=args.device, **common)
        config = clip_config()
    elif args.model == "lxmert":
        from captum_multimodal.models.lxmert import lxmert_config, train_lxmert

        model, metrics = train_lxmert(load_pretrained("mlb").backbone, **common)
        config = lxmert_config()
    else:
        backbone = load_pretrained("mlb").backbone
        model, metrics = train_visual_bert(backbone, **common)
        config = visual_bert_config()
    metrics["train_seconds"] = time.perf_counter() - start
    save_checkpoint(model, args.out, config, metrics)
    for name, value in metrics.items():
        print(f"{name}: {value:.4f}")
    print(f"saved {args.out}")
    return 0


def _tensor_fusion_toy(args: argparse.Namespace) -> int:
    from captum_multimodal.models.tensor_fusion import run_tensor_fusion_toy

    start = time.perf_counter()
    run_tensor_fusion_toy(
        args.out,
        datasets=args.datasets,
        n_train=args.train,
        n_test=args.test,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.quiet,
    )
    print((Path(args.out) / "table.md").read_text())
    print(f"{time.perf_counter() - start:.1f} s; table, beta.png and shares.png in {args.out}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``captum-mm`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="captum-mm",
        description="Explain multimodal PyTorch models with Captum-style attribution methods.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="a comparative study of every shipped model and method on synthetic questions",
        description=(
            "Runs the study of every shipped model (MLB, VisualBERT, ...) on fresh synthetic "
            "VQA questions: every applicable attribution method (ours, Captum's, the attention "
            "baselines), scored by pointing game, energy pointing game, key-token rank, "
            "deletion/insertion and token perturbation. Writes DIR/<model>/ (results, summary, "
            "figures, manifest) and DIR/summary.md. Offline, a few minutes on two CPU cores."
        ),
    )
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    demo.add_argument("--examples", type=int, default=64, help="questions per model (default: 64)")
    demo.add_argument(
        "--seed", type=int, default=2, help="data seed (default: 2, unseen in training)"
    )
    demo.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    demo.add_argument(
        "--models", nargs="+", default=None, help="shipped models to study (default: all)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)

    study = commands.add_parser(
        "study",
        aliases=["run"],
        help="run a comparative study declared in a TOML config; resumable",
        description=(
            "Runs the attribution methods of a study over its data set and scores them with its "
            "metrics. Writes results.csv (one row per example x method x metric), summary.md/csv "
            "(mean and 95% CI), summary.png, curves.png, examples.png and manifest.json. "
            "Rerunning the same command into the same folder resumes an interrupted study. "
            "The config format is described in captum_multimodal.studies.config. Launched by "
            "torchrun (torchrun --nproc_per_node=N -m captum_multimodal.studies run CONFIG --out "
            "DIR) the examples are sharded over the processes (gloo on CPU, nccl on GPU) and "
            "rank 0 merges the results; a rerun resumes with any number of processes."
        ),
    )
    study.add_argument("config", help="TOML file naming the study's factories")
    study.add_argument("--out", default="study_out", help="output folder (default: study_out)")
    study.add_argument(
        "--backend",
        choices=["gloo", "nccl"],
        default=None,
        help="torch.distributed backend under torchrun (default: nccl with CUDA, else gloo)",
    )
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    study.set_defaults(run=_study)

    train = commands.add_parser(
        "train",
        help="train a reference model on the synthetic data",
        description="Trains a reference model on synthetic data and saves a checkpoint.",
    )
    train.add_argument(
        "model",
        choices=["mlb", "visual_bert", "clip", "lxmert"],
        help="mlb: the MLB VQA model; visual_bert: a Hugging Face VisualBERT on the shipped "
        "MLB's grid features; clip: a tiny Hugging Face CLIP on one-object captions; "
        "lxmert: a Hugging Face LXMERT on the shipped MLB's grid cells as boxes",
    )
    train.add_argument("--out", default="checkpoint.pt", help="checkpoint path")
    train.add_argument("--images", type=int, default=8000, help="training images (default: 8000)")
    train.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimiser steps (default: mlb 3000, visual_bert 4000, clip 4000, lxmert 3000)",
    )
    train.add_argument("--eval-size", type=int, default=2000, help="held-out questions")
    train.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    train.add_argument(
        "--device", default="cpu", help="torch device for mlb and clip (default: cpu)"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(run=_train)

    toy = commands.add_parser(
        "tensor-fusion-toy",
        help="Ledent et al.'s toy experiment: degree inflation without/with Iterative BatchNorm",
        description=(
            "Three views of random symbol sequences, a motif inserted or not in each; the "
            "label is the XOR of motif presence over the views named by each dataset. Trains "
            "a tensor-fusion classifier with no normalisation, VBN and IBN per dataset and "
            "writes table.md/table.csv (accuracy, beta, raw-block and centred variance share "
            "per subset), beta.png and shares.png. A few CPU minutes."
        ),
    )
    toy.add_argument("--out", default="tensor_fusion_toy", help="output folder")
    toy.add_argument(
        "--datasets",
        nargs="+",
        default=["1", "12", "23", "123"],
        choices=["1", "12", "23", "123"],
        help="views the label uses (default: all four datasets)",
    )
    toy.add_argument("--train", type=int, default=4000, help="training samples (default: 4000)")
    toy.add_argument("--test", type=int, default=1000, help="held-out samples (default: 1000)")
    toy.add_argument("--epochs", type=int, default=30, help="epochs (default: 30)")
    toy.add_argument("--seed", type=int, default=0, help="data and initialisation seed")
    toy.add_argument("--quiet", action="store_true", help="no progress bars")
    toy.set_defaults(run=_tensor_fusion_toy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``captum-mm``."""
    args = build_parser().parse_args(argv)
    for name in ("examples", "images", "steps", "eval_size", "train", "test", "epochs"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            build_parser().error(f"--{name.replace('_', '-')} must be at least 1")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

"""A tensor-fusion classifier and Ledent et al.'s toy experiment on degree inflation."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from captum_multimodal.nn import IterativeBatchNorm, ModalityWeights, TensorFusion, VectorBatchNorm

NORMALIZATIONS = ("none", "vbn", "ibn")
#: Toy datasets: name (1-based views, as in the poster's table) -> views the label uses.
TOY_DATASETS = {"1": (0,), "12": (0, 1), "23": (1, 2), "123": (0, 1, 2)}
SYMBOLS, LENGTH, MOTIF_LENGTH = 4, 100, 8


class TensorFusionClassifier(nn.Module):
    r"""Per-modality encoders, optional normalisation, tensor fusion, lp-norm linear head.

    ``normalization``: ``"none"`` (raw features into :class:`TensorFusion`),
    ``"vbn"`` (:class:`VectorBatchNorm` on each modality, then :class:`TensorFusion`)
    or ``"ibn"`` (:class:`IterativeBatchNorm`, which fuses and normalises). The head
    is :class:`ModalityWeights`; explain with
    ``TensorFusionDisentangle(model, model.fusion, model.head)``.

    Args:
        encoders (Sequence[nn.Module]): One per modality; encoder m maps input m to
            (B, dims[m]).
        dims (Sequence[int]): Feature sizes.
        num_classes (int): Outputs of the head.
        normalization (str): ``"none"``, ``"vbn"`` or ``"ibn"``.
        p (float): lp exponent of the head's relevances and regulariser.

    Examples:
        >>> model = TensorFusionClassifier([nn.Linear(5, 2), nn.Linear(3, 2)], [2, 2], 3)
        >>> model(torch.randn(4, 5), torch.randn(4, 3)).shape
        torch.Size([4, 3])
    """

    def __init__(
        self,
        encoders: Sequence[nn.Module],
        dims: Sequence[int],
        num_classes: int,
        normalization: str = "ibn",
        p: float = 1.0,
    ) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        if len(encoders) != len(dims):
            raise ValueError(
                f"encoders and dims must have one entry per modality, got {len(encoders)} "
                f"and {len(dims)}"
            )
        self.normalization = normalization
        self.encoders = nn.ModuleList(encoders)
        self.norms = nn.ModuleList(
            VectorBatchNorm(d) if normalization == "vbn" else nn.Identity() for d in dims
        )
        self.fusion = IterativeBatchNorm(dims) if normalization == "ibn" else TensorFusion(dims)
        self.head = ModalityWeights(dims, num_classes, p=p)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Args:
            *inputs (Tensor): One tensor per modality, batch first.

        Returns:
            Tensor: (B, num_classes) logits.
        """
        if len(inputs) != len(self.encoders):
            raise ValueError(f"expected {len(self.encoders)} modality inputs, got {len(inputs)}")
        features = [
            norm(encoder(x))
            for encoder, norm, x in zip(self.encoders, self.norms, inputs, strict=True)
        ]
        return self.head(self.fusion(*features))


class SequenceEncoder(nn.Module):
    """One-hot symbols, one convolution, ReLU, max over positions, linear: a motif detector.

    Examples:
        >>> SequenceEncoder(out_features=3)(torch.randint(0, 4, (2, 100))).shape
        torch.Size([2, 3])
    """

    def __init__(self, out_features: int = 4, channels: int = 8, symbols: int = SYMBOLS) -> None:
        super().__init__()
        self.symbols = symbols
        self.conv = nn.Conv1d(symbols, channels, kernel_size=MOTIF_LENGTH)
        self.linear = nn.Linear(channels, out_features)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """(B, L) long symbols -> (B, out_features)."""
        onehot = F.one_hot(sequence, self.symbols).transpose(1, 2).to(self.conv.weight.dtype)
        return self.linear(self.conv(onehot).relu().amax(dim=2))


def toy_classifier(normalization: str, views: int = 3, dims: int = 4) -> TensorFusionClassifier:
    """The toy experiment's model: one :class:`SequenceEncoder` per view, one logit.

    Examples:
        >>> toy_classifier("vbn").fusion.out_features
        125
    """
    encoders = [SequenceEncoder(dims) for _ in range(views)]
    return TensorFusionClassifier(encoders, [dims] * views, 1, normalization=normalization)


def toy_views(
    n: int, relevant: Sequence[int], seed: int = 0, views: int = 3
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The poster's toy data: uniform symbol sequences, a fixed motif per view or not.

    Each view is a length-100 sequence over {0, 1, 2, 3} drawn uniformly; with
    probability 1/2, independently per view, the view's fixed motif (8 symbols) is
    written at a uniformly random position. The label is the XOR of motif presence
    over the ``relevant`` views (presence itself for one view).

    Args:
        n (int): Samples.
        relevant (Sequence[int]): Views (0-based) the label depends on.
        seed (int): Data seed; the motifs are fixed, independent of it.
        views (int): Number of views.

    Returns:
        tuple: ``(sequences, label)``: ``views`` long tensors (n, 100) and (n,) float.

    Examples:
        >>> (a, b, c), y = toy_views(6, relevant=(0, 1), seed=1)
        >>> a.shape, y.shape
        (torch.Size([6, 100]), torch.Size([6]))
    """
    if not relevant or not set(relevant) <= set(range(views)):
        raise ValueError(f"relevant must be a non-empty subset of range({views}), got {relevant}")
    motifs = torch.randint(
        0, SYMBOLS, (views, MOTIF_LENGTH), generator=torch.Generator().manual_seed(12345)
    )
    generator = torch.Generator().manual_seed(seed)
    sequences = torch.randint(0, SYMBOLS, (views, n, LENGTH), generator=generator)
    present = torch.rand(views, n, generator=generator) < 0.5
    start = torch.randint(0, LENGTH - MOTIF_LENGTH + 1, (views, n), generator=generator)
    columns = start[..., None] + torch.arange(MOTIF_LENGTH)
    written = torch.where(present[..., None], motifs[:, None, :], sequences.gather(2, columns))
    sequences.scatter_(2, columns, written)
    label = present[list(relevant)].sum(0) % 2
    return tuple(sequences), label.float()


def train_toy(
    model: TensorFusionClassifier,
    inputs: tuple[torch.Tensor, ...],
    label: torch.Tensor,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-2,
    strength: float = 1e-4,
    seed: int = 0,
    progress: bool = False,
) -> TensorFusionClassifier:
    """Adam on the logistic loss plus the head's lp regulariser; IBN statistics are
    recomputed exactly over the training inputs at the end. Returns the model in eval mode.

    Examples:
        >>> inputs, label = toy_views(128, relevant=(0,))
        >>> model = train_toy(toy_classifier("ibn"), inputs, label, epochs=1)
        >>> model.training, model.fusion.num_batches_tracked.item()
        (False, 2)
    """
    torch.manual_seed(seed)
    batch_size = min(batch_size, len(label))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(label) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps)
    model.train()
    bar = tqdm(total=steps, desc=f"training ({model.normalization})", disable=not progress)
    for _ in range(epochs):
        order = torch.randperm(len(label))
        for start in range(0, len(label) - batch_size + 1, batch_size):
            rows = order[start : start + batch_size]
            logits = model(*(x[rows] for x in inputs))[:, 0]
            loss = F.binary_cross_entropy_with_logits(logits, label[rows])
            loss = loss + model.head.regularizer(strength)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
    bar.close()
    model.eval()
    if isinstance(model.fusion, IterativeBatchNorm):
        batches = [tuple(x[i : i + 256] for x in inputs) for i in range(0, len(label), 256)]
        model.fusion.recompute_statistics(model, batches)
    return model


def run_tensor_fusion_toy(
    out: str | Path,
    datasets: Sequence[str] = tuple(TOY_DATASETS),
    normalizations: Sequence[str] = NORMALIZATIONS,
    n_train: int = 4000,
    n_test: int = 1000,
    epochs: int = 30,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Trains the toy classifier per dataset and normaliser and tabulates relevances.

    For each dataset (label = XOR of motif presence over the views in its name) and
    each normaliser: held-out accuracy; the head's relevances β per subset (block
    norms of :class:`ModalityWeights`, p = 1); the variance share of the raw blocks
    :math:`\\langle W_S, X_S \\rangle` over the test set (what an uncentred reading
    of the fused tensor shows); and the variance share of
    :class:`TensorFusionDisentangle`'s centred contributions (IBN: its running
    statistics; none/VBN: the training inputs as baselines).

    Writes ``table.md``, ``table.csv`` and two bar charts to ``out``: ``beta.png`` (the
    head's relevances, where degree inflation shows) and ``shares.png`` (the centred
    variance shares).

    Returns:
        list of dict: one row per (dataset, normaliser, quantity) with the subsets
        ``"1"``, ..., ``"123"`` as keys, and ``accuracy``.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as out:
        ...     rows = run_tensor_fusion_toy(out, datasets=["1"], normalizations=["ibn"],
        ...                                  n_train=64, n_test=32, epochs=2, progress=False)
        >>> [row["quantity"] for row in rows]
        ['beta', 'raw share', 'share']
    """
    from captum_multimodal.visualization.subsets import subset_bars  # figures: not at import

    for name, value in (("n_train", n_train), ("n_test", n_test), ("epochs", epochs)):
        if value < 2:
            raise ValueError(f"{name} must be at least 2, got {value}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, charts = [], {"beta": {}, "share": {}}
    for name in datasets:
        if name not in TOY_DATASETS:
            raise ValueError(f"datasets must be among {list(TOY_DATASETS)}, got {name!r}")
        train_inputs, train_label = toy_views(n_train, TOY_DATASETS[name], seed=2 * seed)
        test_inputs, test_label = toy_views(n_test, TOY_DATASETS[name], seed=2 * seed + 1)
        for chart in charts.values():
            chart[f"label: views {name}"] = {}
        for normalization in normalizations:
            torch.manual_seed(seed)
            model = train_toy(
                toy_classifier(normalization),
                train_inputs,
                train_label,
                seed=seed,
                epochs=epochs,
                progress=progress,
            )
            measured = _measure(model, train_inputs, test_inputs, test_label)
            labels = [_label(s) for s in model.head.subsets[1:]]
            for quantity in ("beta", "raw share", "share"):
                row = {"dataset": name, "normalization": normalization, "quantity": quantity}
                row |= {"accuracy": measured["accuracy"]}
                row |= dict(zip(labels, measured[quantity].tolist(), strict=True))
                rows.append(row)
            for quantity, chart in charts.items():
                chart[f"label: views {name}"][normalization] = measured[quantity]
    _write_tables(out, rows, labels)
    subset_bars(charts["beta"], labels, ylabel="head relevance β").savefig(
        out / "beta.png", dpi=120
    )
    shares = subset_bars(charts["share"], labels, ylabel="variance share (centred)")
    shares.savefig(out / "shares.png", dpi=120)
    return rows


@torch.no_grad()
def _measure(model, train_inputs, test_inputs, test_label) -> dict:
    from captum_multimodal.attr import TensorFusionDisentangle, variance_share  # attr -> nn only

    accuracy = ((model(*test_inputs)[:, 0] > 0).float() == test_label).float().mean().item()
    explainer = TensorFusionDisentangle(model, model.fusion, model.head)
    baselines = None if model.normalization == "ibn" else tuple(x[:500] for x in train_inputs)
    contributions = explainer.attribute(test_inputs, target=0, baselines=baselines)
    features = [
        norm(enc(x)) for enc, norm, x in zip(model.encoders, model.norms, test_inputs, strict=True)
    ]
    per_entry = model.head.weight[0] * model.fusion(*features)
    raw = per_entry.new_zeros(len(per_entry), len(model.head.subsets))
    raw.index_add_(1, model.head.assignment, per_entry)
    return {
        "accuracy": accuracy,
        "beta": model.head.relevance(),
        "raw share": variance_share(raw),
        "share": variance_share(contributions),
    }


def _label(subset: tuple[int, ...]) -> str:
    return "".join(str(m + 1) for m in subset)


def _write_tables(out: Path, rows: list[dict], labels: list[str]) -> None:
    header = ["dataset", "normalization", "accuracy", "quantity", *labels]
    with open(out / "table.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| label uses | norm | test acc. | quantity | " + " | ".join(labels) + " |",
        "| --- | --- | ---: | --- | " + " | ".join("---:" for _ in labels) + " |",
    ]
    for row in rows:
        cells = [row["dataset"], row["normalization"], f"{row['accuracy']:.3f}", row["quantity"]]
        cells += [f"{row[label]:.3f}" for label in labels]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "table.md").write_text("\n".join(lines) + "\n")

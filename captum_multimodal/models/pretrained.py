"""Checkpoints of the reference models shipped inside the package."""

from __future__ import annotations

import pickle
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from captum_multimodal.models.clip import build_clip
from captum_multimodal.models.lxmert import build_lxmert
from captum_multimodal.models.mlb import MLB
from captum_multimodal.models.visual_bert import build_visual_bert

_BUILDERS = {
    "mlb": MLB,
    "visual_bert": build_visual_bert,
    "clip": build_clip,
    "lxmert": build_lxmert,
}
_SHIPPED = {
    "mlb": "mlb_synthetic.pt",
    "visual_bert": "visual_bert_synthetic.pt",
    "clip": "clip_synthetic.pt",
    "lxmert": "lxmert_synthetic.pt",
}


def save_checkpoint(model: nn.Module, path: str | Path, config: dict, metrics: dict) -> None:
    """Saves ``{"config", "state_dict", "metrics"}``, loadable with ``weights_only=True``.

    Args:
        model (nn.Module): The model whose ``state_dict`` is saved (moved to the CPU).
        path (str or Path): Where to write.
        config (dict): The builder's keyword arguments (e.g. :func:`default_mlb_config`).
        metrics (dict): Figures recorded with the weights (held-out accuracy, say).

    Examples:
        >>> import tempfile, pathlib
        >>> from captum_multimodal.models import MLB
        >>> config = {"vocab_size": 20, "num_answers": 4}
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "mlb.pt"
        ...     save_checkpoint(MLB(**config), path, config, {"accuracy": 0.5})
        ...     type(load_checkpoint("mlb", path)).__name__
        'MLB'
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"config": config, "state_dict": state, "metrics": metrics}, path)


def load_checkpoint(name: str, path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Builds model ``name`` from a checkpoint written by :func:`save_checkpoint`, in eval mode.

    Args:
        name (str): Which builder reads the config (a name :func:`load_pretrained` takes).
        path (str or Path): The checkpoint, read with ``weights_only=True``.
        device: Where to put the model.

    Returns:
        nn.Module: The model in eval mode.

    Raises:
        ValueError: An unknown ``name``, or a file that is truncated, tampered with or
            not a checkpoint of that model.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "broken.pt"
        ...     _ = path.write_bytes(b"not a checkpoint")
        ...     load_checkpoint("mlb", path)
        Traceback (most recent call last):
        ...
        ValueError: ... is not a valid 'mlb' checkpoint ...
    """
    if name not in _BUILDERS:
        raise ValueError(f"name must be one of {sorted(_BUILDERS)}, got {name!r}")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
        model = _BUILDERS[name](**checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(
            f"{path} is not a valid {name!r} checkpoint (expected a file written by "
            f"save_checkpoint, loadable with weights_only=True): {error}"
        ) from error
    return model.to(device).eval()


def shipped_metrics(name: str) -> dict[str, float]:
    """The held-out metrics recorded when the shipped checkpoint ``name`` was trained.

    Examples:
        >>> shipped_metrics("mlb")["accuracy"] > 0.9
        True
    """
    return torch.load(_shipped_path(name), weights_only=True)["metrics"]


def load_pretrained(name: str = "mlb", device: str | torch.device = "cpu") -> nn.Module:
    """Returns a reference model trained on the synthetic data, in eval mode.

    Args:
        name (str): ``"mlb"``: the :class:`~captum_multimodal.models.MLB` VQA model
            trained by ``captum-mm train mlb``; ``"visual_bert"``: a Hugging Face
            ``VisualBertForQuestionAnswering`` trained by ``captum-mm train visual_bert``
            on the MLB's grid features (see :mod:`captum_multimodal.models.visual_bert`).
            ``"clip"``: a tiny Hugging Face ``CLIPModel`` trained contrastively by
            ``captum-mm train clip`` (see :mod:`captum_multimodal.models.clip`).
            ``"lxmert"``: a Hugging Face ``LxmertForQuestionAnswering`` trained by
            ``captum-mm train lxmert`` on the MLB's grid cells as boxes (see
            :mod:`captum_multimodal.models.lxmert`).
        device: Where to put the model.

    Examples:
        >>> model = load_pretrained("mlb")
        >>> model.training
        False
    """
    return load_checkpoint(name, _shipped_path(name), device)


def _shipped_path(name: str) -> Path:
    if name not in _SHIPPED:
        raise ValueError(f"name must be one of {sorted(_SHIPPED)}, got {name!r}")
    return Path(str(resources.files("captum_multimodal.models") / "weights" / _SHIPPED[name]))

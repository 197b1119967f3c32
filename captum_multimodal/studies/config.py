"""Studies declared in a TOML file that names importable factories.

A config either names one factory that returns a whole :class:`Study`::

    study = "captum_multimodal.studies.zoo:shipped_study"
    [arguments]
    model = "mlb"
    size = 64
    methods = ["HadamardDeviation", "Saliency"]

or builds one from parts, each a table with a ``factory`` and its keyword arguments::

    name = "my study"
    batch_size = 16
    target = "predicted"          # or the batch key of the true targets, e.g. "answer"
    seed = 0
    collate = "captum_multimodal.datasets:collate_vqa"   # optional
    [subject]
    factory = "captum_multimodal.studies.zoo:MLBSubject"
    [dataset]
    factory = "captum_multimodal.datasets:SyntheticVQA"
    size = 64
    seed = 2
    [[methods]]
    factory = "captum_multimodal.studies.zoo:method"
    name = "Saliency"
    [[metrics]]
    factory = "captum_multimodal.studies.zoo:metric"
    name = "pointing_game"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from captum_multimodal.studies.study import Study

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def resolve(reference: str, where: str) -> Callable:
    """The object named ``"package.module:attribute"``."""
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise ValueError(f'{where} must be "package.module:attribute", got {reference!r}')
    module_name, attribute = reference.split(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{where}: cannot import {reference!r} ({error})") from error


def build(table: Any, where: str) -> Any:
    """Calls ``table["factory"]`` with the table's other keys as keyword arguments."""
    if not isinstance(table, dict) or "factory" not in table:
        raise ValueError(f"{where} must be a table with a 'factory' key, got {table!r}")
    arguments = {k: v for k, v in table.items() if k != "factory"}
    return resolve(table["factory"], f"{where}.factory")(**arguments)


def study_from_config(config: dict) -> Study:
    """A :class:`Study` from a parsed config (see the module docstring for the format)."""
    if "study" in config:
        study = resolve(config["study"], "study")(**config.get("arguments", {}))
        if not isinstance(study, Study):
            raise TypeError(f"study factory must return a Study, got {type(study).__name__}")
        return study
    missing = [key for key in ("subject", "dataset", "methods", "metrics") if key not in config]
    if missing:
        raise ValueError(
            f"config must name either 'study' or all of subject, dataset, methods, metrics; "
            f"missing {missing}"
        )
    options = {key: config[key] for key in ("batch_size", "target", "seed") if key in config}
    if "collate" in config:
        options["collate"] = resolve(config["collate"], "collate")
    return Study(
        name=config.get("name", "study"),
        subject=build(config["subject"], "subject"),
        dataset=build(config["dataset"], "dataset"),
        methods=[build(t, f"methods[{i}]") for i, t in enumerate(config["methods"])],
        metrics=[build(t, f"metrics[{i}]") for i, t in enumerate(config["metrics"])],
        arguments=config,
        **options,
    )


def load_study(path: str | Path) -> Study:
    """Reads a TOML study config and builds the study.

    Examples:
        >>> import tempfile, pathlib
        >>> text = ('study = "captum_multimodal.studies.zoo:shipped_study"\\n'
        ...         '[arguments]\\nsize = 4\\n')
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "study.toml"
        ...     _ = path.write_text(text)
        ...     len(load_study(path).dataset)
        4
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config must be an existing TOML file, got {str(path)!r}")
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config {str(path)!r} is not valid TOML: {error}") from error
    return study_from_config(config)

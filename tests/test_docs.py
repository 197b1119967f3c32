"""The documentation builds strictly, offline, and its reference covers every public name."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import captum_multimodal

ROOT = Path(__file__).parents[1]
SUBPACKAGES = ("adapters", "attr", "datasets", "metrics", "models", "nn", "visualization")


def public_names() -> dict[str, list[str]]:
    names = {}
    for sub in SUBPACKAGES:
        module = importlib.import_module(f"captum_multimodal.{sub}")
        names[sub] = list(module.__all__)
    return names


def test_docs_build_strictly_and_document_every_public_name(tmp_path):
    site = tmp_path / "site"
    # the tutorials are executed by tests/tutorials; here they are rendered without running
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CAPTUM_MM_DOCS_EXECUTE": "0", "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    missing = []
    for sub, names in public_names().items():
        page = (site / "reference" / sub / "index.html").read_text()
        missing += [f"{sub}.{n}" for n in names if f'id="captum_multimodal.{sub}.{n}"' not in page]
    assert not missing, f"public names without a reference entry: {missing}"
    top = set(captum_multimodal.__all__) - {"__version__"}
    documented = {n for names in public_names().values() for n in names}
    assert top <= documented, f"top-level names documented nowhere: {top - documented}"
    cli = (site / "cli" / "index.html").read_text()
    for command in ("demo", "study", "train"):
        assert f"captum-mm {command}" in cli
    for notebook in (ROOT / "tutorials").glob("*.ipynb"):
        assert (site / "tutorials" / notebook.stem / "index.html").exists()


def test_every_public_name_has_a_docstring_with_an_example():
    lacking = []
    for sub, names in public_names().items():
        module = importlib.import_module(f"captum_multimodal.{sub}")
        for name in names:
            obj = getattr(module, name)
            doc = getattr(obj, "__doc__", None) or ""
            if callable(obj) and ">>>" not in doc:
                lacking.append(f"{sub}.{name}")
    assert not lacking, f"public callables without a runnable example: {lacking}"

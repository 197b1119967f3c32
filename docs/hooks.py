"""MkDocs hooks: pages generated from the code at build time, so they cannot drift.

- ``cli.md``: ``captum-mm --help`` and the help of every subcommand.
- ``tutorials/<name>.md``: each notebook of ``tutorials/``, executed at build time
  (outputs, figures included, come from this run), and an index of them. Set
  ``CAPTUM_MM_DOCS_EXECUTE=0`` to render the notebooks without running them (a quick
  local preview).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import nbformat
from mkdocs.structure.files import File, Files
from nbclient import NotebookClient

from captum_multimodal.studies.cli import build_parser

ROOT = Path(__file__).parents[1]


def cli_page() -> str:
    """The help text of ``captum-mm`` and of each of its subcommands."""
    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "Generated from the argument parser at build time.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
    ]
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    seen = set()
    for name, subparser in commands.choices.items():
        if id(subparser) in seen:  # an alias of a command already shown
            continue
        seen.add(id(subparser))
        lines += [
            "",
            f"## captum-mm {name}",
            "",
            "```text",
            subparser.format_help().rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def notebook_page(path: Path, execute: bool) -> str:
    """A notebook as Markdown: its text cells, its code, and the outputs of this run."""
    notebook = nbformat.read(path, as_version=4)
    if execute:
        with tempfile.TemporaryDirectory() as folder:
            NotebookClient(
                notebook,
                timeout=600,
                kernel_name="python3",
                resources={"metadata": {"path": folder}},
            ).execute()
    parts = [f"*From `tutorials/{path.name}`; executed when these pages were built.*\n"]
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        elif cell.cell_type == "code":
            parts.append(f"```python\n{cell.source}\n```")
            parts += [output_markdown(o) for o in cell.get("outputs", [])]
    return "\n\n".join(p for p in parts if p) + "\n"


def output_markdown(output: dict) -> str:
    """One notebook output: text as a text block, PNG figures inline."""
    if output.get("output_type") == "stream":
        return f"```text\n{output['text'].rstrip()}\n```"
    data = output.get("data", {})
    if "image/png" in data:
        return f"![figure](data:image/png;base64,{data['image/png'].strip()})"
    if "text/plain" in data:
        return f"```text\n{data['text/plain'].rstrip()}\n```"
    if output.get("output_type") == "error":
        raise RuntimeError(f"a tutorial raised {output['ename']}: {output['evalue']}")
    return ""


def on_files(files: Files, config) -> Files:
    execute = os.environ.get("CAPTUM_MM_DOCS_EXECUTE", "1") != "0"
    files.append(File.generated(config, "cli.md", content=cli_page()))
    notebooks = sorted((ROOT / "tutorials").glob("*.ipynb"))
    index = [
        "# Tutorials",
        "",
        "Notebooks in `tutorials/`, executed when these pages were built.",
        "",
    ]
    for path in notebooks:
        title = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
        index.append(f"- [{title}]({path.stem}.md)")
        files.append(
            File.generated(
                config, f"tutorials/{path.stem}.md", content=notebook_page(path, execute)
            )
        )
    files.append(File.generated(config, "tutorials/index.md", content="\n".join(index) + "\n"))
    return files

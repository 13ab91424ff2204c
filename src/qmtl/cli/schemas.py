"""``qmtl schemas export|check``: the committed JSON Schemas of the wire contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qmtl.cli._io import EXIT_FAILED, console, fail
from qmtl.contracts import check_schemas, export_schemas

app = typer.Typer(
    help="Export or check the JSON Schemas of the wire contract.", no_args_is_help=True
)

DEFAULT_DIR = Path("schemas")
DirOption = Annotated[Path, typer.Option("--dir", help="Folder holding the schema files.")]


@app.command("export")
def export(directory: DirOption = DEFAULT_DIR) -> None:
    """Regenerate every schema file from the models."""
    for path in export_schemas(directory):
        console.print(f"wrote {path}")


@app.command("check")
def check(directory: DirOption = DEFAULT_DIR) -> None:
    """Exit 1 when a committed schema differs from the models (run `qmtl schemas export`)."""
    drift = check_schemas(directory)
    if drift:
        fail(
            f"schemas out of date: {', '.join(drift)} (run `qmtl schemas export`)", code=EXIT_FAILED
        )
    console.print(f"schemas up to date in {directory}")

"""`qmtl commitlog …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="commitlog commands", no_args_is_help=True)

"""`qmtl worldservice …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="worldservice commands", no_args_is_help=True)

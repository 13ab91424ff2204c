"""The ``qmtl`` command: one typer app, one sub-app per part of the system."""

from __future__ import annotations

import typer

from qmtl.cli import commitlog, gateway, schemas, worldservice
from qmtl.cli.plan import plan_command

app = typer.Typer(
    name="qmtl",
    help="QMTL Rebalancing: plan, apply and execute multi-world rebalances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("plan")(plan_command)
app.add_typer(schemas.app, name="schemas")
app.add_typer(worldservice.app, name="worldservice")
app.add_typer(gateway.app, name="gateway")
app.add_typer(commitlog.app, name="commitlog")


def main() -> None:
    """Console-script entry point."""
    app()

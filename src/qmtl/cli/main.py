"""The ``qmtl`` command: one typer app, one sub-app per part of the system."""

from __future__ import annotations

import typer

from qmtl.cli import commitlog, gateway, schemas, worldservice
from qmtl.cli.demo import demo_command
from qmtl.cli.health import check_health_command
from qmtl.cli.plan import plan_command
from qmtl.cli.rehearsal import rehearsal_command
from qmtl.cli.remote import apply_command, execute_command
from qmtl.cli.report import report_command
from qmtl.cli.up import up_command

app = typer.Typer(
    name="qmtl",
    help="QMTL Rebalancing: plan, apply and execute multi-world rebalances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up")(up_command)
app.command("demo")(demo_command)
app.command("plan")(plan_command)
app.command("apply")(apply_command)
app.command("execute")(execute_command)
app.command("report")(report_command)
app.command("check-health")(check_health_command)
app.command("rehearsal")(rehearsal_command)
app.add_typer(schemas.app, name="schemas")
app.add_typer(worldservice.app, name="worldservice")
app.add_typer(gateway.app, name="gateway")
app.add_typer(commitlog.app, name="commitlog")


def main() -> None:
    """Console-script entry point."""
    app()

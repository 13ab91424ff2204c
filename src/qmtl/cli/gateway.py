"""`qmtl gateway …` commands: ``serve`` runs the gateway under uvicorn.

Precedence: command-line flags, then ``QMTL__GATEWAY__…`` environment variables, then the
YAML file, then defaults. A configuration error — or a SQLite commit log that cannot be
opened — prints one line naming the key and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, bind_overrides, fail
from qmtl.contracts.errors import ConfigError

if TYPE_CHECKING:
    from qmtl.gateway.config import GatewaySettings

# Service modules are imported inside the commands: `qmtl --help` and the client commands
# should not pay for FastAPI, SQLAlchemy and the engine.

app = typer.Typer(help="gateway commands", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file with a gateway section", dir_okay=False),
]


def flag_overrides(*, host: str | None, port: int | None, schema_version: int | None,
                   alpha_metrics_capable: bool | None) -> dict[str, Any]:
    """The settings the command-line flags set (unset flags are left out)."""
    overrides: dict[str, Any] = {}
    bind = bind_overrides(host, port)
    if bind:
        overrides["bind"] = bind
    if schema_version is not None:
        overrides["rebalance_schema_version"] = schema_version
    if alpha_metrics_capable is not None:
        overrides["alpha_metrics_capable"] = alpha_metrics_capable
    return overrides


def load_settings_or_exit(config: Path | None, overrides: dict[str, Any] | None = None
                          ) -> GatewaySettings:
    from qmtl.gateway.config import load_gateway_settings

    try:
        return load_gateway_settings(config, overrides=overrides)
    except ConfigError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)


@app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option("--host", help="bind address")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port (default 8000)")] = None,
    rebalance_schema_version: Annotated[int | None, typer.Option(
        "--rebalance-schema-version", help="plan schema version this gateway asks for")] = None,
    alpha_metrics_capable: Annotated[bool | None, typer.Option(
        "--alpha-metrics-capable/--no-alpha-metrics-capable",
        help="advertise alpha metrics (needs schema version 2)", show_default=False)] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run the gateway: plan/apply proxy, execute, /health, /metrics and /ws."""
    import uvicorn

    from qmtl.gateway.app import create_app
    from qmtl.web.observability import configure_logging

    settings = load_settings_or_exit(config, flag_overrides(
        host=host, port=port, schema_version=rebalance_schema_version,
        alpha_metrics_capable=alpha_metrics_capable))
    from qmtl.cli.preflight import preflight

    try:
        preflight(gateway=settings)
    except ConfigError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)
    configure_logging(log_level)
    # No per-message deflate: each event goes to many subscribers and compressing every
    # copy separately costs more CPU (and latency) than it saves on a LAN.
    uvicorn.run(create_app(settings), host=settings.bind.host, port=settings.bind.port,
                log_config=None, log_level=log_level.lower(), lifespan="on",
                ws_per_message_deflate=False)

"""``qmtl up``: the WorldService and the Gateway in one process (see :mod:`qmtl.cli.embedded`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, EXIT_FAILED, console, fail
from qmtl.contracts.errors import ConfigError

__all__ = ["up_command"]


def up_command(
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML file with worldservice:/gateway: sections.", show_default=False)]
    = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="Bind address of both servers [default: 127.0.0.1].",
        show_default=False)] = None,
    gateway_port: Annotated[int | None, typer.Option(
        "--gateway-port", min=1, max=65535, help="[default: 8000]", show_default=False)] = None,
    worldservice_port: Annotated[int | None, typer.Option(
        "--worldservice-port", min=1, max=65535, help="[default: 8080]",
        show_default=False)] = None,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", help="SQLite files live here.")] = Path(".qmtl"),
    demo: Annotated[bool, typer.Option(
        "--demo", help="Run the example book through plan -> apply -> execute.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug|info|warning|error")]
    = "warning",
) -> None:
    """Run the WorldService and the Gateway in one process (Ctrl-C stops both)."""
    # The services are imported here, not at module level: `qmtl --help` stays fast.
    from qmtl.cli.embedded import StartupFailed, UpSettings, build_up_settings, serve_together
    from qmtl.cli.preflight import preflight
    from qmtl.web.observability import configure_logging

    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"--log-level must be debug, info, warning or error, got {log_level!r}",
             code=EXIT_BAD_INPUT)
    try:
        settings = build_up_settings(config=config, data_dir=data_dir, host=host,
                                     gateway_port=gateway_port,
                                     worldservice_port=worldservice_port)
        data_dir.mkdir(parents=True, exist_ok=True)
        preflight(worldservice=settings.worldservice, gateway=settings.gateway)
    except ConfigError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)
    except OSError as exc:
        fail(f"cannot create the data dir {data_dir}: {exc.strerror}", code=EXIT_BAD_INPUT)
    from qmtl.cli._ports import port_in_use

    for name, bind, flag in (("WorldService", settings.worldservice.bind, "--worldservice-port"),
                             ("Gateway", settings.gateway.bind, "--gateway-port")):
        if port_in_use(bind.host, bind.port):
            fail(f"the {name} cannot listen on {bind.host}:{bind.port}: the port is in use "
                 f"(another qmtl up?); stop that process or pass {flag} with a free port",
                 code=EXIT_FAILED)
    configure_logging(log_level)

    async def ready(up: UpSettings) -> None:
        console.print(f"[bold]WorldService[/bold] {up.worldservice_url}  "
                      f"(schema versions {'1, 2' if up.worldservice.compat_rebalance_v2 else '1'})",
                      highlight=False)
        console.print(f"[bold]Gateway[/bold]      {up.gateway_url}  "
                      f"(rebalance_schema_version {up.gateway.rebalance_schema_version}, "
                      f"alpha_metrics_capable {str(up.gateway.alpha_metrics_capable).lower()})",
                      highlight=False)
        console.print(f"data in {data_dir}; press Ctrl-C to stop", highlight=False)
        if demo:
            from qmtl.cli.demo import run_demo_safely

            tokens = up.gateway.auth.tokens
            await run_demo_safely(up.gateway_url, token=tokens[0] if tokens else None)

    try:
        asyncio.run(serve_together(settings, on_ready=ready))
    except StartupFailed as exc:
        fail(str(exc), code=EXIT_FAILED)
    except ConfigError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)
    console.print("stopped", highlight=False)

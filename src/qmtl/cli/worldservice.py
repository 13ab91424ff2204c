"""`qmtl worldservice …` commands: ``serve`` (uvicorn) and ``migrate`` (Alembic to head).

Configuration errors — and, for ``serve``, a store that cannot be opened (see
:mod:`qmtl.cli.preflight`) — print one line naming the key and exit 2; a store that cannot be
reached by ``migrate`` exits 1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from qmtl.cli._io import EXIT_BAD_INPUT, EXIT_FAILED, bind_overrides, console, fail
from qmtl.contracts.errors import ConfigError, StoreUnavailable

if TYPE_CHECKING:
    from qmtl.worldservice.config import WorldServiceSettings

# Service modules are imported inside the commands so that `qmtl --help` stays fast.

app = typer.Typer(help="worldservice commands", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file with a worldservice.server section",
                 dir_okay=False),
]


def _settings(config: Path | None, *, host: str | None = None,
              port: int | None = None) -> WorldServiceSettings:
    from qmtl.worldservice.config import load_settings

    bind = bind_overrides(host, port)
    try:
        return load_settings(config, overrides={"bind": bind} if bind else None)
    except ConfigError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)


def _preflight_or_exit(settings: WorldServiceSettings) -> None:
    from qmtl.cli.preflight import preflight

    try:
        preflight(worldservice=settings)
    except ConfigError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)


@app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option("--host", help="bind address")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port (default 8080)")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run the WorldService HTTP API (migrates the store to head at start-up)."""
    import uvicorn

    from qmtl.web.observability import configure_logging
    from qmtl.worldservice.app import create_app

    settings = _settings(config, host=host, port=port)
    _preflight_or_exit(settings)
    configure_logging(log_level)
    uvicorn.run(create_app(settings), host=settings.bind.host, port=settings.bind.port,
                log_config=None, log_level=log_level.lower(), lifespan="on")


async def _migrate(settings: WorldServiceSettings) -> str | None:
    from qmtl.worldservice.store.database import Database
    from qmtl.worldservice.store.migrate import upgrade

    db = Database.create(settings.dsn, timeout=settings.store_timeout)
    try:
        return await upgrade(db)
    finally:
        await db.dispose()


@app.command("migrate")
def migrate(config: ConfigOption = None) -> None:
    """Apply the store migrations (Alembic upgrade head) and print the revision."""
    settings = _settings(config)
    try:
        revision = asyncio.run(_migrate(settings))
    except StoreUnavailable as exc:
        fail(exc.message, code=EXIT_FAILED)
    from qmtl.worldservice.store.database import redact_dsn

    console.print(f"worldservice store {redact_dsn(settings.dsn)} is at revision {revision}",
                  highlight=False, soft_wrap=True)

"""``qmtl up``: WorldService and Gateway in one process, sharing one in-process ControlBus.

Two uvicorn servers run on one event loop. The WorldService starts first (the gateway probes
it at start-up); SIGINT/SIGTERM stop both (a second signal forces the exit), then the bus
closes. Embedded defaults are v2 end to end — one process cannot have a version skew —
and keep every file under ``--data-dir``::

    worldservice.server: dsn sqlite under DATA_DIR, compat_rebalance_v2 true, memory bus
    gateway: rebalance_schema_version 2, alpha_metrics_capable true, commit log sqlite under
             DATA_DIR, worldservice_url = this process's WorldService (and, when the
             WorldService has tokens, worldservice_token = its first token)

Precedence: embedded defaults < ``--config`` file < ``QMTL__…`` environment < flags. The
gateway always talks to the WorldService of this process, and both parts must name the same
ControlBus (the in-process ``memory://qmtl-up`` unless configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from qmtl.cli._io import bind_overrides
from qmtl.contracts.errors import ConfigError
from qmtl.controlbus import ControlBus, create_controlbus
from qmtl.gateway.app import create_app as create_gateway_app
from qmtl.gateway.config import GatewaySettings
from qmtl.settings import load_section
from qmtl.worldservice.app import create_app as create_worldservice_app
from qmtl.worldservice.config import SECTION as WORLDSERVICE_SECTION
from qmtl.worldservice.config import WorldServiceSettings

__all__ = [
    "EMBEDDED_CONTROLBUS",
    "StartupFailed",
    "UpSettings",
    "build_up_settings",
    "serve_together",
]

logger = logging.getLogger(__name__)

EMBEDDED_CONTROLBUS = "memory://qmtl-up"
GRACEFUL_SHUTDOWN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class UpSettings:
    """The two parts' settings and the bus they share."""

    worldservice: WorldServiceSettings
    gateway: GatewaySettings
    controlbus: str

    @property
    def worldservice_url(self) -> str:
        return _url(self.worldservice.bind.host, self.worldservice.bind.port)

    @property
    def gateway_url(self) -> str:
        return _url(self.gateway.bind.host, self.gateway.bind.port)


def _connect_host(host: str) -> str:
    # A wildcard bind is reached on loopback from inside the process.
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _url(host: str, port: int) -> str:
    host = _connect_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_up_settings(*, config: Path | None, data_dir: Path, host: str | None = None,
                      gateway_port: int | None = None, worldservice_port: int | None = None,
                      environ: dict[str, str] | None = None) -> UpSettings:
    """Resolve both sections (see the module docstring for the precedence).

    Raises:
        ConfigError: an invalid value (naming the dotted key), or the two parts configured
            with different ControlBus URLs.
    """
    data_dir = data_dir.resolve()
    ws_defaults = {
        "dsn": f"sqlite+aiosqlite:///{data_dir / 'worldservice.db'}",
        "controlbus": EMBEDDED_CONTROLBUS,
        "compat_rebalance_v2": True,
        "bind": {"host": "127.0.0.1", "port": 8080},
    }
    ws_bind = bind_overrides(host, worldservice_port)
    ws_flags = {"bind": ws_bind} if ws_bind else None
    worldservice = load_section(WorldServiceSettings, WORLDSERVICE_SECTION, path=config,
                                environ=environ, defaults=ws_defaults, overrides=ws_flags)
    gw_defaults = {
        "rebalance_schema_version": 2,
        "alpha_metrics_capable": True,
        "controlbus": EMBEDDED_CONTROLBUS,
        "commit_log": f"sqlite:///{data_dir / 'commitlog.db'}",
        "bind": {"host": "127.0.0.1", "port": 8000},
    }
    if worldservice.auth.tokens:
        # The embedded gateway must authenticate to its own WorldService.
        gw_defaults["worldservice_token"] = worldservice.auth.tokens[0]
    gw_flags: dict[str, Any] = {
        "worldservice_url": _url(worldservice.bind.host, worldservice.bind.port)}
    if host or gateway_port:
        gw_flags["bind"] = bind_overrides(host, gateway_port)
    gateway = load_section(GatewaySettings, ("gateway",), path=config, environ=environ,
                           defaults=gw_defaults, overrides=gw_flags)
    if worldservice.controlbus != gateway.controlbus:
        raise ConfigError(
            "qmtl up runs both parts on one ControlBus: worldservice.server.controlbus "
            f"({worldservice.controlbus}) and gateway.controlbus ({gateway.controlbus}) differ",
            key="gateway.controlbus")
    if (_connect_host(worldservice.bind.host), worldservice.bind.port) == (
            _connect_host(gateway.bind.host), gateway.bind.port):
        raise ConfigError(f"the WorldService and the gateway cannot both listen on port "
                          f"{gateway.bind.port}", key="gateway.bind.port")
    return UpSettings(worldservice=worldservice, gateway=gateway, controlbus=gateway.controlbus)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`serve_together`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _server(app: Any, host: str, port: int) -> _EmbeddedServer:
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_config=None,
                            access_log=False,
                            timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_SECONDS))
    return _EmbeddedServer(config)


class StartupFailed(Exception):
    """One of the two servers did not start (its log says why)."""


async def _start(server: _EmbeddedServer, name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(_serve(server, name), name=f"qmtl-up-{name}")
    while not server.started:
        if task.done():
            await task  # re-raises StartupFailed
            raise StartupFailed(f"the {name} stopped during start-up")
        await asyncio.sleep(0.02)
    return task


async def _serve(server: _EmbeddedServer, name: str) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits the process on a failed lifespan or bind; here it ends one task.
        raise StartupFailed(f"the {name} failed to start (exit {exc.code}); see the log above"
                            ) from None


async def serve_together(settings: UpSettings, *,
                         on_ready: Callable[[UpSettings], Coroutine[Any, Any, None]] | None = None,
                         controlbus: ControlBus | None = None) -> None:
    """Run both servers until SIGINT/SIGTERM; ``on_ready`` runs once both are listening.

    Raises:
        StartupFailed: a server could not start (port in use, store down, bad config...).
    """
    bus = controlbus or create_controlbus(settings.controlbus)
    await bus.start()
    ws_server = _server(create_worldservice_app(settings.worldservice, controlbus=bus),
                        settings.worldservice.bind.host, settings.worldservice.bind.port)
    gw_server = _server(create_gateway_app(settings.gateway, controlbus=bus),
                        settings.gateway.bind.host, settings.gateway.bind.port)
    servers = (gw_server, ws_server)
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        logger.info("signal %s: stopping", signal.Signals(signum).name)
        for server in servers:
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    tasks: list[asyncio.Task[None]] = []
    ready_task: asyncio.Task[None] | None = None
    try:
        tasks.append(await _start(ws_server, "WorldService"))
        tasks.append(await _start(gw_server, "gateway"))
        if on_ready is not None:
            # Concurrent with serving, so a signal during the demo still stops everything.
            ready_task = asyncio.create_task(on_ready(settings), name="qmtl-up-ready")
        await asyncio.gather(*tasks)
    finally:
        for server in servers:
            server.should_exit = True
        if ready_task is not None and not ready_task.done():
            ready_task.cancel()
        if ready_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await ready_task
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, StartupFailed):
                logger.error("server task ended with %r", result)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await bus.close()

"""Run ASGI apps under uvicorn: in a background thread (tests, embedded mode) or in the
foreground (``qmtl … serve``)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ServerThread", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _QuietServer(uvicorn.Server):
    # The owner of the thread decides when to stop; signals stay with the main thread.
    def install_signal_handlers(self) -> None:
        return None


class ServerThread:
    """A uvicorn server running ``app`` in a daemon thread.

    Use as a context manager; ``url`` is valid once ``__enter__`` returns. Stopping waits
    for the app's lifespan shutdown to finish.
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int | None = None,
                 log_level: str = "warning", startup_timeout: float = 30.0) -> None:
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level=log_level,
                                lifespan="on", ws_ping_interval=None)
        self.server = _QuietServer(config)
        self._thread = threading.Thread(target=self.server.run, name=f"uvicorn:{self.port}",
                                        daemon=True)
        self._startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on port {self.port} did not start in time")
            time.sleep(0.01)

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

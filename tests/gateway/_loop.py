"""One background event loop hosting several real uvicorn servers (and coroutines).

The in-process ControlBus is safe within one event loop only, so a WorldService, a
Gateway and a test publisher that share ``memory://`` must run on the same loop — as they
do under ``qmtl up``. Tests talk to the servers over real loopback sockets from their own
loop, exactly as remote clients would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from qmtl.web.server import free_port

T = TypeVar("T")


@dataclass
class Served:
    server: uvicorn.Server
    task: Future[None]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"


class ServerLoop:
    """A daemon thread running one asyncio loop; use as a context manager."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-server-loop",
                                        daemon=True)
        self._served: list[Served] = []

    def __enter__(self) -> ServerLoop:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for served in reversed(self._served):
            self.stop(served)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the server loop and wait for its result (from a plain thread)."""
        return self.submit(coro).result(timeout)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server loop and await it from another loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def serve(self, app: ASGIApp, *, port: int | None = None, host: str = "127.0.0.1",
              timeout: float = 30.0) -> Served:
        config = uvicorn.Config(app, host=host, port=port or free_port(host), log_level="warning",
                                lifespan="on", ws_ping_interval=None, loop="asyncio")
        server = uvicorn.Server(config)
        task = self.submit(server.serve())
        deadline = time.monotonic() + timeout
        while not server.started:
            if task.done():
                task.result()  # raises the start-up error
                raise RuntimeError(f"server on port {config.port} exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server on port {config.port} did not start")
            time.sleep(0.01)
        served = Served(server, task, host, config.port)
        self._served.append(served)
        return served

    def stop(self, served: Served, timeout: float = 30.0) -> None:
        if served in self._served:
            self._served.remove(served)
        served.server.should_exit = True
        served.task.result(timeout)

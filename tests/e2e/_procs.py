"""Real QMTL processes for end-to-end tests: ``qmtl worldservice serve`` / ``qmtl gateway serve``.

Each :class:`QmtlProcess` writes its YAML config into a temporary folder, starts the real
console script as a subprocess on a free loopback port, waits until ``/health`` answers, and
can be stopped gracefully (SIGTERM), killed (SIGKILL, for fault injection) and started again
on the same port with the same data.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests._servers import free_port

__all__ = ["QmtlProcess", "gateway_process", "start_all", "worldservice_process"]

QMTL = shutil.which("qmtl") or str(Path(sys.executable).with_name("qmtl"))


class QmtlProcess:
    """One ``qmtl <service> serve`` subprocess with a config file it owns."""

    def __init__(self, service: str, config: dict[str, Any], *, name: str | None = None,
                 port: int | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.service = service
        self.name = name or service
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"qmtl-{self.name}-"))
        self.config_path = self.dir / "qmtl.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = self.dir / "server.log"
        self.extra_args = extra_args or []
        self.env = {**os.environ, **(env or {})}
        # The embedded defaults of a developer's shell must not leak into a test process.
        for key in [k for k in self.env if k.startswith("QMTL__")]:
            self.env.pop(key)
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, *, timeout: float = 60.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        cmd = [QMTL, self.service, "serve", "--config", str(self.config_path),
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
               *self.extra_args]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                        cwd=self.dir)
        log.close()
        self.wait_healthy(timeout=timeout)

    def wait_healthy(self, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                healthy = httpx.get(f"{self.url}/health", timeout=1.0).status_code < 500
            except httpx.HTTPError:
                healthy = False  # not listening yet; retried until the deadline
            if healthy:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not become healthy in {timeout}s:\n{self.log()}")

    def stop(self, *, timeout: float = 30.0) -> None:
        """Graceful stop (SIGTERM): the lifespan shuts down."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def worldservice_process(*, dsn: str | None = None, controlbus: str, compat_rebalance_v2: bool,
                         alpha_metrics_required: bool = False, name: str = "worldservice",
                         port: int | None = None, **server: Any) -> QmtlProcess:
    """A WorldService process; ``dsn`` defaults to a SQLite file in its own folder; ``port``
    to a free port (pass a dead process's port to replace it at the same URL)."""
    proc = QmtlProcess("worldservice", {}, name=name, port=port)
    config = {"worldservice": {"server": {
        "dsn": dsn or f"sqlite+aiosqlite:///{proc.dir / 'worldservice.db'}",
        "controlbus": controlbus,
        "compat_rebalance_v2": compat_rebalance_v2,
        "alpha_metrics_required": alpha_metrics_required,
        **server,
    }}}
    proc.config_path.write_text(yaml.safe_dump(config))
    return proc


def gateway_process(*, worldservice_url: str, controlbus: str, rebalance_schema_version: int,
                    alpha_metrics_capable: bool, commit_log: str | None = None,
                    name: str = "gateway", port: int | None = None,
                    **gateway: Any) -> QmtlProcess:
    """A Gateway process; ``commit_log`` defaults to a SQLite file in its own folder."""
    proc = QmtlProcess("gateway", {}, name=name, port=port)
    config = {"gateway": {
        "worldservice_url": worldservice_url,
        "controlbus": controlbus,
        "rebalance_schema_version": rebalance_schema_version,
        "alpha_metrics_capable": alpha_metrics_capable,
        "commit_log": commit_log or f"sqlite:///{proc.dir / 'commitlog.db'}",
        **gateway,
    }}
    proc.config_path.write_text(yaml.safe_dump(config))
    return proc


def start_all(procs: Sequence[QmtlProcess], *, timeout: float = 60.0) -> None:
    """Start ``procs`` concurrently (each waits for its ``/health``); imports dominate a
    start, so this costs about one start instead of ``len(procs)``."""
    with ThreadPoolExecutor(max_workers=max(1, len(procs))) as pool:
        for future in [pool.submit(proc.start, timeout=timeout) for proc in procs]:
            future.result()

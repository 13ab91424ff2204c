"""Run the real ``qmtl up`` command as a subprocess on free loopback ports.

Used by the CLI and SDK integration tests: everything goes through the installed ``qmtl``
console script, real uvicorn servers, real HTTP and WebSockets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests._servers import free_port

QMTL = str(Path(sys.executable).with_name("qmtl"))
START_TIMEOUT = 90.0


class QmtlUp:
    """One ``qmtl up`` process; :meth:`start` waits until the gateway reports a healthy
    WorldService, :meth:`stop` sends SIGINT and returns the exit code."""

    def __init__(self, workdir: Path, *, config: dict[str, Any] | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.gateway_port = free_port()
        self.worldservice_port = free_port()
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = workdir / "qmtl.yaml"
            self.config_path.write_text(yaml.safe_dump(config))
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout_path = workdir / "up.stdout"
        self.stderr_path = workdir / "up.stderr"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def worldservice_url(self) -> str:
        return f"http://127.0.0.1:{self.worldservice_port}"

    def command(self) -> list[str]:
        cmd = [QMTL, "up", "--gateway-port", str(self.gateway_port),
               "--worldservice-port", str(self.worldservice_port),
               "--data-dir", str(self.workdir / "data"), *self.extra_args]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd

    def start(self) -> QmtlUp:
        env = {**os.environ, "COLUMNS": "200"}
        env = {k: v for k, v in env.items() if not k.startswith("QMTL__")}
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=err,
                                            cwd=self.workdir, env=env)
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"qmtl up exited with {self.process.returncode}:\n"
                                   f"{self.stderr()}")
            try:
                health = httpx.get(f"{self.gateway_url}/health", timeout=2.0).json()
                # The banner is printed once both servers have started, which can be a
                # moment after the gateway first answers /health on a loaded machine.
                if health.get("worldservice", {}).get("status") in ("ok", "degraded") and \
                        health.get("effective_rebalance_schema_version") is not None and \
                        "press Ctrl-C to stop" in self.stdout():
                    return
            except httpx.HTTPError as exc:
                last_error = exc  # not listening yet
            time.sleep(0.1)
        raise TimeoutError(f"qmtl up not healthy after {START_TIMEOUT}s ({last_error!r}):\n"
                           f"{self.stderr()}")

    def stop(self, *, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise
        return self.process.returncode

    def stdout(self) -> str:
        return self.stdout_path.read_text() if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""


V1_GATEWAY = {"gateway": {"rebalance_schema_version": 1, "alpha_metrics_capable": False}}
V1_WORLDSERVICE = {"worldservice": {"server": {"compat_rebalance_v2": False}}}

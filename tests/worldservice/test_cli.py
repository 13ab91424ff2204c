"""``qmtl worldservice serve|migrate``: real process, real HTTP, errors naming the key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from qmtl.cli.worldservice import app
from qmtl.web.server import free_port

from .conftest import body

runner = CliRunner()


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qmtl.yml"
    path.write_text(text)
    return path


def test_migrate_creates_the_store(tmp_path: Path) -> None:
    db_file = tmp_path / "data" / "ws.db"
    config = _config(tmp_path, f"worldservice:\n  server:\n    dsn: sqlite:///{db_file}\n")
    result = runner.invoke(app, ["migrate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "revision 0001" in result.output
    engine = sa.create_engine(f"sqlite:///{db_file}")
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"runs", "audit_log", "outbox", "allocations", "world_seq"} <= tables


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("worldservice:\n  server:\n    compat_rebalance_v2: maybe\n",
         "worldservice.server.compat_rebalance_v2"),
        ("worldservice:\n  server:\n    dsn: mysql://x/y\n", "worldservice.server.dsn"),
        ("worldservice:\n  server:\n    tokens: [a]\n", "worldservice.server.tokens"),
        ("worldservice:\n  server:\n    alpha_metrics_required: true\n",
         "worldservice.server.alpha_metrics_required"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_config_errors_exit_2_naming_the_key(tmp_path: Path, yaml_text: str, key: str,
                                             command: str) -> None:
    config = _config(tmp_path, yaml_text)
    result = runner.invoke(app, [command, "--config", str(config)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert key in lines[0]


def test_environment_junk_boolean_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["migrate"],
                           env={"QMTL__WORLDSERVICE__SERVER__ALPHA_METRICS_REQUIRED": "si"})
    assert result.exit_code == 2
    assert "worldservice.server.alpha_metrics_required" in result.output


def test_migrate_unreachable_store_exits_1(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, "worldservice:\n  server:\n"
                               f"    dsn: postgresql://nobody@127.0.0.1:{port}/none\n"
                               "    store_timeout: 2\n")
    result = runner.invoke(app, ["migrate", "--config", str(config)])
    assert result.exit_code == 1
    assert "E_STORE_UNAVAILABLE" not in result.output  # a message, not a code dump
    assert "store is unavailable" in result.output


def test_serve_runs_uvicorn_with_flags_over_the_file(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, "worldservice:\n  server:\n"
                               f"    dsn: sqlite:///{tmp_path}/ws.db\n"
                               "    compat_rebalance_v2: true\n"
                               "    bind: {host: 127.0.0.1, port: 1}\n")
    env = {**os.environ, "QMTL__WORLDSERVICE__SERVER__AUTH__TOKENS": '["tok"]'}
    process = subprocess.Popen(
        [sys.executable, "-c", "from qmtl.cli.worldservice import app; app()",
         "serve", "--config", str(config), "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"serve did not start: {output}") from None
                time.sleep(0.1)
        assert health.json()["schema_versions"] == [1, 2]
        denied = httpx.post(f"{url}/rebalancing/plan", json=body(), timeout=10)
        allowed = httpx.post(f"{url}/rebalancing/plan", json=body(schema_version=2),
                             headers={"Authorization": "Bearer tok"}, timeout=10)
        assert denied.status_code == 401
        assert allowed.status_code == 200 and allowed.json()["schema_version"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        if process.stdout:
            process.stdout.close()
    assert (tmp_path / "ws.db").exists()

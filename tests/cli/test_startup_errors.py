"""A configuration that cannot work stops every server command with one line naming the key,
exit status 2 — never a traceback (SPEC 6, 9).

Each case runs the real ``qmtl`` console script in a subprocess (no server ever starts, so
each is about a second).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests._servers import PostgresServer, free_port

from ._up import QMTL

COMMANDS = {
    "up": ["up", "--gateway-port", "{gw}", "--worldservice-port", "{ws}", "--data-dir", "data"],
    "worldservice": ["worldservice", "serve", "--port", "{ws}"],
    "gateway": ["gateway", "serve", "--port", "{gw}"],
}


def run_qmtl(
    workdir: Path,
    command: str,
    config: dict[str, Any] | str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    ports = {"gw": str(free_port()), "ws": str(free_port())}
    args = [QMTL, *(a.format(**ports) for a in COMMANDS[command])]
    if config is not None:
        path = workdir / "qmtl.yaml"
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        args += ["--config", str(path)]
    base = {k: v for k, v in os.environ.items() if not k.startswith("QMTL__")}
    return subprocess.run(
        args,
        cwd=workdir,
        env={**base, "COLUMNS": "300", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_naming(
    result: subprocess.CompletedProcess[str], key: str, *reasons: str
) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ") and key in lines[0], output
    for reason in reasons:
        assert reason in lines[0], output


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A regular file standing where a folder is needed."""
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize("command", ["up", "worldservice"])
def test_unwritable_sqlite_store(tmp_path: Path, blocker: Path, command: str) -> None:
    config = {"worldservice": {"server": {"dsn": f"sqlite:///{blocker}/ws.db"}}}
    assert_one_line_naming(
        run_qmtl(tmp_path, command, config), "worldservice.server.dsn", "is not a folder"
    )


@pytest.mark.parametrize("command", ["up", "gateway"])
def test_unwritable_sqlite_commit_log(tmp_path: Path, blocker: Path, command: str) -> None:
    result = run_qmtl(
        tmp_path, command, env={"QMTL__GATEWAY__COMMIT_LOG": f"sqlite:///{blocker}/log.db"}
    )
    assert_one_line_naming(result, "gateway.commit_log", "is not a folder")


@pytest.mark.parametrize("command", ["up", "worldservice"])
def test_unreachable_postgresql(tmp_path: Path, command: str) -> None:
    dsn = f"postgresql://qmtl@127.0.0.1:{free_port()}/qmtl"
    config = {"worldservice": {"server": {"dsn": dsn, "store_timeout": 5}}}
    assert_one_line_naming(
        run_qmtl(tmp_path, command, config), "worldservice.server.dsn", "ConnectionRefusedError"
    )


def test_missing_postgresql_database(tmp_path: Path, postgres_server: PostgresServer) -> None:
    dsn = postgres_server.dsn("no_such_database")
    config = {"worldservice": {"server": {"dsn": dsn}}}
    assert_one_line_naming(
        run_qmtl(tmp_path, "worldservice", config),
        "worldservice.server.dsn",
        "no_such_database",
        "does not exist",
    )


@pytest.mark.parametrize(
    ("command", "env", "key", "reason"),
    [
        (
            "up",
            {
                "QMTL__GATEWAY__CONTROLBUS": "redis://h:notaport/0",
                "QMTL__WORLDSERVICE__SERVER__CONTROLBUS": "redis://h:notaport/0",
            },
            "worldservice.server.controlbus",
            "'notaport'",
        ),
        (
            "worldservice",
            {"QMTL__WORLDSERVICE__SERVER__CONTROLBUS": "redis://h:6379/abc"},
            "worldservice.server.controlbus",
            "'abc'",
        ),
        (
            "gateway",
            {"QMTL__GATEWAY__COMMIT_LOG": "redis://h:6379/abc"},
            "gateway.commit_log",
            "'abc'",
        ),
    ],
)
def test_malformed_redis_url(
    tmp_path: Path, command: str, env: dict[str, str], key: str, reason: str
) -> None:
    assert_one_line_naming(run_qmtl(tmp_path, command, env=env), key, reason)


@pytest.mark.parametrize(
    ("command", "config", "key"),
    [
        ("up", "gatway:\n  auth: {tokens: [secret]}\n", "gatway"),
        ("worldservice", "worldservice:\n  sever: {auth: {tokens: [s]}}\n", "worldservice.sever"),
        ("gateway", "", "is empty"),
        (
            "worldservice",
            {"worldservice": {"server": {"compat_rebalance_v2": "yes"}}},
            "worldservice.server.compat_rebalance_v2",
        ),
    ],
)
def test_config_mistakes(tmp_path: Path, command: str, config: Any, key: str) -> None:
    assert_one_line_naming(run_qmtl(tmp_path, command, config), key)

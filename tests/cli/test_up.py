"""``qmtl up`` (real subprocess) and ``qmtl demo``; settings resolution as a pure function."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from qmtl.cli.embedded import EMBEDDED_CONTROLBUS, build_up_settings
from qmtl.cli.main import app
from qmtl.contracts.errors import ConfigError

from ._up import QMTL, QmtlUp

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rebalance.json"


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_both_parts_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    up = QmtlUp(tmp_path).start()
    try:
        out = up.stdout()
        assert f"WorldService {up.worldservice_url}" in out
        assert up.gateway_url in out and "press Ctrl-C to stop" in out
        ws_health = httpx.get(f"{up.worldservice_url}/health", timeout=5).json()
        assert ws_health["schema_versions"] == [1, 2]
        gw_health = httpx.get(f"{up.gateway_url}/health", timeout=5).json()
        assert gw_health["capabilities"] == {"rebalance_schema_version": 2,
                                             "alpha_metrics_capable": True}
        assert gw_health["effective_rebalance_schema_version"] == 2
        assert gw_health["status"] == "ok"
        assert (tmp_path / "data" / "worldservice.db").is_file()
        assert (tmp_path / "data" / "commitlog.db").is_file()
    finally:
        code = up.stop(sig=sig)
    assert code == 0, up.stderr()
    assert up.stdout().rstrip().endswith("stopped")
    assert "Traceback" not in up.stderr()


@pytest.mark.e2e
def test_up_demo_runs_plan_apply_event_execute(tmp_path: Path) -> None:
    up = QmtlUp(tmp_path, extra_args=("--demo",))
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "rebalance.json").write_text(EXAMPLE.read_text())
    up.start()
    try:
        deadline = time.monotonic() + 60
        while "demo finished" not in up.stdout() and "demo failed" not in up.stderr():
            assert time.monotonic() < deadline, up.stdout() + up.stderr()
            time.sleep(0.2)
        out = up.stdout()
    finally:
        assert up.stop() == 0
    for heading in ("1. capabilities", "2. plan", "3. apply", "4. execute (dry run)"):
        assert heading in out
    assert "SDK feature alpha_metrics: on" in out
    assert "Events received on the WebSocket" in out
    assert "crypto-momentum" in out and "crypto-meanrev" in out
    assert "submitted=false" in out


@pytest.mark.e2e
def test_demo_command_against_a_running_gateway(tmp_path: Path) -> None:
    # A fresh process: the demo applies the example book's allocations (half the equity).
    up = QmtlUp(tmp_path).start()
    try:
        result = runner.invoke(app, ["demo", "--gateway", up.gateway_url, "--file",
                                     str(EXAMPLE)], env={"COLUMNS": "200"})
    finally:
        assert up.stop() == 0
    assert result.exit_code == 0, result.output
    assert "Events received on the WebSocket" in result.stdout
    assert result.stdout.count("v2") >= 2  # one v2 event per world
    assert "demo finished" in result.stdout


def test_demo_command_with_an_unreachable_gateway_exits_1() -> None:
    from tests._servers import free_port

    result = runner.invoke(app, ["demo", "--gateway", f"http://127.0.0.1:{free_port()}",
                                 "--file", str(EXAMPLE)])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: E_GATEWAY_UNAVAILABLE")
    assert len(result.stderr.strip().splitlines()) == 1


def _config(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "qmtl.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_an_invalid_config_stops_start_up_with_exit_2(tmp_path: Path) -> None:
    config = _config(tmp_path, {"worldservice": {"server": {"alpha_metrics_required": True,
                                                            "compat_rebalance_v2": False}}})
    result = subprocess.run([QMTL, "up", "--config", str(config), "--data-dir",
                             str(tmp_path / "d")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "worldservice.server.alpha_metrics_required" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(("part", "flag"), [("Gateway", "--gateway-port"),
                                            ("WorldService", "--worldservice-port")])
def test_a_port_in_use_is_one_line_naming_the_flag(tmp_path: Path, part: str,
                                                    flag: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = QmtlUp(tmp_path)
        if part == "Gateway":
            up.gateway_port = port
        else:
            up.worldservice_port = port
        result = subprocess.run(up.command(), capture_output=True, text=True, timeout=90)
    assert result.returncode == 1
    assert f"the {part} cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert f"pass {flag} with a free port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_embedded_defaults_are_v2_end_to_end(tmp_path: Path) -> None:
    up = build_up_settings(config=None, data_dir=tmp_path / "d", environ={})
    assert up.worldservice.compat_rebalance_v2 is True
    assert (up.gateway.rebalance_schema_version, up.gateway.alpha_metrics_capable) == (2, True)
    assert up.controlbus == EMBEDDED_CONTROLBUS
    data = (tmp_path / "d").resolve()
    assert up.worldservice.dsn == f"sqlite+aiosqlite:///{data}/worldservice.db"
    assert up.gateway.commit_log == f"sqlite:///{data}/commitlog.db"
    assert up.gateway.worldservice_url == "http://127.0.0.1:8080"
    assert (up.gateway.bind.port, up.worldservice.bind.port) == (8000, 8080)


def test_config_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = _config(tmp_path, {
        "worldservice": {"server": {"bind": {"port": 9080}}},
        "gateway": {"rebalance_schema_version": 1, "alpha_metrics_capable": False,
                    "bind": {"port": 9000}},
    })
    up = build_up_settings(config=config, data_dir=tmp_path, environ={})
    assert up.gateway.rebalance_schema_version == 1
    assert up.worldservice.compat_rebalance_v2 is True  # the file is silent: embedded default
    assert (up.gateway.bind.port, up.worldservice.bind.port) == (9000, 9080)
    assert up.gateway.worldservice_url == "http://127.0.0.1:9080"
    env = {"QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION": "2",
           "QMTL__GATEWAY__ALPHA_METRICS_CAPABLE": "true",
           "QMTL__WORLDSERVICE__SERVER__COMPAT_REBALANCE_V2": "false"}
    up = build_up_settings(config=config, data_dir=tmp_path, environ=env, gateway_port=9100,
                           worldservice_port=9180, host="0.0.0.0")
    assert up.gateway.rebalance_schema_version == 2 and up.gateway.alpha_metrics_capable
    assert up.worldservice.compat_rebalance_v2 is False
    assert (up.gateway.bind.port, up.worldservice.bind.port) == (9100, 9180)
    assert up.gateway.bind.host == "0.0.0.0"
    # A wildcard bind is reached on loopback.
    assert up.gateway.worldservice_url == "http://127.0.0.1:9180"


def test_the_two_parts_must_share_one_bus(tmp_path: Path) -> None:
    config = _config(tmp_path, {"gateway": {"controlbus": "memory://other"}})
    with pytest.raises(ConfigError, match="one ControlBus"):
        build_up_settings(config=config, data_dir=tmp_path, environ={})


def test_the_two_parts_cannot_share_a_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port 8100"):
        build_up_settings(config=None, data_dir=tmp_path, environ={}, gateway_port=8100,
                          worldservice_port=8100)


def test_a_bad_value_names_the_key(tmp_path: Path) -> None:
    env = {"QMTL__GATEWAY__ALPHA_METRICS_CAPABLE": "maybe"}
    with pytest.raises(ConfigError, match="gateway.alpha_metrics_capable"):
        build_up_settings(config=None, data_dir=tmp_path, environ=env)


def test_the_gateway_gets_a_worldservice_token_when_auth_is_on(tmp_path: Path) -> None:
    config = _config(tmp_path, {"worldservice": {"server": {"auth": {"tokens": ["ws-t"]}}}})
    up = build_up_settings(config=config, data_dir=tmp_path, environ={})
    assert up.gateway.worldservice_token == "ws-t"
    assert build_up_settings(config=None, data_dir=tmp_path,
                             environ={}).gateway.worldservice_token is None

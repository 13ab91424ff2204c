"""``qmtl check-health`` and ``scripts/check_gateway_health.py`` against real ``qmtl up``
processes: a v2 configuration passes; a v1 gateway and a v1-only WorldService fail with the
reason (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qmtl.cli.main import app
from tests._servers import free_port

from ._up import QMTL, QmtlUp

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_gateway_health.py"
runner = CliRunner()


def _invoke(*args: str) -> Any:
    return runner.invoke(app, ["check-health", *args])


def test_v2_configuration_passes(up_v2: QmtlUp) -> None:
    result = _invoke("--gateway", up_v2.gateway_url, "--expect-schema-version", "2",
                     "--expect-alpha-metrics")
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    assert "effective_schema_version=2" in result.stdout


def test_v2_configuration_as_json(up_v2: QmtlUp) -> None:
    result = _invoke("--gateway", up_v2.gateway_url, "--expect-schema-version", "2",
                     "--output", "json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["rebalance_schema_version"] == summary["effective_schema_version"] == 2


def test_expecting_more_than_served_fails_with_the_reason(up_v2: QmtlUp) -> None:
    result = _invoke("--gateway", up_v2.gateway_url, "--expect-schema-version", "3")
    assert result.exit_code == 1
    assert "advertised rebalance_schema_version is 2, expected exactly 3" in result.stderr
    at_least = _invoke("--gateway", up_v2.gateway_url, "--min-schema-version", "3")
    assert at_least.exit_code == 1
    assert "advertised rebalance_schema_version is 2, expected >= 3" in at_least.stderr


def test_expect_is_exact_and_min_is_at_least(up_v2: QmtlUp) -> None:
    # A v2 gateway is not a v1 gateway: a canary that must stay on v1 fails the check...
    exact = _invoke("--gateway", up_v2.gateway_url, "--expect-schema-version", "1")
    assert exact.exit_code == 1
    assert "expected exactly 1" in exact.stderr
    # ...while "at least 1" holds, and so does "exactly 2" and "at least 2".
    assert _invoke("--gateway", up_v2.gateway_url, "--min-schema-version", "1").exit_code == 0
    assert _invoke("--gateway", up_v2.gateway_url, "--expect-schema-version", "2",
                   "--min-schema-version", "2").exit_code == 0


def test_the_gateway_defaults_to_the_environment(up_v2: QmtlUp) -> None:
    result = CliRunner(env={"QMTL_GATEWAY_URL": up_v2.gateway_url}).invoke(
        app, ["check-health", "--expect-schema-version", "2"])
    assert result.exit_code == 0, result.output
    assert up_v2.gateway_url in result.stdout


def test_v1_gateway_fails_with_the_reason(up_v1_gateway: QmtlUp) -> None:
    result = _invoke("--gateway", up_v1_gateway.gateway_url, "--expect-schema-version", "2",
                     "--expect-alpha-metrics")
    assert result.exit_code == 1
    assert "advertised rebalance_schema_version is 1, expected exactly 2" in result.stderr
    assert "effective schema version (what the WorldService will serve) is 1" in result.stderr
    assert "not alpha_metrics_capable" in result.stderr
    # v1 is what it serves: expecting 1 passes.
    assert _invoke("--gateway", up_v1_gateway.gateway_url,
                   "--expect-schema-version", "1").exit_code == 0


def test_v1_only_worldservice_fails_on_the_effective_version(up_v1_worldservice: QmtlUp) -> None:
    result = _invoke("--gateway", up_v1_worldservice.gateway_url, "--expect-schema-version", "2")
    assert result.exit_code == 1
    assert "advertised" not in result.stderr
    assert ("effective schema version (what the WorldService will serve) is 1, expected "
            "exactly 2") in result.stderr


def test_unreachable_gateway_fails(tmp_path: Path) -> None:
    result = _invoke("--gateway", f"http://127.0.0.1:{free_port()}", "--expect-schema-version",
                     "2", "--timeout", "2")
    assert result.exit_code == 1
    assert "gateway unreachable" in result.stderr


def test_bad_usage_is_exit_2() -> None:
    assert _invoke("--gateway", "http://127.0.0.1:1", "--expect-schema-version", "0"
                   ).exit_code == 2
    assert _invoke("--gateway", "ftp://x", "--expect-schema-version", "2").exit_code == 2
    neither = _invoke("--gateway", "http://127.0.0.1:1")
    assert neither.exit_code == 2 and "--min-schema-version" in neither.stderr


def test_script_and_command_share_options_and_help() -> None:
    env = {"COLUMNS": "80", "PATH": ""}
    script = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                            text=True, timeout=60, env=env)
    command = subprocess.run([QMTL, "check-health", "--help"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert script.returncode == 0 and command.returncode == 0

    def body(text: str) -> str:
        return text.split("\n", 1)[1]  # the usage line names the program

    assert body(script.stdout) == body(command.stdout)
    flat = " ".join(command.stdout.split())
    assert "exactly N" in flat and "at least N" in flat
    assert "http://127.0.0.1:8000" in command.stdout


def test_installed_command_exit_codes(up_v2: QmtlUp, up_v1_gateway: QmtlUp) -> None:
    ok = subprocess.run([QMTL, "check-health", "--gateway", up_v2.gateway_url,
                         "--expect-schema-version", "2"], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([QMTL, "check-health", "--gateway", up_v1_gateway.gateway_url,
                          "--expect-schema-version", "2"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1
    assert "rebalance_schema_version is 1" in bad.stderr and "Traceback" not in bad.stderr


def test_seed_script_runs_the_same_check(up_v2: QmtlUp, up_v1_gateway: QmtlUp) -> None:
    ok = subprocess.run([sys.executable, str(SCRIPT), "--expect-schema-version", "2",
                         "--gateway", up_v2.gateway_url], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = subprocess.run([sys.executable, str(SCRIPT), "--expect-schema-version", "2",
                          "--gateway", up_v1_gateway.gateway_url, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["ok"] is False
    usage = subprocess.run([sys.executable, str(SCRIPT), "--expect-schema-version", "two"],
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2


def test_a_worldservice_url_is_named(up_v2: QmtlUp) -> None:
    result = _invoke("--gateway", up_v2.worldservice_url, "--expect-schema-version", "2")
    assert result.exit_code == 1
    assert "answers like a WorldService, not a gateway" in result.stderr

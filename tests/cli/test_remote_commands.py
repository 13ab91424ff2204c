"""``qmtl plan/apply/execute --gateway`` through the real entry point against a real ``qmtl up``.

Commands run in-process with typer's CliRunner (the real ``qmtl.cli.main.app``); a few run
the installed ``qmtl`` script as a subprocess. The gateway and WorldService are a real
``qmtl up`` process on free ports.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qmtl.cli.main import app
from tests._servers import free_port

from ._up import QMTL, QmtlUp
from .conftest import BOOK, write_request

pytestmark = pytest.mark.e2e

runner = CliRunner()


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def _json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_plan_through_the_gateway_as_a_table(up_v2: QmtlUp, book: Path) -> None:
    result = _invoke("plan", str(book), "--gateway", up_v2.gateway_url)
    assert result.exit_code == 0, result.output
    assert "Rebalance plan" in result.stdout and "schema_version 2" in result.stdout
    assert "wa" in result.stdout and "Alpha metrics" in result.stdout
    assert "Global deltas" in result.stdout


def test_plan_through_the_gateway_as_json(up_v2: QmtlUp, book: Path) -> None:
    document = _json(_invoke("plan", str(book), "--gateway", up_v2.gateway_url, "-o", "json"))
    assert document["schema_version"] == 2
    assert set(document["per_world"]) == {"wa", "wb"}
    # wa: 0.3 -> 0.2 of equity, scale 2/3: BTC 0.6 -> -0.2, ETH 3 -> -1 (lots 0.001, 0.01).
    deltas = {d["symbol"]: d["delta_qty"] for d in document["per_world"]["wa"]["deltas"]}
    assert deltas == pytest.approx({"BTC": -0.2, "ETH": -1.0})
    assert set(document["alpha_metrics"]["per_world"]) == {"wa", "wb"}


def test_plan_schema_version_flag_asks_for_v1(up_v2: QmtlUp, book: Path) -> None:
    document = _json(_invoke("plan", str(book), "--gateway", up_v2.gateway_url,
                             "--schema-version", "1", "-o", "json"))
    assert document["schema_version"] == 1
    assert "alpha_metrics" not in document and "rebalance_intent" not in document


def test_gateway_url_from_the_environment_and_input_alias(up_v2: QmtlUp, book: Path) -> None:
    document = _json(_invoke("plan", "--input", str(book), "-o", "json",
                             env={"QMTL_GATEWAY_URL": up_v2.gateway_url}))
    assert document["schema_version"] == 2


def test_compat_v2_is_refused_with_a_gateway(up_v2: QmtlUp, book: Path) -> None:
    result = _invoke("plan", str(book), "--gateway", up_v2.gateway_url, "--compat-v2")
    assert result.exit_code == 2
    assert "local planning only" in result.stderr


def test_apply_table_and_json_with_run_id(up_v2: QmtlUp, book: Path) -> None:
    table = _invoke("apply", str(book), "--gateway", up_v2.gateway_url, "--run-id", "cli-r1")
    assert table.exit_code == 0, table.output
    assert "run_id cli-r1" in table.stdout
    again = _json(_invoke("apply", str(book), "--gateway", up_v2.gateway_url, "--run-id",
                          "cli-r1", "--output", "json"))
    assert again["run_id"] == "cli-r1" and again["etag"]


def test_apply_with_a_reused_run_id_and_another_body_is_a_conflict(up_v2: QmtlUp,
                                                                   tmp_path: Path) -> None:
    first = write_request(tmp_path, "a.json")
    other = write_request(tmp_path, "b.json", world_alloc_after={"wa": 0.25, "wb": 0.3})
    assert _invoke("apply", str(first), "--gateway", up_v2.gateway_url,
                   "--run-id", "cli-conflict").exit_code == 0
    result = _invoke("apply", str(other), "--gateway", up_v2.gateway_url,
                     "--run-id", "cli-conflict")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: E_RUN_ID_CONFLICT:")
    assert "(HTTP 409)" in result.stderr


def test_execute_dry_run_table_and_json(up_v2: QmtlUp, book: Path) -> None:
    table = _invoke("execute", str(book), "--gateway", up_v2.gateway_url)
    assert table.exit_code == 0, table.output
    assert "submitted=false" in table.stdout and "Orders for world wa" in table.stdout
    document = _json(_invoke("execute", str(book), "--gateway", up_v2.gateway_url,
                             "--per-strategy", "-o", "json"))
    assert document["submitted"] is False
    assert document["rebalance_schema_version"] == 2
    sides = {o["symbol"]: o["side"] for o in document["orders_per_world"]["wa"]}
    assert sides == {"BTC": "sell", "ETH": "sell"}
    assert set(document["orders_per_strategy"]["wa"]) == {"sa", "sb"}


def test_execute_submit_needs_allow_live(up_v2: QmtlUp, book: Path) -> None:
    refused = _invoke("execute", str(book), "--gateway", up_v2.gateway_url, "--submit")
    assert refused.exit_code == 1
    assert "E_PERMISSION_DENIED" in refused.stderr and "(HTTP 403)" in refused.stderr
    document = _json(_invoke("execute", str(book), "--gateway", up_v2.gateway_url, "--submit",
                             "--allow-live", "-o", "json"))
    assert document["submitted"] is True and document["batch_ids"]


def test_shared_account_is_disabled_by_default(up_v2: QmtlUp, book: Path) -> None:
    result = _invoke("execute", str(book), "--gateway", up_v2.gateway_url, "--shared-account")
    assert result.exit_code == 1
    assert "E_SHARED_ACCOUNT_DISABLED" in result.stderr


@pytest.mark.parametrize(
    ("changes", "code", "status"),
    [
        ({"mode": "hybrid"}, "E_REBALANCE_MODE_UNSUPPORTED", 501),
        ({"mode": "overlay"}, "E_OVERLAY_CONFIG_REQUIRED", 422),
    ],
)
@pytest.mark.parametrize("command", ["plan", "apply", "execute"])
def test_gateway_errors_show_code_message_and_status(up_v2: QmtlUp, tmp_path: Path,
                                                     command: str, changes: dict[str, Any],
                                                     code: str, status: int) -> None:
    request = write_request(tmp_path, **changes)
    result = _invoke(command, str(request), "--gateway", up_v2.gateway_url)
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith(f"error: {code}: ") and line.endswith(f"(HTTP {status})")
    assert "Traceback" not in result.output


def test_an_invalid_request_file_is_rejected_before_sending(up_v2: QmtlUp,
                                                            tmp_path: Path) -> None:
    positions = [dict(BOOK["positions"][0], mark=-1.0)]
    request = write_request(tmp_path, positions=positions)
    result = _invoke("apply", str(request), "--gateway", up_v2.gateway_url)
    assert result.exit_code == 2
    assert "positions.0.mark" in result.stderr


def test_missing_gateway_and_missing_file_are_usage_errors(book: Path) -> None:
    assert _invoke("apply", str(book)).exit_code == 2
    assert _invoke("execute", "--gateway", "http://127.0.0.1:1").exit_code == 2
    bad = _invoke("apply", str(book), "--gateway", "127.0.0.1:8000")
    assert bad.exit_code == 2 and "http://" in bad.stderr


def test_an_unreachable_gateway_is_one_line_and_exit_1(book: Path) -> None:
    result = _invoke("plan", str(book), "--gateway", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: E_GATEWAY_UNAVAILABLE:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_installed_script_prints_json_and_error_codes(up_v2: QmtlUp, tmp_path: Path) -> None:
    book = write_request(tmp_path)
    ok = subprocess.run([QMTL, "plan", str(book), "--gateway", up_v2.gateway_url, "-o", "json"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["schema_version"] == 2
    hybrid = write_request(tmp_path, "hybrid.json", mode="hybrid")
    bad = subprocess.run([QMTL, "execute", str(hybrid), "--gateway", up_v2.gateway_url],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "E_REBALANCE_MODE_UNSUPPORTED" in bad.stderr and "Traceback" not in bad.stderr


def test_an_unknown_version_is_the_same_usage_error_through_the_gateway(up_v2: QmtlUp,
                                                                        tmp_path: Path) -> None:
    request = write_request(tmp_path, "v3.json", schema_version=3)
    remote = _invoke("plan", str(request), "--gateway", up_v2.gateway_url)
    local = runner.invoke(app, ["plan", str(request)], env={"QMTL_GATEWAY_URL": None})
    assert remote.exit_code == local.exit_code == 2
    assert remote.stderr == local.stderr
    assert "schema_version 3 is not supported" in remote.stderr

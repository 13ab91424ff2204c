"""``qmtl rehearsal`` against real ``qmtl up`` processes: green on v2 with artefacts written,
red with the failed step named on a v1-only WorldService and on a v1 gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qmtl.cli.main import app
from qmtl.sdk import REHEARSAL_STEPS

from ._up import QmtlUp

pytestmark = pytest.mark.e2e

runner = CliRunner()


def _rehearse(up: QmtlUp, out: Path) -> tuple[Any, dict[str, Any], str]:
    result = runner.invoke(app, ["rehearsal", "--gateway", up.gateway_url, "--out", str(out)],
                           env={"COLUMNS": "200"})
    report = json.loads((out / "rehearsal.json").read_text())
    markdown = (out / "rehearsal.md").read_text()
    return result, report, markdown


def test_green_on_a_v2_configuration(up_v2: QmtlUp, tmp_path: Path) -> None:
    result, report, markdown = _rehearse(up_v2, tmp_path / "artefacts")
    assert result.exit_code == 0, result.output
    assert report["ok"] is True and report["failed_step"] is None
    assert [s["name"] for s in report["steps"]] == list(REHEARSAL_STEPS)
    assert all(s["status"] == "passed" for s in report["steps"])
    event_step = report["steps"][-1]
    assert "2 v2 event(s) received" in event_step["detail"]
    assert "**PASSED**" in markdown
    assert "rehearsal passed" in result.stdout


def test_red_on_a_v1_gateway_naming_the_step(up_v1_gateway: QmtlUp, tmp_path: Path) -> None:
    result, report, markdown = _rehearse(up_v1_gateway, tmp_path / "a")
    assert result.exit_code == 1
    assert report["ok"] is False and report["failed_step"] == "capabilities"
    statuses = {s["name"]: s["status"] for s in report["steps"]}
    assert statuses["health"] == "passed"
    assert statuses["capabilities"] == "failed"
    assert all(statuses[name] == "skipped" for name in REHEARSAL_STEPS[2:])
    assert "not alpha_metrics_capable" in report["steps"][1]["detail"]
    assert "rehearsal failed at step 'capabilities'" in result.stderr
    assert "FAILED at step `capabilities`" in markdown


def test_red_on_a_v1_only_worldservice_naming_the_step(up_v1_worldservice: QmtlUp,
                                                       tmp_path: Path) -> None:
    result, report, _ = _rehearse(up_v1_worldservice, tmp_path / "a")
    assert result.exit_code == 1
    assert report["failed_step"] == "capabilities"
    assert "effective schema version 1 < 2" in report["steps"][1]["detail"]


def test_red_on_an_unreachable_gateway_with_artefacts(tmp_path: Path) -> None:
    from tests._servers import free_port

    out = tmp_path / "a"
    result = runner.invoke(app, ["rehearsal", "--gateway", f"http://127.0.0.1:{free_port()}",
                                 "--out", str(out)])
    assert result.exit_code == 1
    report = json.loads((out / "rehearsal.json").read_text())
    assert report["failed_step"] == "health"
    assert "GatewayUnavailable" in report["steps"][0]["detail"]

"""``qmtl apply`` says what happened; ``qmtl events``, ``allocations``, ``runs show`` and
``audit`` read through a real gateway (``qmtl up``); a ``--gateway`` pointed at the
WorldService is named as such; order tables and CSV carry a side and an unsigned size."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qmtl.cli.main import app
from tests._servers import free_port

from ._up import QmtlUp
from .conftest import write_request

pytestmark = pytest.mark.e2e

runner = CliRunner()


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200", "QMTL_GATEWAY_URL": None})


def _own_world(tmp_path: Path, world: str) -> Path:
    """A one-world request whose world no other test touches (so its events are ours); tiny
    ratios, because the session's WorldService refuses stored allocations summing over 1."""
    return write_request(
        tmp_path, f"{world}.json", world_alloc_before={world: 0.002},
        world_alloc_after={world: 0.001}, alpha_series=None, schema_version=2,
        positions=[{"world_id": world, "strategy_id": "s", "symbol": "BTC", "qty": 1.0,
                    "mark": 20000.0, "venue": "x"}])


def test_apply_says_recorded_then_replayed(up_v2: QmtlUp, tmp_path: Path) -> None:
    request = _own_world(tmp_path, "apply-says")
    first = _invoke("apply", str(request), "--gateway", up_v2.gateway_url, "--run-id", "says-1")
    assert first.exit_code == 0, first.output
    assert "recorded run says-1, 1 event(s) published" in first.stdout
    assert "rebalancing_planned on the ControlBus" in first.stdout
    again = _invoke("apply", str(request), "--gateway", up_v2.gateway_url, "--run-id", "says-1")
    assert again.exit_code == 0, again.output
    assert "replayed run says-1" in again.stdout and "nothing recorded" in again.stdout


def test_submit_without_allow_live_names_the_flag(up_v2: QmtlUp, tmp_path: Path) -> None:
    result = _invoke("execute", str(write_request(tmp_path)), "--gateway", up_v2.gateway_url,
                     "--submit")
    assert result.exit_code == 1
    assert "pass --allow-live" in result.stderr


def test_orders_show_side_and_unsigned_size(up_v2: QmtlUp, tmp_path: Path) -> None:
    request = str(write_request(tmp_path))
    rows = list(csv.reader(io.StringIO(
        _invoke("execute", request, "--gateway", up_v2.gateway_url, "-o", "csv").stdout)))
    assert rows[0][:7] == ["scope", "world_id", "strategy_id", "venue", "symbol", "side", "size"]
    by_symbol = {(r[1], r[4]): (r[5], float(r[6])) for r in rows[1:]}
    # wa: 0.3 -> 0.2 scales BTC 0.6 -> 0.4 and ETH 3 -> 2: sells of 0.2 and 1 (unsigned)
    assert by_symbol[("wa", "BTC")] == ("sell", pytest.approx(0.2))
    assert by_symbol[("wa", "ETH")] == ("sell", pytest.approx(1.0))
    table = _invoke("execute", request, "--gateway", up_v2.gateway_url)
    assert "\tsell\t0.2\t" in table.stdout and "-0.2" not in table.stdout


def test_a_worldservice_url_is_named(up_v2: QmtlUp, tmp_path: Path) -> None:
    for command in (["plan", str(write_request(tmp_path))], ["allocations"],
                    ["events", "--count", "1"]):
        result = _invoke(*command, "--gateway", up_v2.worldservice_url)
        assert result.exit_code == 2, result.output
        assert "looks like a WorldService, not a gateway" in result.stderr


def test_reads_through_the_gateway(up_v2: QmtlUp, tmp_path: Path) -> None:
    request = _own_world(tmp_path, "reads-w")
    applied = json.loads(_invoke("apply", str(request), "--gateway", up_v2.gateway_url,
                                 "--run-id", "reads-1", "-o", "json").stdout)
    allocations = json.loads(_invoke("allocations", "--world", "reads-w", "--gateway",
                                     up_v2.gateway_url, "-o", "json").stdout)
    assert allocations["worlds"]["reads-w"]["ratio"] == pytest.approx(0.001)
    assert allocations["etag"] == applied["etag"]
    table = _invoke("allocations", "--gateway", up_v2.gateway_url)
    assert table.exit_code == 0 and "reads-w\t0.001" in table.stdout
    run = json.loads(_invoke("runs", "show", "reads-1", "--gateway", up_v2.gateway_url,
                             "-o", "json").stdout)
    assert run["run_id"] == "reads-1" and set(run["per_world"]) == {"reads-w"}
    audit = json.loads(_invoke("audit", "reads-w", "--gateway", up_v2.gateway_url,
                               "-o", "json").stdout)
    assert [e["run_id"] for e in audit["entries"]] == ["reads-1"]
    assert audit["entries"][0]["ratio_after"] == pytest.approx(0.001)
    audit_csv = _invoke("audit", "reads-w", "--gateway", up_v2.gateway_url, "-o", "csv")
    assert audit_csv.stdout.splitlines()[0].startswith("seq,created_at,run_id")
    missing = _invoke("runs", "show", "no-such-run", "--gateway", up_v2.gateway_url)
    assert missing.exit_code == 1 and "E_NOT_FOUND" in missing.stderr


@pytest.mark.parametrize("event_type", ["rebalancing_planned", "rebalancing.planned"])
def test_events_resume_filter_and_json_lines(up_v2: QmtlUp, tmp_path: Path,
                                             event_type: str) -> None:
    world = f"events-{event_type.replace('.', '-')}"
    request = _own_world(tmp_path, world)
    assert _invoke("apply", str(request), "--gateway", up_v2.gateway_url,
                   "--run-id", f"run-{world}").exit_code == 0
    result = _invoke("events", "--gateway", up_v2.gateway_url, "--world", world,
                     "--type", event_type, "--since-seq", "0", "--count", "1", "-o", "json")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    event = json.loads(line)
    assert event["type"] == "rebalancing.planned"
    assert event["data"]["world_id"] == world and event["data"]["run_id"] == f"run-{world}"
    table = _invoke("events", "--gateway", up_v2.gateway_url, "--world", world,
                    "--since-seq", "0", "--count", "1")
    assert table.exit_code == 0, table.output
    assert f"world {world}" in table.stdout and f"seq {event['seq']}" in table.stdout


def test_events_refuse_an_unknown_type() -> None:
    result = _invoke("events", "--gateway", "http://127.0.0.1:1", "--type", "rebalancing.done")
    assert result.exit_code == 2
    assert "rebalancing.planned" in result.stderr and "rebalancing_planned" in result.stderr


def test_events_from_an_unreachable_gateway_is_one_line_and_exit_1() -> None:
    result = _invoke("events", "--gateway", f"http://127.0.0.1:{free_port()}", "--count", "1")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: E_GATEWAY_UNAVAILABLE:")

"""``qmtl plan FILE`` without a gateway plans locally at the file's schema_version (the
``--gateway`` path lives in ``test_remote_commands.py``); FILE / ``--input`` handling; plain
and CSV output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from qmtl.cli.main import app

# Local planning only: a QMTL_GATEWAY_URL in the environment would send the plan remote.
runner = CliRunner(env={"QMTL_GATEWAY_URL": None})
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rebalance.json"


def test_local_plan_serves_the_version_the_file_asks_for(tmp_path: Path) -> None:
    # examples/rebalance.json asks for schema_version 2: there is no WorldService to
    # negotiate with, so that is what is served (with the v2 alpha metrics and intent).
    v2 = runner.invoke(app, ["plan", str(EXAMPLE), "-o", "json"])
    assert v2.exit_code == 0, v2.output
    document = json.loads(v2.stdout)
    assert document["schema_version"] == 2
    assert "alpha_metrics" in document and "rebalance_intent" in document
    v1 = runner.invoke(app, ["plan", "--input", str(EXAMPLE), "--schema-version", "1",
                             "-o", "json"])
    assert v1.exit_code == 0, v1.output
    assert json.loads(v1.stdout)["schema_version"] == 1
    assert "alpha_metrics" not in json.loads(v1.stdout)
    no_version = tmp_path / "v1.json"
    payload = json.loads(EXAMPLE.read_text())
    del payload["schema_version"], payload["alpha_series"], payload["rebalance_intent"]
    no_version.write_text(json.dumps(payload))
    assert json.loads(runner.invoke(app, ["plan", str(no_version), "-o", "json"]).stdout
                      )["schema_version"] == 1


def test_an_unknown_version_is_bad_input(tmp_path: Path) -> None:
    v3 = tmp_path / "v3.json"
    v3.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "schema_version": 3}))
    result = runner.invoke(app, ["plan", str(v3)])
    assert result.exit_code == 2
    assert "schema_version 3 is not supported" in result.stderr
    flag = runner.invoke(app, ["plan", str(EXAMPLE), "--schema-version", "3"])
    assert flag.exit_code == 2 and "schema_version 3 is not supported" in flag.stderr


def test_compat_v2_is_accepted_but_no_longer_needed() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLE), "--compat-v2", "-o", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["schema_version"] == 2
    assert "no longer needed" in result.stderr


def test_piped_table_is_tab_separated_and_keeps_every_value() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLE)], terminal_width=40)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Rebalance plan: schema_version 2"
    world_rows = lines[lines.index("# Deltas per world") + 1:]
    assert world_rows[0].split("\t") == ["world", "venue", "symbol", "delta_qty"]
    # hand-checked: momentum 0.3 -> 0.2 scales its 0.6+0.9 BTC by 2/3: -0.5
    assert "crypto-momentum\tbinance\tBTCUSDT\t-0.5" in world_rows
    assert "…" not in result.stdout


def test_csv_lists_every_delta_with_its_scope() -> None:
    result = runner.invoke(app, ["plan", str(EXAMPLE), "-o", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["scope", "world_id", "venue", "symbol", "delta_qty"]
    assert ["world", "crypto-meanrev", "binance", "ETHUSDT", "-2.0"] in rows
    assert ["global", "", "binance", "ETHUSDT", "-6.0"] in rows
    assert len(rows) == 1 + 4 + 2


def test_file_and_input_must_agree(tmp_path: Path) -> None:
    assert runner.invoke(app, ["plan", str(EXAMPLE), "--input", str(EXAMPLE), "-o", "json"]
                         ).exit_code == 0
    other = runner.invoke(app, ["plan", str(EXAMPLE), "--input", str(tmp_path / "x.json")])
    assert other.exit_code == 2 and "different files" in other.stderr
    missing = runner.invoke(app, ["plan"])
    assert missing.exit_code == 2 and "missing the request file" in missing.stderr

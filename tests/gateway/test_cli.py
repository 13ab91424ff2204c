"""`qmtl gateway serve` and `qmtl commitlog tail`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from qmtl.cli import gateway as gateway_cli
from qmtl.cli.main import app as qmtl_app
from qmtl.gateway.commitlog import CommitRecord, SqliteCommitLog
from qmtl.gateway.config import load_gateway_settings
from qmtl.web.server import free_port

runner = CliRunner()


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qmtl.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("args", "env", "key"),
    [
        (["--rebalance-schema-version", "0"], {}, "gateway.rebalance_schema_version"),
        (["--alpha-metrics-capable"], {}, "gateway.alpha_metrics_capable"),
        ([], {"QMTL__GATEWAY__ENFORCE_LIVE_GUARD": "perhaps"}, "gateway.enforce_live_guard"),
        ([], {"QMTL__GATEWAY__COMMIT_LOG": "mysql://x"}, "gateway.commit_log"),
    ],
)
def test_serve_config_errors_print_one_line_and_exit_2(args: list[str], env: dict[str, str],
                                                       key: str) -> None:
    result = runner.invoke(qmtl_app, ["gateway", "serve", *args], env=env)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0]


def test_serve_rejects_an_unknown_key_in_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "gateway:\n  rebalance_schema_verison: 2\n")
    result = runner.invoke(qmtl_app, ["gateway", "serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "gateway.rebalance_schema_verison: unknown key" in result.output


def test_flags_win_over_environment_over_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "gateway:\n  rebalance_schema_version: 1\n"
                                    "  bind: {host: 127.0.0.2, port: 8100}\n")
    env = {"QMTL__GATEWAY__REBALANCE_SCHEMA_VERSION": "2",
           "QMTL__GATEWAY__ALPHA_METRICS_CAPABLE": "true", "QMTL__GATEWAY__BIND__PORT": "8200"}
    settings = load_gateway_settings(
        config, environ=env,
        overrides=gateway_cli.flag_overrides(host=None, port=8300, schema_version=None,
                                             alpha_metrics_capable=None))
    assert settings.rebalance_schema_version == 2  # environment over file
    assert settings.alpha_metrics_capable is True
    assert (settings.bind.host, settings.bind.port) == ("127.0.0.2", 8300)  # flag over env
    flagged = load_gateway_settings(
        config, environ=env,
        overrides=gateway_cli.flag_overrides(host="127.0.0.1", port=None, schema_version=2,
                                             alpha_metrics_capable=False))
    assert flagged.alpha_metrics_capable is False and flagged.bind.port == 8200


@pytest.mark.e2e
def test_serve_runs_a_gateway_process(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, f"gateway:\n  rebalance_schema_version: 1\n"
                                    f"  commit_log: sqlite:///{tmp_path}/log.db\n"
                                    f"  worldservice_url: http://127.0.0.1:{free_port()}\n")
    env = {**os.environ, "QMTL__GATEWAY__COMPUTE_CONTEXT_CONTRACT": "ctx-v3"}
    log = tmp_path / "gateway.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "qmtl"), "gateway", "serve", "--config", str(config),
             "--port", str(port), "--rebalance-schema-version", "2", "--alpha-metrics-capable",
             "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        health = None
        for _ in range(300):  # wait for start-up (a hang guard, not a latency check)
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
        assert health is not None
        assert health["capabilities"] == {"rebalance_schema_version": 2,
                                          "alpha_metrics_capable": True,
                                          "compute_context_contract": "ctx-v3"}
        assert health["worldservice"]["status"] == "down"
    finally:
        process.terminate()
        process.wait(30)


def _fill(path: Path, count: int) -> None:
    async def fill() -> None:
        log = SqliteCommitLog(path)
        await log.start()
        records = [CommitRecord.rebalance(
            ts_ms=1_700_000_000_000 + i, batch_id=f"b{i}",
            payload={"event": "gateway.rebalance", "version": 1, "world_id": f"w{i}",
                     "scope": "per_world", "orders": [], "run_id": "r1",
                     "counts": {"orders": 0, "buy": 0, "sell": 0, "reduce_only": 0},
                     "reduce_only_ratio": 0.0, "submitted_at": "2023-11-14T22:13:20+00:00"})
            for i in range(count)]
        await log.append(records, run_id=None, body_hash="h", response={})
        await log.close()

    asyncio.run(fill())


def test_commitlog_tail_table_and_json(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _fill(db, 3)
    config = write_config(tmp_path, f"gateway:\n  commit_log: sqlite:///{db}\n")
    as_json = runner.invoke(qmtl_app, ["commitlog", "tail", "--config", str(config),
                                       "--limit", "2", "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    wire = json.loads(as_json.output)
    assert [r[2] for r in wire] == ["b1", "b2"]  # the newest two, oldest first
    assert wire[0][0] == "gateway.rebalance" and wire[0][1] == 1_700_000_000_001
    table = runner.invoke(qmtl_app, ["commitlog", "tail", "--config", str(config)],
                          env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "b0" in table.output and "w2" in table.output and "per_world" in table.output


def test_commitlog_tail_unreadable_exits_1(tmp_path: Path) -> None:
    garbage = tmp_path / "log.db"
    garbage.write_bytes(b"not an sqlite file" * 100)
    config = write_config(tmp_path, f"gateway:\n  commit_log: sqlite:///{garbage}\n")
    result = runner.invoke(qmtl_app, ["commitlog", "tail", "--config", str(config)])
    assert result.exit_code == 1
    assert "E_COMMITLOG_UNAVAILABLE" in result.output


def test_commitlog_tail_reads_the_data_dir_of_qmtl_up(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(tmp_path / "data" / "commitlog.db", 3)  # where `qmtl up --data-dir data` writes
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(qmtl_app, ["commitlog", "tail", "--data-dir", "data", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert [r[2] for r in json.loads(result.output)] == ["b0", "b1", "b2"]
    # The configuration still wins over --data-dir, as it does for the gateway.
    config = write_config(tmp_path, "gateway:\n  commit_log: sqlite:///elsewhere/log.db\n")
    result = runner.invoke(qmtl_app, ["commitlog", "tail", "--data-dir", "data",
                                      "--config", str(config)])
    assert result.exit_code == 1 and "elsewhere/log.db" in result.output


@pytest.mark.parametrize("args", [[], ["--data-dir", "no-such-dir"],
                                  ["--data-dir", "existing-dir"]])
def test_commitlog_tail_never_creates_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            args: list[str]) -> None:
    (tmp_path / "existing-dir").mkdir()
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = runner.invoke(qmtl_app, ["commitlog", "tail", *args])
    assert result.exit_code == 1
    assert "no commit log at" in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_commitlog_tail_leaves_an_existing_log_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    _fill(db, 1)
    files = sorted(tmp_path.iterdir())
    content = db.read_bytes()
    result = runner.invoke(qmtl_app, ["commitlog", "tail", "--data-dir", str(tmp_path)],
                           env={"QMTL__GATEWAY__COMMIT_LOG": f"sqlite:///{db}"})
    assert result.exit_code == 0, result.output
    assert sorted(tmp_path.iterdir()) == files and db.read_bytes() == content


def test_commitlog_tail_bad_options_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(qmtl_app, ["commitlog", "tail", "--output", "xml"])
    assert result.exit_code == 2

"""SDK: ``plan`` takes a pyarrow Table or a pandas/polars DataFrame for the positions and sends
Arrow IPC when pyarrow is installed; ``plan_table`` asks for Arrow back. The calls go to a
real WorldService app in-process (it serves the same plan path as the gateway)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from qmtl.sdk import GatewayClient
from qmtl.sdk import _client as sdk_client
from tests.worldservice.conftest import body, make_settings, running

pa = pytest.importorskip("pyarrow")


def _pandas() -> Any:
    # pandas is not a default dependency (it comes with the `parity` group): CI runs these
    # tests in its parity step, `uv run --group parity pytest tests/sdk/test_arrow.py`.
    return pytest.importorskip("pandas")


def _fields() -> dict[str, Any]:
    return {k: v for k, v in body().items() if k != "positions"}


async def _plans(
    tmp_path: Path, positions: Any, *, arrow: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with running(make_settings(f"sqlite:///{tmp_path}/ws.db")) as ws:
        transport = httpx.ASGITransport(app=ws.client._transport.app)  # type: ignore[attr-defined]
        async with GatewayClient("http://ws", transport=transport) as client:
            expected = await client.plan(body())
            got = await client.plan(_fields(), positions=positions)
    return expected, got


async def test_plan_with_a_pyarrow_table(tmp_path: Path) -> None:
    expected, got = await _plans(tmp_path, pa.Table.from_pylist(body()["positions"]))
    assert got == expected
    assert got["global_deltas"][0] == {"symbol": "BTCUSDT", "delta_qty": -0.5, "venue": "binance"}


async def test_plan_with_a_pandas_dataframe(tmp_path: Path) -> None:
    expected, got = await _plans(tmp_path, _pandas().DataFrame(body()["positions"]))
    assert got == expected


async def test_plan_with_a_polars_like_frame(tmp_path: Path) -> None:
    class Frame:  # what the SDK uses of a polars DataFrame: to_arrow()
        def to_arrow(self) -> Any:
            return pa.Table.from_pylist(body()["positions"])

    expected, got = await _plans(tmp_path, Frame())
    assert got == expected


async def test_without_pyarrow_a_dataframe_goes_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit-level: ``arrow_available`` is patched to report pyarrow missing."""
    sent: list[str] = []
    monkeypatch.setattr(sdk_client, "arrow_available", lambda: False)
    async with running(make_settings(f"sqlite:///{tmp_path}/ws.db")) as ws:
        app = ws.client._transport.app  # type: ignore[attr-defined]

        async def spy(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                sent.append(dict(scope["headers"]).get(b"content-type", b"").decode())
            await app(scope, receive, send)

        async with GatewayClient("http://ws", transport=httpx.ASGITransport(app=spy)) as c:
            got = await c.plan(_fields(), positions=_pandas().DataFrame(body()["positions"]))
            expected = await c.plan(body())
    assert got == expected
    assert sent == ["application/json", "application/json"]


async def test_plan_table_answers_arrow(tmp_path: Path) -> None:
    async with running(
        make_settings(f"sqlite:///{tmp_path}/ws.db", compat_rebalance_v2=True)
    ) as ws:
        transport = httpx.ASGITransport(app=ws.client._transport.app)  # type: ignore[attr-defined]
        async with GatewayClient("http://ws", transport=transport) as client:
            table, envelope = await client.plan_table(body(), schema_version=2)
    assert table.to_pylist() == [
        {"world_id": "w1", "venue": "binance", "symbol": "BTCUSDT", "delta_qty": -0.5},
        {"world_id": "w2", "venue": "binance", "symbol": "ETHUSDT", "delta_qty": 5.0},
        {"world_id": None, "venue": "binance", "symbol": "BTCUSDT", "delta_qty": -0.5},
        {"world_id": None, "venue": "binance", "symbol": "ETHUSDT", "delta_qty": 5.0},
    ]
    assert envelope["schema_version"] == 2
    assert set(envelope["alpha_metrics"]["per_world"]) == {"w1", "w2"}

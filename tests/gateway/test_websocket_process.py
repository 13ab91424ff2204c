"""``/ws`` against real server processes (issue 10, SPEC 6 and 10).

* A client that sends ``subscribe`` with ``since_seq: 0`` 10,000 times and reads nothing is
  closed with 1013 and a reason once its bounded outbox is full; the server process's
  memory stays flat (it grew by ~500 MB before the outbox was bounded).
* ``?token=`` never reaches the log of ``qmtl gateway serve`` (access and handshake lines).
* A gateway that shuts down closes its WebSocket clients with 1012 (service restart).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests._servers import free_port
from tests.cli._up import QmtlUp

from ._rawws import RawWebSocket

pytestmark = pytest.mark.e2e

WORLDS = 100
APPLIES = 2
FLOOD = 10_000
HANG_GUARD = 60.0  # seconds; only stops a broken test from hanging
RSS_GROWTH_LIMIT_MB = 50.0


def many_world_book(run_id: str) -> dict[str, Any]:
    """One position per world: an apply publishes one event per world."""
    worlds = [f"w{i:03d}" for i in range(WORLDS)]
    return {
        "run_id": run_id, "total_equity": 1_000_000.0,
        "world_alloc_before": dict.fromkeys(worlds, 0.004),
        "world_alloc_after": dict.fromkeys(worlds, 0.005),
        "positions": [{"world_id": w, "strategy_id": "s", "symbol": "BTCUSDT", "qty": 0.1,
                       "mark": 40_000.0, "venue": "x"} for w in worlds],
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def overflow_disconnects(gateway_url: str) -> float:
    text = httpx.get(f"{gateway_url}/metrics", timeout=5.0).text
    for line in text.splitlines():
        if line.startswith('gateway_ws_disconnects_total{reason="overflow"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def flood(ws: RawWebSocket, errors: list[BaseException]) -> None:
    """Send every subscribe; the server may close the connection part-way (expected)."""
    frame = RawWebSocket.frame(json.dumps({"type": "subscribe", "topics": ["rebalancing"],
                                           "since_seq": 0}))
    try:
        for _ in range(FLOOD // 100):
            ws.sock.sendall(frame * 100)
    except OSError as exc:
        errors.append(exc)


@pytest.mark.timeout(300)
def test_a_subscribe_flood_from_a_client_that_does_not_read_is_closed_memory_flat(
    tmp_path: Path,
) -> None:
    up = QmtlUp(tmp_path).start()
    try:
        for n in range(APPLIES):
            response = httpx.post(f"{up.gateway_url}/rebalancing/apply",
                                  json=many_world_book(f"flood-{n}"), timeout=60.0)
            assert response.status_code == 200, response.text
        # Every event is in the gateway's history (each subscribe replays all of them).
        probe = RawWebSocket("127.0.0.1", up.gateway_port, rcvbuf=1 << 20)
        probe.send_text(json.dumps({"type": "subscribe", "topics": ["rebalancing"],
                                    "since_seq": 0}))
        deadline = time.monotonic() + HANG_GUARD
        replayed = -1  # the "subscribed" answer
        while replayed < WORLDS * APPLIES:
            assert time.monotonic() < deadline, f"only {replayed} events in the history"
            replayed += probe.read_frame()[0] == 0x1
        probe.close()
        assert up.process is not None
        before = rss_mb(up.process.pid)

        stalled = RawWebSocket("127.0.0.1", up.gateway_port)  # reads nothing until told to
        errors: list[BaseException] = []
        sender = threading.Thread(target=flood, args=(stalled, errors), daemon=True)
        sender.start()
        while overflow_disconnects(up.gateway_url) < 1:
            assert time.monotonic() < deadline + HANG_GUARD, "the flooding client was kept"
            time.sleep(0.05)
        # It reads again: what was already on its way, then the close frame.
        _, code = stalled.read_until_close()
        sender.join(HANG_GUARD)
        stalled.close()
        after = rss_mb(up.process.pid)
        # The gateway still serves others.
        assert httpx.get(f"{up.gateway_url}/health", timeout=5.0).status_code == 200
    finally:
        assert up.stop() == 0
    assert code == 1013
    assert "unread" in stalled.close_reason
    assert after - before < RSS_GROWTH_LIMIT_MB, (before, after)


class GatewayProcess:
    """``qmtl gateway serve`` at log level info, its log in a file."""

    def __init__(self, tmp_path: Path, *, tokens: list[str]) -> None:
        self.port = free_port()
        config = tmp_path / "gateway.yml"
        config.write_text(
            "gateway:\n"
            f"  commit_log: sqlite:///{tmp_path}/log.db\n"
            f"  worldservice_url: http://127.0.0.1:{free_port()}\n"
            f"  auth: {{tokens: {json.dumps(tokens)}}}\n")
        self.log = tmp_path / "gateway.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("QMTL__")}
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "qmtl"), "gateway", "serve", "--config",
                 str(config), "--port", str(self.port), "--log-level", "info"],
                env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + HANG_GUARD
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                httpx.get(f"{self.url}/health", timeout=5.0)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn re-raises the signal once it has shut down)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(HANG_GUARD)


async def _subscribe(url: str) -> Any:
    ws = await connect(url, open_timeout=HANG_GUARD)
    await ws.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"]}))
    assert json.loads(await asyncio.wait_for(ws.recv(), HANG_GUARD))["type"] == "subscribed"
    return ws


async def test_query_tokens_never_reach_the_server_log(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path, tokens=["s3cret-good"])
    try:
        ws = await _subscribe(f"{gateway.ws_url}?token=s3cret-good&x=1")
        await ws.close()
        refused = await connect(f"{gateway.ws_url}?token=s3cret-wrong", open_timeout=HANG_GUARD)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(refused.recv(), HANG_GUARD)
        async with httpx.AsyncClient() as http:
            await http.get(f"{gateway.url}/health?token=s3cret-http")
            await http.get(f"{gateway.url}/rebalancing/plan?access_token=s3cret-other")
    finally:
        gateway.stop()
    log = gateway.log.read_text()
    assert "/ws?token=***&x=1" in log  # the handshake line is there, redacted
    assert "/health?token=***" in log  # and the access line
    assert "s3cret" not in log


async def test_gateway_shutdown_closes_websocket_clients_with_1012(tmp_path: Path) -> None:
    gateway = GatewayProcess(tmp_path, tokens=[])
    try:
        ws = await _subscribe(gateway.ws_url)
        await asyncio.to_thread(gateway.process.send_signal, signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), HANG_GUARD)
    finally:
        gateway.stop()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1012  # service restart: reconnect (SPEC 10)

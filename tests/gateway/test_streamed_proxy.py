"""Large plan/apply bodies are streamed to our WorldService while they arrive
(``gateway.upload``), over real HTTP: the caller's bytes go through unchanged or gain a
``schema_version`` at the end; a body that must be rewritten is sent again in full, and an
invalid one is refused before the WorldService has a complete document to plan."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import httpx
import pytest

from qmtl.gateway.upload import STREAM_AFTER_BYTES

from ._support import scaling_request
from .conftest import Stack

JSON = {"content-type": "application/json"}


def large_request(**overrides: Any) -> dict[str, Any]:
    """:func:`scaling_request` plus 4,000 w2 positions, which w2's unchanged allocation
    leaves alone (the plan stays the hand-calculated one: w1 sells 0.5 BTC)."""
    body = scaling_request(**overrides)
    body["positions"] = body["positions"] + [
        {"world_id": "w2", "strategy_id": f"s{i % 7}", "symbol": f"SYM{i:05d}",
         "qty": 1.5, "mark": 10.0, "venue": "binance"}
        for i in range(4_000)
    ]
    return body


def encoded(body: dict[str, Any], **dumps: Any) -> bytes:
    raw = json.dumps(body, **dumps).encode()
    assert len(raw) > STREAM_AFTER_BYTES
    return raw


def w1_btc(plan: dict[str, Any]) -> float:
    [delta] = plan["per_world"]["w1"]["deltas"]
    assert delta["symbol"] == "BTCUSDT"
    return float(delta["delta_qty"])


@pytest.fixture
def v2(stack: Stack) -> tuple[Any, Any]:
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    return ws, gw


def test_a_large_body_is_streamed_byte_for_byte(v2: tuple[Any, Any]) -> None:
    ws, gw = v2
    raw = encoded(large_request(schema_version=2))
    proxied = httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON)
    assert proxied.status_code == 200, proxied.text
    [sent] = ws.requests.to("/rebalancing/plan")
    assert sent.chunked and sent.raw == raw
    direct = httpx.post(f"{ws.url}/rebalancing/plan", content=raw, headers=JSON)
    assert proxied.json() == direct.json()
    assert proxied.json()["schema_version"] == 2 and w1_btc(proxied.json()) == -0.5


def test_a_large_body_without_a_version_gains_it_at_the_end(v2: tuple[Any, Any]) -> None:
    ws, gw = v2
    # Pretty-printed with trailing whitespace: the closing brace is not the last byte.
    raw = encoded(large_request(), indent=1) + b"\n \n"
    response = httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["schema_version"] == 2 and "alpha_metrics" in response.json()
    [sent] = ws.requests.to("/rebalancing/plan")
    assert sent.chunked
    assert sent.raw.startswith(raw.rstrip()[:-1])  # the caller's bytes, then the version
    assert sent.body == {**large_request(), "schema_version": 2}


def test_a_large_body_asking_for_v1_is_sent_again_in_full(
        v2: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    ws, gw = v2
    raw = encoded(large_request(schema_version=1, rebalance_intent={"meta": {"t": "T-1"}}))
    with caplog.at_level(logging.INFO):
        response = httpx.post(f"{gw.url}/rebalancing/apply", content=raw, headers=JSON)
    # The WorldService saw the abandoned upload as a client that went away, not an error.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("disconnected before the end of its body" in r.getMessage()
               for r in caplog.records)
    assert response.status_code == 200, response.text
    assert response.json()["schema_version"] == 1 and "alpha_metrics" not in response.json()
    # The streamed attempt was abandoned before its end: one complete request, at v1.
    [sent] = ws.requests.to("/rebalancing/apply")
    assert not sent.chunked
    assert not {"schema_version", "rebalance_intent"} & set(sent.body)
    assert sent.body["positions"] == large_request()["positions"]
    assert w1_btc(response.json()) == -0.5


@pytest.mark.parametrize(
    ("tail", "loc"),
    [
        ({"schema_version": "2"}, ["body", "schema_version"]),
        ({"run_id": "a\u0000b"}, ["body", "run_id"]),
    ],
)
def test_an_invalid_envelope_at_the_end_of_a_large_body_is_never_planned(
        v2: tuple[Any, Any], tail: dict[str, Any], loc: list[object]) -> None:
    ws, gw = v2
    raw = encoded({**large_request(), **tail})
    for route in ("plan", "apply"):
        response = httpx.post(f"{gw.url}/rebalancing/{route}", content=raw, headers=JSON)
        assert response.status_code == 422, response.text
        assert loc in [e["loc"] for e in response.json()["detail"]]
        assert ws.requests.to(f"/rebalancing/{route}") == []
    # The WorldService is still fine and the breaker untouched: a good body plans.
    good = httpx.post(f"{gw.url}/rebalancing/plan", content=encoded(large_request()),
                      headers=JSON)
    assert good.status_code == 200, good.text


def test_a_nan_deep_in_a_large_body_is_422_naming_it(v2: tuple[Any, Any]) -> None:
    ws, gw = v2
    raw = encoded(large_request(schema_version=2)).replace(b'"qty": 1.5', b'"qty": NaN', 1)
    response = httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    # scaling_request holds 3 positions before the 4,000 fillers.
    assert error["loc"] == ["body", "positions", 3, "qty"] and error["type"] == "finite_number"
    assert ws.requests.to("/rebalancing/plan") == []


def test_large_bodies_are_buffered_where_the_version_may_change(stack: Stack) -> None:
    # A v1 gateway in front of our WorldService: v2 keys may have to go, so buffer.
    ws = stack.worldservice(compat=True)
    gw = stack.gateway(ws.url, rebalance_schema_version=1)
    raw = encoded(large_request())
    assert httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON).status_code == 200
    [sent] = ws.requests.to("/rebalancing/plan")
    assert not sent.chunked and sent.raw == raw
    # A legacy WorldService (no version list): buffered, and it gets a strict v1 body.
    legacy = stack.legacy_worldservice()
    gw_legacy = stack.gateway(legacy.url, rebalance_schema_version=2)
    response = httpx.post(f"{gw_legacy.url}/rebalancing/plan",
                          content=encoded(large_request(schema_version=2)), headers=JSON)
    assert response.status_code == 200, response.text
    *refused, sent = legacy.requests.to("/rebalancing/plan")  # v2 refused, then v1
    assert not any(r.chunked for r in [*refused, sent]) and "schema_version" not in sent.body


def test_uploads_beyond_the_streaming_slots_are_buffered(v2: tuple[Any, Any]) -> None:
    ws, gw = v2
    slots = gw.app.state.gateway.client.stream_slots
    slots.limit = 0  # as if MAX_STREAMED_UPLOADS slow uploads held every slot
    raw = encoded(large_request(schema_version=2))
    response = httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON)
    assert response.status_code == 200, response.text
    [sent] = ws.requests.to("/rebalancing/plan")
    assert not sent.chunked and sent.raw == raw
    slots.limit = 1
    assert httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON).status_code == 200
    assert ws.requests.to("/rebalancing/plan")[-1].chunked
    assert slots.in_use == 0  # every slot taken was given back


def test_a_caller_hanging_up_mid_upload_leaves_nothing_planned(
        v2: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    ws, gw = v2
    raw = encoded(large_request(schema_version=2))
    host, port = gw.url.removeprefix("http://").split(":")
    with caplog.at_level(logging.INFO), socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /rebalancing/apply HTTP/1.1\r\nHost: gw\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n")
        sock.sendall(raw[: STREAM_AFTER_BYTES + 65_536])  # streaming has begun
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and gw.app.state.gateway.client.stream_slots.in_use:
        time.sleep(0.05)
    assert gw.app.state.gateway.client.stream_slots.in_use == 0
    assert ws.requests.to("/rebalancing/apply") == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Nothing was counted against the WorldService: the next call goes through.
    response = httpx.post(f"{gw.url}/rebalancing/apply", content=raw, headers=JSON)
    assert response.status_code == 200, response.text
    assert gw.app.state.gateway.client.breaker.state.value == "closed"


def test_worldservice_refusals_of_a_streamed_body_pass_through(stack: Stack) -> None:
    raw = encoded(large_request(schema_version=2))
    # Over the WorldService's body limit (the gateway's is larger): its 413 comes back.
    small_ws = stack.worldservice(compat=True, max_body_bytes=STREAM_AFTER_BYTES + 1_000)
    gw = stack.gateway(small_ws.url, rebalance_schema_version=2)
    for _ in range(3):
        response = httpx.post(f"{gw.url}/rebalancing/plan", content=raw, headers=JSON)
        assert response.status_code == 413, response.text
        assert response.json()["detail"]["code"] == "E_PAYLOAD_TOO_LARGE"
    # A WorldService that wants a token answers before reading the body: 401 relayed.
    locked = stack.worldservice(compat=True, auth={"tokens": ["ws-secret"]})
    anonymous = stack.gateway(locked.url, rebalance_schema_version=2)
    for _ in range(3):
        response = httpx.post(f"{anonymous.url}/rebalancing/plan", content=raw, headers=JSON)
        assert response.status_code == 401, response.text
        assert response.json()["detail"]["code"] == "E_UNAUTHORIZED"
    # Neither is the WorldService being unwell.
    for running in (gw, anonymous):
        assert running.app.state.gateway.client.breaker.state.value == "closed"
        assert running.app.state.gateway.client.stream_slots.in_use == 0

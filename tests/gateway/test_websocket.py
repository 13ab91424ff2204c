"""``/ws`` with real WebSocket connections to a gateway under uvicorn (SPEC 10): auth, relay,
protocol errors, stalled clients and shutdown. Resume is in ``test_websocket_resume.py``.

Events are published on the gateway's ControlBus or come from a real WorldService apply
(see ``_wsclient``).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from qmtl.contracts import CloudEvent

from ._events import encoded, planned_event
from ._rawws import RawWebSocket
from ._support import scaling_request
from ._wsclient import bus_epoch, client, events_until, publish, recv, subscribe
from .conftest import Stack

# -- auth --------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "headers"), [("", None), ("?token=wrong", None),
                                                ("", {"Authorization": "Bearer wrong"})])
async def test_missing_or_bad_token_is_closed_with_1008(stack: Stack, query: str,
                                                        headers: dict[str, str] | None) -> None:
    gw = stack.gateway(auth={"tokens": ["t0k"]})
    async with client(gw, query=query, headers=headers) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008


@pytest.mark.parametrize(("query", "headers"), [("?token=t0k", None),
                                                ("", {"Authorization": "Bearer t0k"})])
async def test_token_in_query_or_header_is_accepted(stack: Stack, query: str,
                                                    headers: dict[str, str] | None) -> None:
    gw = stack.gateway(auth={"tokens": ["t0k"]})
    async with client(gw, query=query, headers=headers) as ws:
        assert (await subscribe(ws))["topics"] == ["rebalancing"]


# -- relay -------------------------------------------------------------------------------


async def test_v1_and_v2_events_are_relayed_unchanged_with_seq(stack: Stack) -> None:
    gw = stack.gateway()
    async with client(gw) as ws:
        assert await subscribe(ws) == {"type": "subscribed", "topics": ["rebalancing"],
                                       "recovered": False, "epoch": await bus_epoch(stack)}
        sent = [planned_event("w1", version=1), planned_event("w2", version=2)]
        positions = [await publish(stack, encoded(e)) for e in sent]
        received = [await recv(ws), await recv(ws)]
    for event, message, position in zip(sent, received, positions, strict=True):
        assert message["type"] == "rebalancing.planned"
        assert message["specversion"] == "1.0"
        assert message["id"] == event.id
        assert message["source"] == "qmtl.worldservice"
        assert message["data"] == event.data
        assert message["seq"] == position.seq
    assert "alpha_metrics" not in received[0]["data"]
    assert received[1]["data"]["alpha_metrics"]["per_world"]["w2"]
    assert received[1]["data"]["rebalance_intent"] == {"meta": {"ticket": "T-1"}}
    assert received[0]["seq"] < received[1]["seq"]
    assert gw.metric("rebalance_plans_observed_total", world_id="w2") == 1
    assert gw.metric("rebalance_plan_last_delta_count", world_id="w2") == 1


async def test_world_filter(stack: Stack) -> None:
    gw = stack.gateway()
    async with client(gw) as only_w2, client(gw) as everything:
        await subscribe(only_w2, world_ids=["w2"])
        await subscribe(everything)
        events = [planned_event(w) for w in ("w1", "w2", "w1", "w2")]
        for event in events:
            await publish(stack, encoded(event))
        marker = planned_event("w2")
        await publish(stack, encoded(marker))
        filtered = await events_until(only_w2, marker.id)
        full = await events_until(everything, marker.id)
    assert [m["id"] for m in filtered] == [events[1].id, events[3].id, marker.id]
    assert [m["id"] for m in full] == [e.id for e in events] + [marker.id]


async def test_invalid_unknown_and_duplicate_events_are_not_relayed(stack: Stack) -> None:
    gw = stack.gateway()
    good = planned_event("w1", version=2)
    v1_with_alpha = planned_event("w1", version=1)
    v1_with_alpha.data["alpha_metrics"] = {"per_world": {}}
    v2_without_alpha = planned_event("w1", version=2)
    del v2_without_alpha.data["alpha_metrics"]
    missing_plan = planned_event("w1")
    del missing_plan.data["plan"]
    other_type = CloudEvent(id="other-1", source="qmtl.worldservice", type="allocation_changed",
                            data={"world_id": "w1"})
    async with client(gw) as ws:
        await subscribe(ws)
        for payload in (encoded(good), b"not json", b'{"specversion": "1.0"}',
                        encoded(v1_with_alpha), encoded(v2_without_alpha), encoded(missing_plan),
                        encoded(other_type), encoded(good)):  # the last one is a duplicate id
            await publish(stack, payload)
        marker = planned_event("w1")
        await publish(stack, encoded(marker))
        received = await events_until(ws, marker.id)
    assert [m["id"] for m in received] == [good.id, marker.id]
    assert gw.metric("gateway_controlbus_events_total", outcome="invalid") == 3
    assert gw.metric("gateway_controlbus_events_total", outcome="undecodable") == 2
    assert gw.metric("gateway_controlbus_events_total", outcome="unknown_type") == 1
    assert gw.metric("gateway_controlbus_events_total", outcome="duplicate") == 1
    assert gw.metric("rebalance_plans_observed_total", world_id="w1") == 2


async def test_events_from_a_real_worldservice_apply(stack: Stack) -> None:
    ws_app = stack.worldservice(compat=True)
    gw = stack.gateway(ws_app.url, rebalance_schema_version=2, alpha_metrics_capable=True)
    async with client(gw) as ws:
        await subscribe(ws)
        response = httpx.post(f"{gw.url}/rebalancing/apply",
                              json=scaling_request(run_id="apply-ws-1"), timeout=30)
        assert response.status_code == 200, response.text
        received = [await recv(ws), await recv(ws)]
    by_world = {m["data"]["world_id"]: m for m in received}
    assert set(by_world) == {"w1", "w2"}
    w1 = by_world["w1"]["data"]
    assert w1["run_id"] == "apply-ws-1" and w1["schema_version"] == 2
    assert w1["plan"]["deltas"] == [{"symbol": "BTCUSDT", "delta_qty": -0.5, "venue": "binance"}]
    assert "alpha_metrics" in w1 and "rebalance_intent" in w1
    assert gw.metric("rebalance_plan_last_delta_count", world_id="w1") == 1
    assert gw.metric("rebalance_plan_last_delta_count", world_id="w2") == 0


# -- protocol errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "E_WS_INVALID_JSON"),
        ("[1, 2]", "E_WS_INVALID_MESSAGE"),
        ('{"type": "dance"}', "E_WS_UNKNOWN_MESSAGE"),
        ('{"type": "subscribe", "topics": ["orders"]}', "E_WS_UNKNOWN_TOPIC"),
        ('{"type": "subscribe", "topics": []}', "E_WS_INVALID_SUBSCRIBE"),
        ('{"type": "subscribe", "topics": ["rebalancing"], "since_seq": "4"}',
         "E_WS_INVALID_SUBSCRIBE"),
        ('{"type": "subscribe", "topics": ["rebalancing"], "since_seq": -1}',
         "E_WS_INVALID_SUBSCRIBE"),
        ('{"type": "subscribe", "topics": ["rebalancing"], "world_ids": []}',
         "E_WS_INVALID_SUBSCRIBE"),
        ('{"type": "subscribe", "topics": ["rebalancing"], "since_seq": 1, "epoch": 7}',
         "E_WS_INVALID_SUBSCRIBE"),
    ],
)
async def test_bad_messages_get_an_error_and_the_connection_stays_open(
    stack: Stack, message: str, code: str
) -> None:
    gw = stack.gateway()
    async with client(gw) as ws:
        await ws.send(message)
        error = await recv(ws)
        assert error["type"] == "error" and error["code"] == code and error["message"]
        await ws.send('{"type": "ping"}')
        assert await recv(ws) == {"type": "pong"}
        await subscribe(ws)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_deeply_nested_messages_get_an_error_and_the_connection_stays_open(
    stack: Stack,
) -> None:
    # Issue 10: 100,000 levels raised RecursionError and dropped the connection unclosed.
    cases = [
        (nested(100_000), "E_WS_INVALID_JSON"),
        ('{"type": "subscribe", "topics": ["rebalancing"], "world_ids": '
         + nested(100_000) + "}", "E_WS_INVALID_JSON"),
        ('{"type": ' + nested(500) + "}", "E_WS_UNKNOWN_MESSAGE"),
        ('{"type": "subscribe", "topics": ["rebalancing"], "world_ids": ' + nested(500) + "}",
         "E_WS_INVALID_SUBSCRIBE"),
    ]
    gw = stack.gateway()
    async with client(gw) as ws:
        for message, code in cases:
            await ws.send(message)
            error = await recv(ws)
            assert error["type"] == "error" and error["code"] == code, error
            assert "[[" not in error["message"]  # the input is not echoed
        await ws.send('{"type": "ping"}')
        assert await recv(ws) == {"type": "pong"}
        await subscribe(ws)


async def test_unsubscribe_stops_events(stack: Stack) -> None:
    gw = stack.gateway()
    async with client(gw) as ws:
        await subscribe(ws)
        await ws.send('{"type": "unsubscribe"}')
        assert await recv(ws) == {"type": "unsubscribed"}
        await publish(stack, encoded(planned_event("w1")))
        await ws.send('{"type": "ping"}')
        assert await recv(ws) == {"type": "pong"}  # no event came in between


# -- a stalled client --------------------------------------------------------------------


async def test_a_stalled_client_is_dropped_with_1013_and_never_delays_others(
    stack: Stack,
) -> None:
    gw = stack.gateway(ws={"client_queue_size": 8, "history_size": 10_000})
    stalled = RawWebSocket("127.0.0.1", gw.served.port)  # reads nothing until told to
    try:
        stalled.send_text(json.dumps({"type": "subscribe", "topics": ["rebalancing"]}))
        async with client(gw) as fast1, client(gw) as fast2:
            await subscribe(fast1)
            await subscribe(fast2)
            fast_ids: list[list[str]] = [[], []]

            async def read(ws: ClientConnection, into: list[str], until: str) -> None:
                while True:
                    message = await recv(ws)
                    into.append(message["id"])
                    if message["id"] == until:
                        return

            published: list[str] = []
            # Publish until the gateway gives up on the stalled client.
            while gw.metric("gateway_ws_disconnects_total", reason="overflow_detected") == 0:
                assert len(published) < 20_000, "the stalled client was never dropped"
                batch = [planned_event("w1", deltas=20) for _ in range(50)]
                for event in batch:
                    await publish(stack, encoded(event))
                published += [e.id for e in batch]
                await asyncio.gather(read(fast1, fast_ids[0], published[-1]),
                                     read(fast2, fast_ids[1], published[-1]))
            # The fast clients got every event, in order, while the stalled one read nothing.
            assert fast_ids[0] == published and fast_ids[1] == published
        # Once it reads again it finds what was queued for it, then the 1013 close.
        texts, code = await asyncio.to_thread(stalled.read_until_close)
        assert code == 1013
        assert 1 <= texts < len(published) + 1  # "subscribed" + the events it could take
    finally:
        stalled.close()
    assert gw.metric("gateway_ws_disconnects_total", reason="overflow") == 1


# -- shutdown ----------------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["hub", "server"])
async def test_shutdown_closes_clients_with_1012_either_way(stack: Stack, closer: str) -> None:
    """uvicorn closes WebSockets with 1012 before the lifespan ends; the hub's own close on
    shutdown must say the same (the documented code)."""
    gw = stack.gateway()
    async with client(gw) as ws:
        await subscribe(ws)

        async def close_hub() -> None:
            gw.app.state.gateway.hub.close()

        if closer == "hub":
            await stack.loop.arun(close_hub())
        else:
            await asyncio.to_thread(stack.stop, gw)
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1012
    if closer == "hub":
        assert gw.metric("gateway_ws_disconnects_total", reason="shutdown") == 1

"""``/ws`` with real WebSocket connections to a gateway under uvicorn (SPEC 10).

Events are published on the gateway's ControlBus (on the server loop, as the WorldService
relay would) or come from a real WorldService apply. "Nothing else arrived" is checked with
a marker event published afterwards: delivery is in order, so anything that should not have
been relayed would have arrived before the marker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from qmtl.contracts import CloudEvent
from qmtl.controlbus import BusMessage, create_controlbus

from ._events import encoded, planned_event
from ._rawws import RawWebSocket
from ._support import scaling_request
from .conftest import RunningGateway, Stack

RECV_GUARD = 20.0  # seconds: a hang guard, not a latency assertion


async def publish(stack: Stack, payload: bytes) -> BusMessage:
    bus = create_controlbus(stack.bus_url)
    return await stack.loop.arun(bus.publish("rebalancing", payload))


async def bus_epoch(stack: Stack) -> str:
    """The epoch the gateway's relay numbers under (the bus's, SPEC 10)."""
    bus = create_controlbus(stack.bus_url)
    return await stack.loop.arun(bus.epoch("rebalancing"))


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), RECV_GUARD))
    return message


@asynccontextmanager
async def client(gw: RunningGateway, *, query: str = "", headers: dict[str, str] | None = None,
                 **kwargs: Any) -> AsyncIterator[ClientConnection]:
    async with connect(gw.ws_url + query, additional_headers=headers, open_timeout=RECV_GUARD,
                       **kwargs) as ws:
        yield ws


async def subscribe(ws: ClientConnection, **fields: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"], **fields}))
    answer = await recv(ws)
    assert answer["type"] == "subscribed", answer
    return answer


async def events_until(ws: ClientConnection, marker_id: str) -> list[dict[str, Any]]:
    out = []
    while True:
        message = await recv(ws)
        out.append(message)
        if message.get("id") == marker_id:
            return out


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


# -- resume ------------------------------------------------------------------------------


async def test_resume_with_since_seq_recovers_what_was_missed(stack: Stack) -> None:
    gw = stack.gateway()
    first = [planned_event("w1") for _ in range(2)]
    async with client(gw) as ws:
        epoch = (await subscribe(ws))["epoch"]
        for event in first:
            await publish(stack, encoded(event))
        seen = [await recv(ws), await recv(ws)]
    last_seq = seen[-1]["seq"]
    missed = [planned_event(w) for w in ("w1", "w2", "w1")]
    for event in missed:
        await publish(stack, encoded(event))
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=last_seq, epoch=epoch)
        assert answer["recovered"] is True and answer["epoch"] == epoch
        live = planned_event("w1")
        await publish(stack, encoded(live))
        replay = await events_until(ws, live.id)
    assert [m["id"] for m in replay] == [e.id for e in missed] + [live.id]  # no duplicates
    seqs = [m["seq"] for m in replay]
    assert seqs == sorted(seqs) and seqs[0] > last_seq


async def test_resume_with_world_filter(stack: Stack) -> None:
    gw = stack.gateway()
    events = [planned_event(w) for w in ("w1", "w2", "w1")]
    for event in events:
        await publish(stack, encoded(event))
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=0, world_ids=["w1"], epoch=await bus_epoch(stack))
        assert answer["recovered"] is True
        marker = planned_event("w1")
        await publish(stack, encoded(marker))
        replay = await events_until(ws, marker.id)
    assert [m["id"] for m in replay] == [events[0].id, events[2].id, marker.id]


async def test_resume_is_honest_when_history_was_evicted(stack: Stack) -> None:
    gw = stack.gateway(ws={"history_size": 2})
    events = [planned_event("w1") for _ in range(4)]
    seqs = [(await publish(stack, encoded(e))).seq for e in events]
    epoch = await bus_epoch(stack)
    async with client(gw) as ws:
        marker = planned_event("w1")
        answer = await subscribe(ws, since_seq=seqs[0], epoch=epoch)
        await publish(stack, encoded(marker))
        replay = await events_until(ws, marker.id)
    # seq[1] was evicted (history keeps 2): not everything after seqs[0] can be replayed.
    assert answer["recovered"] is False
    assert [m["id"] for m in replay] == [events[2].id, events[3].id, marker.id]
    # The marker evicted events[2] too; everything after events[2] is still there.
    async with client(gw) as ws:
        assert (await subscribe(ws, since_seq=seqs[1], epoch=epoch))["recovered"] is False
    async with client(gw) as ws:
        assert (await subscribe(ws, since_seq=seqs[2], epoch=epoch))["recovered"] is True


async def test_since_seq_from_the_future_replays_the_whole_history(stack: Stack) -> None:
    gw = stack.gateway()
    events = [planned_event("w1") for _ in range(2)]
    for event in events:
        await publish(stack, encoded(event))
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=10**12)
        replay = [await recv(ws), await recv(ws)]
    assert answer["recovered"] is False
    assert [m["id"] for m in replay] == [e.id for e in events]


async def test_history_is_loaded_from_the_bus_at_start_up(stack: Stack) -> None:
    create_controlbus(stack.bus_url)  # the bus exists before the gateway starts
    events = [planned_event("w1") for _ in range(3)]
    seqs = [(await publish(stack, encoded(e))).seq for e in events]
    gw = stack.gateway(ws={"history_size": 2})
    epoch = await bus_epoch(stack)
    async with client(gw) as ws:
        answer = await subscribe(ws, since_seq=seqs[0], epoch=epoch)
        replay = [await recv(ws), await recv(ws)]
    assert [m["id"] for m in replay] == [events[1].id, events[2].id]
    assert answer["recovered"] is True  # everything after seqs[0] was loaded
    async with client(gw) as ws:
        # Only the newest two were loaded: seqs[0] itself cannot be replayed.
        assert (await subscribe(ws, since_seq=seqs[0] - 1, epoch=epoch))["recovered"] is False


async def test_subscribed_names_the_epoch_and_another_epoch_is_not_recovered(
    stack: Stack,
) -> None:
    gw = stack.gateway()
    events = [planned_event("w1") for _ in range(3)]
    seqs = [(await publish(stack, encoded(e))).seq for e in events]
    epoch = await bus_epoch(stack)
    async with client(gw) as ws:
        assert (await subscribe(ws))["epoch"] == epoch
    async with client(gw) as ws:
        # The seq of another numbering (a restarted bus): everything here is new to it.
        answer = await subscribe(ws, since_seq=seqs[1], epoch="another-run")
        replay = [await recv(ws) for _ in events]
    assert answer == {"type": "subscribed", "topics": ["rebalancing"], "recovered": False,
                      "epoch": epoch}
    assert [m["id"] for m in replay] == [e.id for e in events]
    async with client(gw) as ws:
        # Without an epoch the seq cannot be placed: the events after it, not recovered.
        answer = await subscribe(ws, since_seq=seqs[1])
        assert answer["recovered"] is False
        assert (await recv(ws))["id"] == events[2].id


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

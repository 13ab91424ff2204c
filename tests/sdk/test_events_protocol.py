"""EventStream protocol handling against a scripted WebSocket server.

Unit tests: the gateway's ``/ws`` is replaced by a small real ``websockets`` server that
plays a script (subscribed answer, messages, close code), so that contract violations the
real gateway never produces can be exercised. Real-gateway behaviour is covered in
``test_events_resume.py`` and ``test_client_integration.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from qmtl.contracts import CloudEvent
from qmtl.sdk import EventStreamError, GatewayClient, GatewayHTTPError, ReconnectPolicy

FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, max_attempts=50)


def event(seq: int, *, world: str = "w1", version: int = 1, event_id: str | None = None,
          **data_changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "world_id": world, "plan": {"world_id": world, "scale_world": 0.5,
                                    "scale_by_strategy": {"s1": 0.5}, "deltas": []},
        "version": version, "schema_version": version, "compat_rebalance_v2": version > 1,
        "run_id": f"run-{seq}", "seq": seq, "idempotency_key": f"k-{seq}",
    }
    if version > 1:
        data["alpha_metrics"] = {"per_world": {world: {"alpha_performance.sharpe": 1.0,
                                                       "alpha_performance.nope": 3.0,
                                                       "alpha_performance.win_ratio": "0.5",
                                                       "alpha_performance.car_mdd": True}},
                                 "per_strategy": {}}
        data["rebalance_intent"] = {"meta": {"ticket": "T-1"}}
    data.update(data_changes)
    cloud = CloudEvent(id=event_id or f"id-{seq}", source="test", type="rebalancing.planned",
                       data=data)
    return {**cloud.model_dump(mode="json"), "seq": seq}


@dataclass
class Script:
    """What the server does on each successive connection."""

    connections: list[dict[str, Any]]
    received: list[dict[str, Any]] = field(default_factory=list)

    async def handler(self, ws: ServerConnection) -> None:
        index = min(len(self.received), len(self.connections) - 1)
        plan = self.connections[index]
        self.received.append(json.loads(await ws.recv()))
        if "reply" in plan:
            await ws.send(json.dumps(plan["reply"]))
        else:
            answer = {"type": "subscribed", "topics": ["rebalancing"],
                      "recovered": plan.get("recovered", True)}
            if "epoch" in plan:
                answer["epoch"] = plan["epoch"]
            await ws.send(json.dumps(answer))
        for message in plan.get("messages", []):
            await ws.send(message if isinstance(message, str) else json.dumps(message))
        if "close" in plan:
            await ws.close(plan["close"], "scripted")
        else:
            await ws.wait_closed()


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[str]:
    async with serve(script.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def test_v2_event_fields_are_parsed_and_bad_metric_values_dropped() -> None:
    script = Script([{"messages": [event(1, version=2)]}])
    async with scripted(script) as url, GatewayClient(url) as client:
        async with client.events(world_ids=["w1"], since_seq=0) as stream:
            first = await stream.__anext__()
    assert script.received[0] == {"type": "subscribe", "topics": ["rebalancing"],
                                  "world_ids": ["w1"], "since_seq": 0}
    assert (first.seq, first.id, first.world_id, first.schema_version) == (1, "id-1", "w1", 2)
    assert first.alpha_metrics is not None
    assert first.alpha_metrics.per_world == {"w1": {"alpha_performance.sharpe": 1.0}}
    assert first.rebalance_intent == {"ticket": "T-1"}


async def test_invalid_duplicate_and_unknown_messages_are_skipped_and_counted() -> None:
    bad_v1 = event(3, alpha_metrics={"per_world": {}, "per_strategy": {}})
    messages = [
        "not json", [1, 2], {"type": "pong"}, {"type": "error", "code": "E_WS_X"},
        event(1),
        event(1),                                  # same seq again
        event(2, event_id="id-1"),                 # same event id again
        {**event(9), "seq": "9"},                  # seq must be an integer
        {**event(10), "type": "something.else"},   # unknown type
        bad_v1,                                    # a v1 event must not carry alpha_metrics
        event(4, world="w2"),
    ]
    script = Script([{"messages": messages}])
    async with scripted(script) as url, GatewayClient(url) as client:
        async with client.events() as stream:
            one = await stream.__anext__()
            four = await stream.__anext__()
    assert (one.seq, four.seq, four.world_id) == (1, 4, "w2")
    assert stream.skipped == 9
    assert stream.last_seq == 4


async def test_reconnect_resumes_after_the_last_seq_and_records_recovered() -> None:
    script = Script([
        {"messages": [event(1), event(2)], "close": 1011},
        {"recovered": True, "messages": [event(2), event(3)], "close": 1001},
        {"recovered": False, "messages": [event(1, event_id="fresh-1")]},
    ])
    async with scripted(script) as url, GatewayClient(url, reconnect=FAST) as client:
        async with client.events() as stream:
            seqs = [(await stream.__anext__()).seq for _ in range(4)]
    # The replayed seq 2 is not yielded twice; after an unrecovered resubscription a
    # restarted numbering (seq 1 again, new id) is yielded.
    assert seqs == [1, 2, 3, 1]
    assert [m.get("since_seq") for m in script.received] == [None, 2, 3]
    assert [s.recovered for s in stream.subscriptions] == [True, True, False]
    assert [s.resubscription for s in stream.subscriptions] == [False, True, True]
    assert stream.recovered is False and stream.reconnects == 2


async def test_another_epoch_is_a_gap_and_the_seq_keeps_its_own_epoch() -> None:
    script = Script([
        {"epoch": "A", "messages": [event(1), event(2)], "close": 1012},
        # A new numbering that (wrongly) claims recovery, and drops before delivering.
        {"epoch": "B", "recovered": True, "close": 1011},
        {"epoch": "B", "recovered": True,
         "messages": [event(1, event_id="fresh-1"), event(2, event_id="fresh-2")]},
    ])
    async with scripted(script) as url, GatewayClient(url, reconnect=FAST) as client:
        async with client.events() as stream:
            seqs = [(await stream.__anext__()).seq for _ in range(4)]
    assert seqs == [1, 2, 1, 2]
    # seq 2 belongs to epoch A until an event of epoch B was yielded.
    assert [(m.get("since_seq"), m.get("epoch")) for m in script.received] == [
        (None, None), (2, "A"), (2, "A")]
    assert [s.recovered for s in stream.subscriptions[1:]] == [False, False]
    assert [s.epoch for s in stream.subscriptions] == ["A", "B", "B"]
    assert (stream.last_seq, stream.epoch) == (2, "B") and not stream.recovered


async def test_a_persisted_seq_and_epoch_are_sent_back() -> None:
    script = Script([{"epoch": "A", "messages": [event(8)]}])
    async with scripted(script) as url, GatewayClient(url) as client:
        async with client.events(since_seq=7, epoch="A") as stream:
            assert (await stream.__anext__()).seq == 8
    assert script.received[0]["since_seq"] == 7 and script.received[0]["epoch"] == "A"
    assert stream.subscriptions[0].recovered is True


async def test_a_connection_that_drops_without_delivering_is_backed_off() -> None:
    script = Script([{"close": 1011}, {"close": 1011}, {"close": 1011},
                     {"messages": [event(1)]}])
    async with scripted(script) as url, GatewayClient(url, reconnect=FAST) as client:
        async with client.events() as stream:
            first = await stream.__anext__()
    assert first.seq == 1
    assert len(script.received) == 4


async def test_policy_violation_close_is_unauthorized_and_not_retried() -> None:
    script = Script([{"close": 1008}])
    async with scripted(script) as url, GatewayClient(url, reconnect=FAST) as client:
        stream = client.events()
        await stream.subscribed()
        with pytest.raises(GatewayHTTPError) as info:
            await stream.__anext__()
    assert info.value.code == "E_UNAUTHORIZED" and info.value.status_code == 401
    assert len(script.received) == 1


async def test_a_refused_subscription_is_an_event_stream_error() -> None:
    script = Script([{"reply": {"type": "error", "code": "E_WS_UNKNOWN_TOPIC",
                                "message": "nope"}}])
    async with scripted(script) as url, GatewayClient(url, reconnect=FAST) as client:
        with pytest.raises(EventStreamError) as info:
            await client.events().subscribed()
    assert (info.value.code, info.value.message) == ("E_WS_UNKNOWN_TOPIC", "nope")


async def test_a_server_that_does_not_answer_subscribed_breaks_the_protocol() -> None:
    script = Script([{"reply": event(1)}])
    async with scripted(script) as url, GatewayClient(url, reconnect=FAST) as client:
        with pytest.raises(EventStreamError) as info:
            await client.events().subscribed()
    assert info.value.code == "E_PROTOCOL"


async def test_aclose_ends_iteration_and_the_client_closes_its_streams() -> None:
    script = Script([{"messages": [event(1)]}])
    async with scripted(script) as url:
        client = GatewayClient(url)
        stream = client.events()
        assert (await stream.__anext__()).seq == 1
        await client.aclose()
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        with pytest.raises(RuntimeError, match="closed"):
            client.events()

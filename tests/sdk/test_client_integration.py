"""GatewayClient against a real ``qmtl up`` process (real HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from qmtl.contracts import ALPHA_METRIC_KEYS, MultiWorldRebalanceRequest
from qmtl.sdk import (
    GatewayClient,
    GatewayHTTPError,
    RebalancingEvent,
    SyncGatewayClient,
)
from tests.cli._up import QmtlUp

from .conftest import book

pytestmark = pytest.mark.e2e


async def _next_events(stream: object, run_id: str, count: int,
                       timeout: float = 15.0) -> list[RebalancingEvent]:
    events: list[RebalancingEvent] = []

    async def collect() -> None:
        async for event in stream:  # type: ignore[attr-defined]
            if event.run_id == run_id:
                events.append(event)
                if len(events) == count:
                    return

    await asyncio.wait_for(collect(), timeout)
    return events


async def test_health_and_capabilities(up_v2: QmtlUp) -> None:
    async with GatewayClient(up_v2.gateway_url) as client:
        view = await client.health()
        caps = await client.capabilities()
    assert view.status == "ok"
    assert view.components == {"worldservice": "ok", "controlbus": "ok", "commit_log": "ok"}
    assert caps.rebalance_schema_version == 2 and caps.alpha_metrics_capable
    assert caps.effective_schema_version == 2 and caps.supports_alpha_metrics()


async def test_plan_apply_execute(up_v2: QmtlUp) -> None:
    request = MultiWorldRebalanceRequest.model_validate(book())
    run_id = f"sdk-{uuid.uuid4().hex[:8]}"
    async with GatewayClient(up_v2.gateway_url) as client:
        # The gateway asks for its configured version (2) when the request names none.
        default = await client.plan(request)
        v1 = await client.plan(request, schema_version=1)
        v2 = await client.plan(request, schema_version=2)
        applied = await client.apply(request, run_id=run_id)
        executed = await client.execute(request, per_strategy=True)
    assert default["schema_version"] == 2
    assert v1["schema_version"] == 1 and "alpha_metrics" not in v1
    assert v2["schema_version"] == 2
    assert set(v2["alpha_metrics"]["per_world"]["wa"]) == set(ALPHA_METRIC_KEYS)
    assert applied["run_id"] == run_id and applied["etag"]
    assert executed["submitted"] is False
    assert set(executed["orders_per_strategy"]) == {"wa", "wb"}


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [({"mode": "hybrid"}, 501, "E_REBALANCE_MODE_UNSUPPORTED"),
     ({"mode": "overlay"}, 422, "E_OVERLAY_CONFIG_REQUIRED")],
)
async def test_http_errors_carry_status_and_code(up_v2: QmtlUp, changes: dict[str, str],
                                                 status: int, code: str) -> None:
    async with GatewayClient(up_v2.gateway_url) as client:
        with pytest.raises(GatewayHTTPError) as info:
            await client.plan(book(**changes))
    assert (info.value.status_code, info.value.code) == (status, code)


async def test_validation_errors_from_the_server_are_e_validation(up_v2: QmtlUp) -> None:
    bad = book(positions=[dict(book()["positions"][0], mark=-1)])
    async with GatewayClient(up_v2.gateway_url) as client:
        with pytest.raises(GatewayHTTPError) as info:
            await client.plan(bad)
    assert info.value.status_code == 422 and info.value.code == "E_VALIDATION"
    assert "positions.0.mark" in info.value.message


async def test_events_arrive_for_every_world_of_an_apply(up_v2: QmtlUp) -> None:
    run_id = f"sdk-ev-{uuid.uuid4().hex[:8]}"
    async with GatewayClient(up_v2.gateway_url) as client:
        stream = client.events()
        info = await stream.subscribed()
        assert info.since_seq is None and not info.resubscription
        await client.apply(book(schema_version=2, rebalance_intent={"meta": {"t": "1"}}),
                           run_id=run_id)
        events = await _next_events(stream, run_id, 2)
        await stream.aclose()
    assert {e.world_id for e in events} == {"wa", "wb"}
    assert events[0].seq < events[1].seq
    assert all(e.type == "rebalancing.planned" and e.schema_version == 2 for e in events)
    assert all(e.alpha_metrics is not None and e.rebalance_intent == {"t": "1"} for e in events)
    assert stream.last_seq == events[-1].seq


async def test_world_filter_and_since_seq_replay(up_v2: QmtlUp) -> None:
    run_id = f"sdk-f-{uuid.uuid4().hex[:8]}"
    async with GatewayClient(up_v2.gateway_url) as client:
        async with client.events() as everything:
            await everything.subscribed()
            await client.apply(book(schema_version=1), run_id=run_id)
            seen = await _next_events(everything, run_id, 2)
        before = min(e.seq for e in seen) - 1
        # A new subscription resuming before those events replays them, filtered to wb.
        async with client.events(world_ids=["wb"], since_seq=before,
                                 epoch=everything.epoch) as replay:
            info = await replay.subscribed()
            replayed = await _next_events(replay, run_id, 1)
    assert info.recovered is True and info.since_seq == before
    assert [e.world_id for e in replayed] == ["wb"]


async def test_a_v1_apply_gives_a_v1_event_without_alpha_metrics(up_v2: QmtlUp) -> None:
    run_id = f"sdk-v1-{uuid.uuid4().hex[:8]}"
    async with GatewayClient(up_v2.gateway_url) as client:
        async with client.events(world_ids=["wa"]) as stream:
            await stream.subscribed()
            await client.apply(book(schema_version=1), run_id=run_id)
            (event,) = await _next_events(stream, run_id, 1)
    assert event.schema_version == 1
    assert event.alpha_metrics is None and event.rebalance_intent is None


def test_sync_client(up_v2: QmtlUp) -> None:
    run_id = f"sdk-sync-{uuid.uuid4().hex[:8]}"
    with SyncGatewayClient(up_v2.gateway_url) as client:
        assert client.capabilities().supports_alpha_metrics()
        stream = client.events(world_ids=["wa"])
        stream.subscribed()
        client.apply(book(), run_id=run_id)
        event = next(e for e in stream if e.run_id == run_id)
        stream.close()
        assert client.plan(book(), schema_version=2)["schema_version"] == 2
    assert event.world_id == "wa"

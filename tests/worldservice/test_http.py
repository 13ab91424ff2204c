"""Real uvicorn server (``ServerThread``), real HTTP, real redis-server for the events."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING, decode_event, parse_rebalancing_planned
from qmtl.controlbus import RedisStreamsControlBus
from qmtl.web.server import ServerThread
from qmtl.worldservice.app import create_app

from .conftest import make_settings


def _positions(n: int, *, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"world_id": f"w{i % 4}", "strategy_id": f"s{i % 12}", "symbol": f"SYM{i % 300}",
         "qty": round(rng.uniform(-5, 5), 3) or 1.0, "mark": round(rng.uniform(1, 500), 2),
         "venue": "v1" if i % 3 else None}
        for i in range(n)
    ]


def _request(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "total_equity": 10_000_000.0,
        "world_alloc_before": {"w0": 0.25, "w1": 0.25, "w2": 0.25, "w3": 0.25},
        "world_alloc_after": {"w0": 0.3, "w1": 0.2, "w2": 0.25, "w3": 0.1},
        "positions": _positions(n),
        **extra,
    }


@pytest.mark.redis
async def test_plan_and_apply_over_real_http(sqlite_dsn: str, redis_url: str) -> None:
    settings = make_settings(sqlite_dsn, controlbus=redis_url, compat_rebalance_v2=True)
    reader = RedisStreamsControlBus(redis_url)
    subscription = await reader.subscribe(CONTROLBUS_TOPIC_REBALANCING)
    try:
        with ServerThread(create_app(settings)) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                plan = await client.post("/rebalancing/plan",
                                         json=_request(10_000, schema_version=2))
                apply = await client.post("/rebalancing/apply",
                                          json=_request(10_000, schema_version=2, run_id="http"))
                replay = await client.post("/rebalancing/apply",
                                           json=_request(10_000, schema_version=2, run_id="http"))
                events = []
                for _ in range(4):
                    message = await asyncio.wait_for(subscription.__anext__(), timeout=30)
                    events.append(parse_rebalancing_planned(decode_event(message.payload)))
    finally:
        await subscription.aclose()
        await reader.close()
    assert plan.status_code == 200, plan.text
    served = plan.json()
    assert served["schema_version"] == 2 and set(served["per_world"]) == {"w0", "w1", "w2", "w3"}
    # w2 keeps its allocation (0.25 -> 0.25): scale 1, nothing to trade.
    assert served["per_world"]["w2"]["deltas"] == []
    assert apply.status_code == 200 and apply.json()["run_id"] == "http"
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == apply.content
    assert sorted(e.world_id for e in events) == ["w0", "w1", "w2", "w3"]
    assert all(e.run_id == "http" and e.seq == 1 and e.schema_version == 2 for e in events)
    for event in events:
        assert event.plan.model_dump(mode="json") == apply.json()["per_world"][event.world_id]

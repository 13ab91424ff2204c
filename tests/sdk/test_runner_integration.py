"""Runner against real gateways: the alpha_metrics feature follows the gateway's bits.

The gateway is a real uvicorn server restarted on the same port with other settings, in
front of a real WorldService; the capability TTL is driven by an injected clock.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qmtl.contracts import ALPHA_METRIC_KEYS
from qmtl.engine.alpha import alpha_performance
from qmtl.sdk import GatewayClient, Runner

from ._mock_gateway import FakeClock
from .conftest import Stack, book

pytestmark = pytest.mark.e2e

RETURNS = [0.01, -0.02, 0.015, 0.003, -0.007]


async def test_feature_flips_when_the_gateway_is_reconfigured(stack: Stack) -> None:
    clock = FakeClock()
    async with GatewayClient(stack.gateway_url, capabilities_ttl=30, clock=clock) as client:
        runner = Runner(client)
        for r in RETURNS:
            runner.record_return("wa", "sa", r)
        on = await runner.plan(book())
        assert runner.features.alpha_metrics
        assert on.schema_version == 2 and on.alpha_metrics is not None
        # The WorldService computed the recorded series with the SDK's function.
        served = on.alpha_metrics.per_strategy["sa"]["wa"]
        assert served == pytest.approx(alpha_performance(RETURNS))

        await stack.astop_gateway()
        await stack.astart_gateway(rebalance_schema_version=1, alpha_metrics_capable=False)
        # Within the TTL the cached bits still say on.
        assert (await runner.refresh()).alpha_metrics
        clock.now += 31
        off = await runner.plan(book())
        assert not runner.features.alpha_metrics
        assert "not alpha_metrics_capable" in runner.features.reason
        assert off.schema_version == 1 and off.alpha_metrics is None
        assert "alpha_metrics" not in off.document

        await stack.astop_gateway()
        await stack.astart_gateway(rebalance_schema_version=2, alpha_metrics_capable=True)
        clock.now += 31
        assert (await runner.refresh()).alpha_metrics


async def test_unreachable_gateway_switches_the_feature_off(stack: Stack) -> None:
    clock = FakeClock()
    async with GatewayClient(stack.gateway_url, capabilities_ttl=30, clock=clock,
                             timeout=2.0) as client:
        runner = Runner(client)
        assert (await runner.refresh()).alpha_metrics
        await stack.astop_gateway()
        clock.now += 31
        features = await runner.refresh()
        assert not features.alpha_metrics
        assert features.reason.startswith("gateway unreachable")
        runner.record_return("wa", "sa", 0.01)
        request = runner.build_request(book(schema_version=2))
        assert request.schema_version is None and request.alpha_series is None


async def test_v1_only_worldservice_keeps_the_feature_off(stack: Stack, tmp_path: Path) -> None:
    # A second WorldService serving v1 only, and the gateway pointed at it.
    from qmtl.web.server import ServerThread
    from qmtl.worldservice.app import create_app
    from qmtl.worldservice.config import WorldServiceSettings

    legacy = ServerThread(create_app(WorldServiceSettings(
        dsn=f"sqlite:///{tmp_path / 'v1.db'}", controlbus="memory://sdk-v1-only")))
    legacy.start()
    try:
        await stack.astop_gateway()
        await stack.astart_gateway(worldservice_url=legacy.url)
        async with GatewayClient(stack.gateway_url) as client:
            runner = Runner(client)
            runner.record_return("wa", "sa", 0.01)
            features = await runner.refresh()
            assert not features.alpha_metrics
            assert features.reason == "effective schema version 1 < 2"
            result = await runner.plan(book())
        assert result.schema_version == 1 and result.alpha_metrics is None
    finally:
        await stack.astop_gateway()
        legacy.stop()


async def test_requests_carry_the_recorded_series_only_when_on(stack: Stack) -> None:
    async with GatewayClient(stack.gateway_url) as client:
        runner = Runner(client, window=3)
        for r in RETURNS:
            runner.record_return("wa", "sa", r)
        result = await runner.apply(book(), run_id="runner-window")
    # The window keeps the last three returns; the WorldService saw exactly those.
    assert result.alpha_metrics is not None
    served = result.alpha_metrics.per_strategy["sa"]["wa"]
    assert set(served) == set(ALPHA_METRIC_KEYS)
    assert served == pytest.approx(alpha_performance(RETURNS[-3:]))
    assert json.loads(json.dumps(result.document))["run_id"] == "runner-window"

"""The QMTL SDK: gateway client, capability-driven Runner, streaming alpha metrics, reports.

Quick tour::

    async with GatewayClient("http://127.0.0.1:8000") as client:
        runner = Runner(client)
        runner.record_return("crypto-momentum", "trend-1h", 0.004)
        result = await runner.plan(request)      # v2 + alpha_series only when the gateway can
        result.alpha_metrics                     # parsed envelope, or None for a v1 document
        async for event in client.events(world_ids=["crypto-momentum"]):
            ...

Everything public is listed in ``__all__``; the modules behind it are private.
"""

from __future__ import annotations

from ._alpha import (
    DEFAULT_WINDOW,
    METRIC_UNITS,
    AlphaInputError,
    AlphaPerformance,
    AlphaPerformanceGauges,
)
from ._capabilities import Capabilities, GatewayHealthView, parse_capabilities, parse_health
from ._client import DEFAULT_CAPABILITIES_TTL, DEFAULT_TIMEOUT, GatewayClient, RequestLike
from ._errors import (
    CapabilityError,
    EventStreamError,
    GatewayError,
    GatewayHTTPError,
    GatewayUnavailable,
)
from ._events import EventStream, RebalancingEvent, ReconnectPolicy, SubscriptionInfo
from ._health_check import HealthCheckResult, check_gateway_health, check_gateway_health_sync
from ._reads import ApplyOutcome
from ._rehearsal import REHEARSAL_STEPS, RehearsalReport, StepResult, run_rehearsal
from ._report import PerformanceReport, TearSheet, build_report, render_json, render_markdown
from ._report_html import render_html
from ._results import RebalanceResult
from ._runner import Features, Runner
from ._sync import SyncEventStream, SyncGatewayClient

__all__ = [
    "DEFAULT_CAPABILITIES_TTL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WINDOW",
    "METRIC_UNITS",
    "REHEARSAL_STEPS",
    "AlphaInputError",
    "ApplyOutcome",
    "AlphaPerformance",
    "AlphaPerformanceGauges",
    "Capabilities",
    "CapabilityError",
    "EventStream",
    "EventStreamError",
    "Features",
    "GatewayClient",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayHealthView",
    "GatewayUnavailable",
    "HealthCheckResult",
    "PerformanceReport",
    "RebalanceResult",
    "RebalancingEvent",
    "ReconnectPolicy",
    "RehearsalReport",
    "RequestLike",
    "Runner",
    "StepResult",
    "SubscriptionInfo",
    "SyncEventStream",
    "SyncGatewayClient",
    "TearSheet",
    "build_report",
    "check_gateway_health",
    "check_gateway_health_sync",
    "parse_capabilities",
    "parse_health",
    "render_html",
    "render_json",
    "render_markdown",
    "run_rehearsal",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("qmtl.sdk._"):
        try:
            _obj.__module__ = "qmtl.sdk"
        except (AttributeError, TypeError):
            continue

"""Every Prometheus metric of the gateway, created once on the registry the app is given.

SPEC 4 names: ``rebalance_batches_submitted_total``, ``rebalance_last_batch_size``,
``rebalance_reduce_only_ratio`` {world_id, scope}; ``rebalance_plans_observed_total``,
``rebalance_plan_last_delta_count`` {world_id}. The others are operational.
Methods are named for what happened, so call sites read as intent.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["GatewayMetrics"]

_BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class GatewayMetrics:
    """The gateway's metrics on one ``CollectorRegistry`` (tests give each app a fresh one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.batches_submitted = Counter(
            "rebalance_batches_submitted", "Order batches written to the commit log",
            ["world_id", "scope"], registry=registry)
        self.last_batch_size = Gauge(
            "rebalance_last_batch_size", "Orders in the last batch written",
            ["world_id", "scope"], registry=registry)
        self.reduce_only_ratio = Gauge(
            "rebalance_reduce_only_ratio", "Share of reduce-only orders in the last batch",
            ["world_id", "scope"], registry=registry)
        self.plans_observed = Counter(
            "rebalance_plans_observed", "rebalancing_planned events accepted from the ControlBus",
            ["world_id"], registry=registry)
        self.plan_last_delta_count = Gauge(
            "rebalance_plan_last_delta_count", "Deltas in the last observed plan of a world",
            ["world_id"], registry=registry)
        self.schema_fallbacks = Counter(
            "gateway_rebalance_schema_fallback",
            "Plan/apply requests retried as schema v1 after a v2 attempt was refused",
            ["route"], registry=registry)
        self.worldservice_requests = Counter(
            "gateway_worldservice_requests", "Calls to the WorldService by outcome",
            ["route", "outcome"], registry=registry)
        self.worldservice_retries = Counter(
            "gateway_worldservice_retries", "Retries of safe WorldService calls",
            ["route"], registry=registry)
        self.breaker_state = Gauge(
            "gateway_worldservice_breaker_state",
            "WorldService circuit breaker (0 closed, 1 half-open, 2 open)", registry=registry)
        self.controlbus_events = Counter(
            "gateway_controlbus_events", "ControlBus messages by outcome",
            ["outcome"], registry=registry)
        self.controlbus_errors = Counter(
            "gateway_controlbus_errors", "ControlBus read failures (the consumer retried)",
            registry=registry)
        self.ws_clients = Gauge(
            "gateway_ws_clients", "Connected WebSocket subscribers", registry=registry)
        self.ws_disconnects = Counter(
            "gateway_ws_disconnects", "WebSocket connections closed by the gateway",
            ["reason"], registry=registry)
        self.ws_events_sent = Counter(
            "gateway_ws_events_sent", "Events written to WebSocket subscribers",
            registry=registry)

    def observe_batch(self, *, world_id: str, scope: str, size: int,
                      reduce_only_ratio: float) -> None:
        self.batches_submitted.labels(world_id, scope).inc()
        self.last_batch_size.labels(world_id, scope).set(size)
        self.reduce_only_ratio.labels(world_id, scope).set(reduce_only_ratio)

    def observe_plan(self, *, world_id: str, delta_count: int) -> None:
        self.plans_observed.labels(world_id).inc()
        self.plan_last_delta_count.labels(world_id).set(delta_count)

    def add_schema_fallback(self, route: str) -> None:
        self.schema_fallbacks.labels(route).inc()

    def add_worldservice_request(self, route: str, outcome: str) -> None:
        self.worldservice_requests.labels(route, outcome).inc()

    def add_worldservice_retry(self, route: str) -> None:
        self.worldservice_retries.labels(route).inc()

    def set_breaker_state(self, state: str) -> None:
        self.breaker_state.set(_BREAKER_STATE_VALUES[state])

    def add_controlbus_event(self, outcome: str) -> None:
        self.controlbus_events.labels(outcome).inc()

    def add_controlbus_error(self) -> None:
        self.controlbus_errors.inc()

    def add_ws_disconnect(self, reason: str) -> None:
        self.ws_disconnects.labels(reason).inc()

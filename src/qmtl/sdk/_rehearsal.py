"""The QA rehearsal of the v2 rollout (seed "QA 리허설"): one run through every part.

Steps, in order; the first failure stops the run and the remaining steps are ``skipped``:

============== ==============================================================================
health         ``GET /health`` answers, parses strictly and reports ``status: ok``
capabilities   the SDK's Runner switches ``alpha_metrics`` on (alpha capable, effective ≥ 2)
plan_v2        a plan through the gateway with ``schema_version=2`` and return series
v2_envelope    the answer is v2: ``alpha_metrics`` with an entry per world and strategy, and
               ``rebalance_intent``
alpha_parity   the WorldService's metrics equal the SDK's own for the same series (np.isclose)
subscribe      a WebSocket subscription is open (before apply, so the event cannot be missed)
apply          the plan is applied under a fresh ``run_id``
event          one v2 ``rebalancing.planned`` event per world of the plan arrives with that
               ``run_id`` before the timeout
============== ==============================================================================

The rehearsal applies a small book on its own worlds (``qa-rehearsal-*``), so it never touches a
real world's allocation; the plan takes both worlds to an allocation of 0, so the applied
state consumes none of the equity the real worlds share (the WorldService refuses an apply
whose allocations would sum above 1).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from qmtl.contracts import ALPHA_METRIC_KEYS, MultiWorldRebalanceRequest
from qmtl.engine.alpha import alpha_performance

from ._client import GatewayClient
from ._errors import GatewayError
from ._events import EventStream, RebalancingEvent
from ._results import RebalanceResult
from ._runner import Runner

__all__ = ["REHEARSAL_STEPS", "RehearsalReport", "StepResult", "rehearsal_request",
           "run_rehearsal"]

REHEARSAL_STEPS: tuple[str, ...] = ("health", "capabilities", "plan_v2", "v2_envelope",
                                    "alpha_parity", "subscribe", "apply", "event")

_WORLDS = ("qa-rehearsal-1", "qa-rehearsal-2")
_WORLD_RETURNS = {
    _WORLDS[0]: [0.012, -0.004, 0.007, -0.011, 0.015, 0.002, -0.006, 0.009, 0.004, -0.003],
    _WORLDS[1]: [0.003, 0.001, -0.002, 0.004, -0.001, 0.002, 0.0, 0.003, -0.005, 0.006],
}
_STRATEGY_RETURNS = {
    (_WORLDS[0], "trend"): [0.02, -0.01, 0.005, -0.015, 0.01, 0.0, 0.012, -0.004],
    (_WORLDS[0], "carry"): [0.001, 0.002, -0.001, 0.003, 0.0, -0.002, 0.002, 0.001],
    (_WORLDS[1], "pairs"): [-0.003, 0.004, 0.002, -0.006, 0.005, 0.001, -0.002, 0.003],
}


class _StepFailed(Exception):
    def __init__(self, detail: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.data = data or {}


@dataclass(slots=True)
class StepResult:
    """One step: ``status`` is ``passed``, ``failed`` or ``skipped``."""

    name: str
    status: str = "skipped"
    detail: str = ""
    duration_ms: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RehearsalReport:
    """The outcome; :meth:`to_dict` and :meth:`to_markdown` are the two artefacts."""

    gateway: str
    run_id: str
    started_at: str
    finished_at: str = ""
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.status == "passed" for step in self.steps)

    @property
    def failed_step(self) -> str | None:
        return next((s.name for s in self.steps if s.status == "failed"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "failed_step": self.failed_step, "gateway": self.gateway,
            "run_id": self.run_id, "started_at": self.started_at,
            "finished_at": self.finished_at,
            "steps": [{"name": s.name, "status": s.status, "detail": s.detail,
                       "duration_ms": round(s.duration_ms, 3), "data": s.data}
                      for s in self.steps],
        }

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.ok else f"FAILED at step `{self.failed_step}`"
        lines = [
            "# QMTL v2 rehearsal", "",
            f"- Result: **{verdict}**",
            f"- Gateway: `{self.gateway}`",
            f"- run_id: `{self.run_id}`",
            f"- Started: {self.started_at}; finished: {self.finished_at}", "",
            "| # | step | result | detail |", "|---|---|---|---|",
        ]
        for number, step in enumerate(self.steps, 1):
            detail = step.detail.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {number} | `{step.name}` | {step.status} | {detail} |")
        return "\n".join(lines) + "\n"


def rehearsal_request() -> MultiWorldRebalanceRequest:
    """The rehearsal book: two worlds, three strategies, per-world return series."""
    positions = [
        {"world_id": _WORLDS[0], "strategy_id": "trend", "symbol": "QA-BTC", "qty": 2.0,
         "mark": 100.0, "venue": "qa"},
        {"world_id": _WORLDS[0], "strategy_id": "carry", "symbol": "QA-ETH", "qty": 10.0,
         "mark": 10.0, "venue": "qa"},
        {"world_id": _WORLDS[1], "strategy_id": "pairs", "symbol": "QA-BTC", "qty": 1.0,
         "mark": 100.0, "venue": "qa"},
    ]
    return MultiWorldRebalanceRequest.model_validate({
        "total_equity": 10_000.0,
        "world_alloc_before": {_WORLDS[0]: 0.03, _WORLDS[1]: 0.01},
        "world_alloc_after": {_WORLDS[0]: 0.0, _WORLDS[1]: 0.0},
        "positions": positions,
        "rebalance_intent": {"meta": {"purpose": "qmtl rehearsal"}},
        "alpha_series": {"per_world": {w: {"returns": r} for w, r in _WORLD_RETURNS.items()}},
    })


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Rehearsal:
    def __init__(self, client: GatewayClient, *, event_timeout: float,
                 periods_per_year: float) -> None:
        self.client = client
        self.event_timeout = event_timeout
        self.periods_per_year = periods_per_year
        self.runner = Runner(client, periods_per_year=periods_per_year)
        self.request = rehearsal_request()
        self.plan: RebalanceResult | None = None
        self.stream: EventStream | None = None
        self.run_id = f"rehearsal-{uuid.uuid4().hex[:12]}"

    async def health(self) -> str:
        view = await self.client.health()
        components = ", ".join(f"{k}={v}" for k, v in view.components.items())
        if view.status != "ok":
            raise _StepFailed(f"gateway status is {view.status!r} ({components})",
                              {"document": view.document})
        return f"status ok ({components})"

    async def capabilities(self) -> str:
        features = await self.runner.refresh(force=True)
        if not features.alpha_metrics:
            raise _StepFailed(f"SDK kept alpha_metrics off: {features.reason}")
        return f"alpha_metrics on: {features.reason}"

    async def plan_v2(self) -> str:
        for (world_id, strategy_id), returns in _STRATEGY_RETURNS.items():
            for r in returns:
                self.runner.record_return(world_id, strategy_id, r)
        self.plan = await self.runner.plan(self.request)
        return f"served schema_version {self.plan.schema_version}"

    async def v2_envelope(self) -> str:
        assert self.plan is not None
        document = self.plan.document
        if self.plan.schema_version < 2:
            raise _StepFailed(f"the plan was served as v{self.plan.schema_version}, not v2")
        missing = [k for k in ("alpha_metrics", "rebalance_intent") if k not in document]
        if missing or self.plan.alpha_metrics is None:
            raise _StepFailed(f"v2 document lacks {missing or ['a valid alpha_metrics']}")
        envelope = self.plan.alpha_metrics
        problems = [f"per_world[{w}]" for w in _WORLD_RETURNS
                    if set(envelope.per_world.get(w, {})) != set(ALPHA_METRIC_KEYS)]
        problems += [f"per_strategy[{s}][{w}]" for (w, s) in _STRATEGY_RETURNS
                     if set(envelope.per_strategy.get(s, {}).get(w, {})) != set(ALPHA_METRIC_KEYS)]
        if problems:
            raise _StepFailed(f"alpha_metrics entries missing or incomplete: {problems}")
        return "alpha_metrics and rebalance_intent present for every world and strategy"

    async def alpha_parity(self) -> str:
        assert self.plan is not None and self.plan.alpha_metrics is not None
        envelope = self.plan.alpha_metrics
        # (entry, the WorldService's values, the SDK's own values for the same series)
        entries: list[tuple[str, dict[str, float], dict[str, float]]] = [
            (f"per_world[{w}]", envelope.per_world.get(w, {}),
             alpha_performance(r, periods_per_year=self.periods_per_year))
            for w, r in _WORLD_RETURNS.items()
        ]
        for (w, s) in _STRATEGY_RETURNS:
            node = self.runner.performance(w, s)
            assert node is not None
            entries.append((f"per_strategy[{s}][{w}]",
                            envelope.per_strategy.get(s, {}).get(w, {}), node.metrics))
        mismatches = [
            {"entry": entry, "key": key, "worldservice": served.get(key), "sdk": sdk[key]}
            for entry, served, sdk in entries for key in ALPHA_METRIC_KEYS
            if key not in served
            or not np.isclose(served[key], sdk[key], rtol=1e-9, atol=1e-12)
        ]
        if mismatches:
            raise _StepFailed(f"{len(mismatches)} metric(s) differ, first: {mismatches[0]}",
                              {"mismatches": mismatches})
        return f"{len(entries)} entries x {len(ALPHA_METRIC_KEYS)} metrics match"

    async def subscribe(self) -> str:
        self.stream = self.client.events(world_ids=list(_WORLD_RETURNS))
        info = await self.stream.subscribed()
        return f"subscribed (recovered={info.recovered})"

    async def apply(self) -> str:
        result = await self.runner.apply(self.request, run_id=self.run_id)
        if result.run_id != self.run_id:
            raise _StepFailed(f"apply answered run_id {result.run_id!r}, sent {self.run_id!r}")
        return f"applied run_id {self.run_id} (schema_version {result.schema_version})"

    async def event(self) -> str:
        assert self.stream is not None
        pending = set(_WORLD_RETURNS)
        received: list[RebalancingEvent] = []

        async def collect() -> None:
            assert self.stream is not None
            async for event in self.stream:
                if event.run_id != self.run_id:
                    continue
                if event.schema_version < 2 or event.alpha_metrics is None:
                    raise _StepFailed(f"event {event.id} for {event.world_id} is "
                                      f"v{event.schema_version} without alpha metrics")
                received.append(event)
                pending.discard(event.world_id)
                if not pending:
                    return

        try:
            await asyncio.wait_for(collect(), self.event_timeout)
        except TimeoutError:
            raise _StepFailed(f"no rebalancing.planned event on the WebSocket for "
                              f"{sorted(pending)} within {self.event_timeout:g}s "
                              f"(received {len(received)})") from None
        return (f"{len(received)} v2 event(s) received (rebalancing.planned on the WebSocket): "
                + ", ".join(f"{e.world_id} seq {e.seq}" for e in received))

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()


async def run_rehearsal(client: GatewayClient, *, event_timeout: float = 10.0,
                        periods_per_year: float = 252.0) -> RehearsalReport:
    """Run every step against the gateway behind ``client`` (see the module docstring).

    Args:
        client: a client of the gateway under test.
        event_timeout: seconds to wait for the events after apply.
        periods_per_year: P the WorldService uses for alpha metrics (252 unless configured).

    Returns:
        The report; it never raises for a failing gateway (the failed step says why).
    """
    rehearsal = _Rehearsal(client, event_timeout=event_timeout,
                           periods_per_year=periods_per_year)
    report = RehearsalReport(gateway=client.base_url, run_id=rehearsal.run_id,
                             started_at=_now())
    report.steps = [StepResult(name) for name in REHEARSAL_STEPS]
    try:
        for step in report.steps:
            started = time.perf_counter()
            try:
                step.detail = await getattr(rehearsal, step.name)()
                step.status = "passed"
            except _StepFailed as exc:
                step.status, step.detail, step.data = "failed", exc.detail, exc.data
            except GatewayError as exc:
                step.status, step.detail = "failed", f"{type(exc).__name__}: {exc}"
            step.duration_ms = (time.perf_counter() - started) * 1000.0
            if step.status == "failed":
                break
    finally:
        await rehearsal.close()
        report.finished_at = _now()
    return report

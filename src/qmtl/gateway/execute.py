"""``POST /rebalancing/execute`` (SPEC 4): checks, negotiated plan, orders, commit log.

Checks run in this order, before the WorldService is called (validation 422 happens in
FastAPI before any of them)::

    hybrid mode                              501 E_REBALANCE_MODE_UNSUPPORTED
    overlay without config                   422 E_OVERLAY_CONFIG_REQUIRED
    overlay instrument mapped to two worlds  422 E_OVERLAY_EXECUTION_AMBIGUOUS
    shared_account with the policy disabled  403 E_SHARED_ACCOUNT_DISABLED
    submit without X-Allow-Live: true        403 E_PERMISSION_DENIED   (live guard on)

A dry run writes nothing. ``submit`` writes every batch and the run entry in one atomic
commit-log append; a repeated ``run_id`` with the same body gets the stored response back
(``replayed``) and writes nothing, with another body 409 ``E_RUN_ID_CONFLICT``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic_core import to_json

from qmtl.contracts import ExecuteResponse, MultiWorldRebalanceRequest, RebalanceMode, sha256_hex
from qmtl.contracts.errors import (
    OverlayConfigRequired,
    OverlayExecutionAmbiguous,
    PermissionDenied,
    RebalanceModeUnsupported,
    SharedAccountDisabled,
)
from qmtl.gateway.commitlog import CommitLog

from .batches import plan_batches
from .config import GatewaySettings
from .execution import ExecutionOrders, OrderPolicies, build_execution, response_body
from .metrics import GatewayMetrics
from .outgoing import OutgoingRequest
from .worldservice_client import PlanResult, WorldServiceClient

__all__ = ["ExecuteFlags", "ExecuteOutcome", "ExecuteService", "allow_live_header", "preflight"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExecuteFlags:
    per_strategy: bool = False
    shared_account: bool = False
    submit: bool = False


@dataclass(frozen=True, slots=True)
class ExecuteOutcome:
    """The JSON to return and whether it is a stored (replayed) response."""

    content: bytes
    replayed: bool


def allow_live_header(value: str | None) -> bool:
    """``X-Allow-Live`` grants live submission only when it is exactly ``true`` (any case)."""
    return value is not None and value.strip().lower() == "true"


def preflight(request: MultiWorldRebalanceRequest, *, flags: ExecuteFlags, allow_live: bool,
              settings: GatewaySettings) -> None:
    """The checks that need no WorldService, in SPEC order (see the module docstring)."""
    if request.mode is RebalanceMode.HYBRID:
        raise RebalanceModeUnsupported(mode="hybrid")
    if request.mode is RebalanceMode.OVERLAY:
        if request.overlay is None:
            raise OverlayConfigRequired(field="overlay")
        worlds_by_symbol: dict[str, list[str]] = {}
        for world_id, symbol in request.overlay.instrument_by_world.items():
            worlds_by_symbol.setdefault(symbol, []).append(world_id)
        for symbol, worlds in sorted(worlds_by_symbol.items()):
            if len(worlds) > 1:
                raise OverlayExecutionAmbiguous(
                    f"overlay instrument {symbol!r} is mapped to worlds {sorted(worlds)}: "
                    "its orders could not be attributed to one world",
                    symbol=symbol, world_ids=sorted(worlds),
                )
    if flags.shared_account and not settings.shared_account_policy.enabled:
        raise SharedAccountDisabled()
    if flags.submit and settings.enforce_live_guard and not allow_live:
        raise PermissionDenied()


def body_hash(request: MultiWorldRebalanceRequest, flags: ExecuteFlags) -> str:
    """Canonical hash of what an execute asks for: the normalised body and the order flags."""
    return sha256_hex({
        "request": request.model_dump(mode="json"),
        "per_strategy": flags.per_strategy,
        "shared_account": flags.shared_account,
    })


class ExecuteService:
    """Runs execute calls against one WorldService client and one commit log."""

    def __init__(self, *, settings: GatewaySettings, client: WorldServiceClient,
                 commit_log: CommitLog, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.client = client
        self.commit_log = commit_log
        self.metrics = metrics
        self.policies = OrderPolicies(venues=dict(settings.venue_policies),
                                      default=settings.default_venue_policy)

    async def execute(self, body: OutgoingRequest, *, flags: ExecuteFlags,
                      allow_live: bool) -> ExecuteOutcome:
        """Checks, plan, orders and (when ``flags.submit``) the commit-log append.

        Args:
            body: the request, validated in full (``body.model`` is set).
            flags: the query flags.
            allow_live: whether ``X-Allow-Live: true`` was sent.
        """
        request = body.model
        if request is None:
            raise ValueError("execute needs a fully validated request body")
        preflight(request, flags=flags, allow_live=allow_live, settings=self.settings)
        # The canonical hash is needed for the commit log and, without a run id, for the
        # order-id namespace; a dry run with a run id skips it.
        needs_digest = flags.submit or request.run_id is None
        digest = await anyio.to_thread.run_sync(body_hash, request, flags) if needs_digest else ""
        if flags.submit and request.run_id is not None:
            replay = await self._stored(request.run_id, digest)
            if replay is not None:
                return replay
        plan = await self.client.post_rebalance_plan(body)
        execution = await anyio.to_thread.run_sync(self._build, request, plan, flags, digest)
        response = self._response(request, plan, execution, submitted=flags.submit)
        if not flags.submit:
            return ExecuteOutcome(content=to_json(response), replayed=False)
        return await self._submit(request, plan, execution, flags=flags, digest=digest,
                                  response=response)

    async def _stored(self, run_id: str, digest: str) -> ExecuteOutcome | None:
        """A submitted run's stored response, answered without planning again (so a repeated
        submit is answered even while the WorldService is down)."""
        result = await self.commit_log.replay(run_id, body_hash=digest)
        if result is None or result.response is None:
            return None
        return ExecuteOutcome(content=json.dumps(result.response).encode(), replayed=True)

    def _build(self, request: MultiWorldRebalanceRequest, plan: PlanResult,
               flags: ExecuteFlags, digest: str) -> ExecutionOrders:
        return build_execution(
            request, plan.response, per_strategy=flags.per_strategy,
            shared_account=flags.shared_account, policies=self.policies,
            shared_policy=self.settings.shared_account_policy,
            id_base=request.run_id or digest[:24],
        )

    def _response(self, request: MultiWorldRebalanceRequest, plan: PlanResult,
                  execution: ExecutionOrders, *, submitted: bool) -> dict[str, Any]:
        alpha_capable = (self.settings.alpha_metrics_capable and plan.served_version >= 2
                         and plan.response.alpha_metrics is not None)
        head = ExecuteResponse(
            orders_per_world={},
            overlay_deltas=execution.overlay_deltas,
            shared_account=execution.shared_account,
            submitted=submitted,
            run_id=request.run_id,
            rebalance_schema_version=plan.served_version,
            alpha_metrics_capable=alpha_capable,
        )
        return response_body(head, execution)

    async def _submit(self, request: MultiWorldRebalanceRequest, plan: PlanResult,
                      execution: ExecutionOrders, *, flags: ExecuteFlags, digest: str,
                      response: dict[str, Any]) -> ExecuteOutcome:
        batches = plan_batches(execution, per_strategy=flags.per_strategy,
                               shared_account=flags.shared_account, run_id=request.run_id,
                               schema_version=plan.served_version)
        body = {**response, "batch_ids": [b.record.batch_id for b in batches]}
        result = await self.commit_log.append([b.record for b in batches], run_id=request.run_id,
                                              body_hash=digest, response=body)
        if result.replayed:
            logger.info("execute run %s replayed from the commit log", request.run_id,
                        extra={"run_id": request.run_id})
            stored = result.response if result.response is not None else body
            return ExecuteOutcome(content=json.dumps(stored).encode(), replayed=True)
        for batch in batches:
            logger.info(
                "submitted batch %s: world=%s scope=%s strategy=%s orders=%d "
                "reduce_only_ratio=%.4f", batch.record.batch_id, batch.world_id, batch.scope,
                batch.strategy_id, batch.size, batch.reduce_only_ratio,
                extra={"run_id": request.run_id, "world_id": batch.world_id,
                       "batch_id": batch.record.batch_id, "scope": batch.scope},
            )
            self.metrics.observe_batch(world_id=batch.world_id, scope=batch.scope,
                                       size=batch.size, reduce_only_ratio=batch.reduce_only_ratio)
        return ExecuteOutcome(content=to_json(body), replayed=False)

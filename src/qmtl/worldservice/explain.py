"""Serving the explain document (``POST /rebalancing/explain``).

The same request and the same "before" as a plan (a null ``world_alloc_before`` is filled
from the stored allocation state by :meth:`PlanningService.effective_request`), then
:func:`qmtl.engine.explain.explain_rebalance`. The document is versionless, so there is no
version negotiation: hybrid → 501 and overlay without configuration → 422 as for a plan.
"""

from __future__ import annotations

import anyio.to_thread

from qmtl.contracts import MultiWorldRebalanceRequest, RebalanceMode
from qmtl.contracts.errors import OverlayConfigRequired, RebalanceModeUnsupported
from qmtl.engine.explain import explain_document
from qmtl.web.gcpause import gc_paused

from .planning import OFFLOAD_POSITIONS, PlanningService, encode_json

__all__ = ["ExplainService", "compute_explanation"]


def compute_explanation(request: MultiWorldRebalanceRequest) -> bytes:
    """The explain document's JSON bytes (CPU only; GC paused for large books).

    Raises:
        RebalanceModeUnsupported, OverlayConfigRequired, OverlayConfigInvalid,
        PlanInputInvalid: from the engine.
    """
    with gc_paused(len(request.positions) > OFFLOAD_POSITIONS):
        return encode_json(explain_document(request))


class ExplainService:
    """Explains what :class:`PlanningService` would plan for the same request."""

    def __init__(self, planning: PlanningService) -> None:
        self.planning = planning

    async def explain(self, request: MultiWorldRebalanceRequest) -> bytes:
        """Check the mode, fill the "before" like a plan and explain.

        Raises:
            RebalanceModeUnsupported: mode hybrid (first).
            OverlayConfigRequired: mode overlay without ``overlay``.
            StoreUnavailable: the "before" had to be read and the store is down.
        """
        if request.mode is RebalanceMode.HYBRID:
            raise RebalanceModeUnsupported(mode="hybrid")
        if request.mode is RebalanceMode.OVERLAY and request.overlay is None:
            raise OverlayConfigRequired(field="overlay")
        effective, _ = await self.planning.effective_request(request)
        if len(effective.positions) > OFFLOAD_POSITIONS:
            return await anyio.to_thread.run_sync(compute_explanation, effective)
        return compute_explanation(effective)

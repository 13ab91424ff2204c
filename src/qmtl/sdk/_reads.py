"""Read calls of :class:`GatewayClient`: recorded allocations, runs and audit trails, and an
apply that reports whether it recorded a new run or replayed a stored one.

The gateway relays these reads to its WorldService behind its own auth (``GET /allocations``,
``GET /rebalancing/runs/{run_id}``, ``GET /worlds/{world_id}/audit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx

    from qmtl.contracts import MultiWorldRebalanceRequest

__all__ = ["ApplyOutcome", "ReadsMixin"]


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What an apply did.

    Attributes:
        document: the applied plan as served (with ``run_id`` and ``etag``).
        replayed: the gateway answered ``Idempotent-Replayed: true``: this ``run_id`` was
            already recorded with the same body, so nothing was recorded or published again.
        etag: the allocation state's ETag after the apply (the document's ``etag``, else the
            ``ETag`` header).
    """

    document: dict[str, Any] = field(repr=False)
    replayed: bool
    etag: str | None

    @property
    def run_id(self) -> str | None:
        value = self.document.get("run_id")
        return value if isinstance(value, str) else None

    @property
    def events_published(self) -> int:
        """ControlBus ``rebalancing_planned`` events this apply published: one per world of
        the plan (SPEC 2.6), none on a replay."""
        return 0 if self.replayed else len(self.document.get("per_world") or {})


class ReadsMixin:
    """Mixed into :class:`GatewayClient`; relies on its ``_exchange``."""

    if TYPE_CHECKING:
        async def _exchange(self, method: str, path: str, *, body: Any = None,
                            params: Mapping[str, str] | None = None,
                            headers: Mapping[str, str] | None = None,
                            accept_statuses: Sequence[int] = ()
                            ) -> tuple[int, dict[str, Any], httpx.Headers]: ...

    async def allocations(self, *, world_id: str | None = None) -> dict[str, Any]:
        """``GET /allocations``: the recorded world allocations and their ``etag``.

        Args:
            world_id: only this world (404 ``E_NOT_FOUND`` when it has none).

        Raises:
            GatewayHTTPError: 4xx/5xx (401, 404, 503...).
            GatewayUnavailable: the gateway cannot be reached.
        """
        params = {"world_id": world_id} if world_id is not None else None
        _, payload, _ = await self._exchange("GET", "/allocations", params=params)
        return payload

    async def run(self, run_id: str) -> dict[str, Any]:
        """``GET /rebalancing/runs/{run_id}``: the stored response of an applied run.

        Raises:
            GatewayHTTPError: 404 ``E_NOT_FOUND`` for an unknown run, other 4xx/5xx.
            GatewayUnavailable: the gateway cannot be reached.
        """
        _, payload, _ = await self._exchange("GET", f"/rebalancing/runs/{quote(run_id, safe='')}")
        return payload

    async def audit(self, world_id: str, *, limit: int | None = None) -> dict[str, Any]:
        """``GET /worlds/{world_id}/audit``: the world's audit entries, newest first.

        Raises:
            GatewayHTTPError: 4xx/5xx.
            GatewayUnavailable: the gateway cannot be reached.
        """
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        params = {"limit": str(limit)} if limit is not None else None
        path = f"/worlds/{quote(world_id, safe='')}/audit"
        _, payload, _ = await self._exchange("GET", path, params=params)
        return payload

    async def apply_outcome(self, request: MultiWorldRebalanceRequest | Mapping[str, Any], *,
                            run_id: str | None = None,
                            if_match: str | None = None) -> ApplyOutcome:
        """:meth:`GatewayClient.apply`, also saying whether the run was recorded or replayed.

        Raises:
            GatewayHTTPError: 4xx/5xx (409 ``E_RUN_ID_CONFLICT``, 412 ``E_ETAG_MISMATCH``...).
            GatewayUnavailable: the gateway cannot be reached.
        """
        from ._client import apply_call

        body, headers = apply_call(request, run_id=run_id, if_match=if_match)
        _, payload, response_headers = await self._exchange("POST", "/rebalancing/apply",
                                                            body=body, headers=headers)
        replayed = response_headers.get("idempotent-replayed", "").lower() == "true"
        etag = payload.get("etag") or response_headers.get("etag", "").strip('"') or None
        return ApplyOutcome(document=payload, replayed=replayed,
                            etag=etag if isinstance(etag, str) else None)

    async def looks_like_worldservice(self) -> bool:
        """Whether this URL answers ``/health`` like a WorldService rather than a gateway
        (``schema_versions`` and no ``capabilities``): a common mix-up of ports 8080/8000.

        Raises:
            GatewayUnavailable: the URL cannot be reached.
            GatewayHTTPError: ``/health`` answered an error without a JSON document.
        """
        _, payload, _ = await self._exchange("GET", "/health", accept_statuses=(503,))
        return "capabilities" not in payload and "schema_versions" in payload

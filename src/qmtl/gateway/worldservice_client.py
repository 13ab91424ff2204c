"""The gateway's WorldService client: httpx async with explicit timeouts, bounded retries of
safe calls, a circuit breaker, and plan-schema negotiation.

Foreign exceptions are translated here and nowhere else::

    circuit open               -> WorldServiceUnavailable (503, fast)
    httpx.PoolTimeout          -> WorldServiceUnavailable (503; not counted by the breaker)
    httpx.TimeoutException     -> WorldServiceTimeout     (504)
    other httpx.TransportError -> WorldServiceUnavailable (503)
    WS 4xx, 501, 502/503/504   -> UpstreamError(status, detail)  (relayed unchanged)
    WS 500 (and other 5xx)     -> WorldServiceError       (502 E_WORLDSERVICE_ERROR + detail)
    WS 2xx breaking the schema -> WorldServiceBadResponse (502)

Breaker accounting (SPEC 6): only what says the WorldService is unwell counts as a failure —
transport errors, timeouts and 502/503/504 answers. A 4xx or a 500 is one request's
problem (its input), so it counts as a success: no caller can open the circuit for the
others by sending poison. Only ``GET /health`` is retried (after connection errors,
``retries.attempts`` tries in all).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from qmtl.contracts import MultiWorldRebalanceResponse, best_common_version
from qmtl.contracts.errors import (
    UpstreamError,
    WorldServiceTimeout,
    WorldServiceUnavailable,
)

from .answers import announced_version, relay_chunks
from .breaker import BreakerState, CircuitBreaker, CircuitOpen
from .config import GatewaySettings
from .metrics import GatewayMetrics
from .negotiation import choose_version, error_detail, is_version_refusal, preferred_version
from .outgoing import OutgoingRequest
from .probe import WorldServiceProbe, probe_from_health
from .served import parse_served_response, relayable_as_is
from .upload import StreamedBody, StreamSlots, send_streamed
from .upstream import BREAKER_FAILURE_STATUSES, upstream_error

__all__ = ["PASSTHROUGH_HEADERS", "PlanResult", "RelayedPlan", "WorldServiceClient"]

logger = logging.getLogger(__name__)

PROBE_READ_TIMEOUT = 5.0
"""Seconds a ``GET /health`` probe may wait for the WorldService's answer (at most)."""

PASSTHROUGH_HEADERS = ("idempotent-replayed", "etag")
"""WorldService response headers the gateway relays to its caller."""

@dataclass(frozen=True, slots=True)
class PlanResult:
    """A plan/apply answer: the parsed model, the wire JSON at the served version, and the
    negotiation facts."""

    response: MultiWorldRebalanceResponse
    content: bytes
    served_version: int
    sent_version: int
    fell_back: bool
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RelayedPlan:
    """A plan/apply answer as the proxy relays it: wire JSON at the served version, whole
    (``content``) or arriving (``chunks``, see ``answers``)."""

    content: bytes
    served_version: int
    headers: dict[str, str] = field(default_factory=dict)
    chunks: AsyncIterator[bytes] | None = None


class WorldServiceClient:
    """One per gateway app; owns an ``httpx.AsyncClient`` opened in the lifespan.

    Args:
        settings: the gateway settings (URL, token, timeouts, retries, breaker, versions).
        metrics: where requests, retries, fallbacks and breaker state are counted.
        transport: an httpx transport for tests (``MockTransport``/``ASGITransport``).
    """

    def __init__(self, settings: GatewaySettings, *, metrics: GatewayMetrics,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        headers = {"accept": "application/json"}
        if settings.worldservice_token:
            headers["authorization"] = f"Bearer {settings.worldservice_token}"
        self._http = httpx.AsyncClient(base_url=settings.worldservice_url, headers=headers,
                                       timeout=settings.timeouts.to_httpx(), transport=transport)
        self.breaker = CircuitBreaker(
            failure_threshold=settings.breaker.failure_threshold,
            reset_timeout=settings.breaker.reset_timeout,
            on_change=lambda state: metrics.set_breaker_state(state.value),
        )
        metrics.set_breaker_state(BreakerState.CLOSED.value)
        self.probe = WorldServiceProbe()
        # A health probe must not hang /health for a full read timeout.
        configured = settings.timeouts
        self._probe_timeout = httpx.Timeout(
            connect=configured.connect, read=min(configured.read, PROBE_READ_TIMEOUT),
            write=min(configured.write, PROBE_READ_TIMEOUT), pool=configured.pool)
        # Set when a WorldService whose /health lists no versions accepted only v1: later
        # calls send v1 at once instead of being refused first (cleared by a probe that
        # lists versions).
        self._learned_v1_only = False
        # What a WorldService without a version list served when asked at the configured
        # version (the effective version /health reports for it), and whether its
        # /rebalancing routes answered 404 (a wrong URL, not a legacy WorldService).
        self._observed_version: int | None = None
        self.routes_missing = False
        self.stream_slots = StreamSlots()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- transport ---------------------------------------------------------------------

    async def _request(self, route: str, method: str, path: str, *,
                       content: bytes | bytearray | AsyncIterator[bytes] | None = None,
                       headers: dict[str, str] | None = None,
                       timeout: httpx.Timeout | None = None,
                       stream: bool = False) -> httpx.Response:
        try:
            self.breaker.admit()
        except CircuitOpen as exc:
            self.metrics.add_worldservice_request(route, "circuit_open")
            raise WorldServiceUnavailable(
                "the WorldService circuit is open after repeated failures; retry later",
                retry_after_seconds=round(exc.retry_after, 3),
            ) from exc
        if isinstance(content, bytearray):  # httpx would send it as an iterable of ints
            content = bytes(content)
        try:
            built = self._http.build_request(
                method, path, content=content, headers=headers,
                timeout=timeout if timeout is not None else self._http.timeout)
            # stream: headers only; the caller reads or relays the body (``answers``)
            response = await self._http.send(built, stream=stream)
        except httpx.PoolTimeout as exc:
            # Every pooled connection is busy: the gateway's own load, nothing the
            # WorldService did, so the breaker does not count it.
            self.breaker.record_neutral()
            self.metrics.add_worldservice_request(route, "pool_busy")
            raise WorldServiceUnavailable(
                "every connection to the WorldService is busy; retry later",
                retry_after_seconds=1.0,
            ) from exc
        except httpx.TimeoutException as exc:
            self.breaker.record_failure()
            self.metrics.add_worldservice_request(route, "timeout")
            raise WorldServiceTimeout(
                f"the WorldService did not answer {method} {path} in time "
                f"({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            self.breaker.record_failure()
            self.metrics.add_worldservice_request(route, "unreachable")
            raise WorldServiceUnavailable(
                f"the WorldService is unreachable at {self.settings.worldservice_url} "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        except BaseException:
            self.breaker.record_neutral()
            raise
        if response.status_code in BREAKER_FAILURE_STATUSES:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        self.metrics.add_worldservice_request(route, str(response.status_code))
        return response

    async def _get_with_retries(self, route: str, path: str) -> httpx.Response:
        attempts = self.settings.retries.attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._request(route, "GET", path, timeout=self._probe_timeout)
            except WorldServiceUnavailable as exc:
                # Retry only connection failures; an open circuit is final.
                if attempt == attempts or not isinstance(exc.__cause__, httpx.TransportError):
                    raise
                delay = self.settings.retries.backoff * 2 ** (attempt - 1)
                logger.info("GET %s failed (%s); %d retries remaining, next in %.3fs",
                            path, exc.message, attempts - attempt, delay)
                self.metrics.add_worldservice_retry(route)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- health / capabilities -----------------------------------------------------------

    async def refresh(self) -> WorldServiceProbe:
        """Probe ``GET /health`` and replace :attr:`probe` (never raises QMTL errors).

        A failed probe keeps the last known versions: a WorldService does not lose
        capabilities by being briefly unreachable, and negotiation falls back anyway.
        """
        previous = self.probe
        try:
            response = await self._get_with_retries("health", "/health")
        except (WorldServiceUnavailable, WorldServiceTimeout) as exc:
            self.probe = WorldServiceProbe(
                status="down", detail=exc.message, schema_versions=previous.schema_versions,
                legacy=previous.legacy,
                alpha_metrics_required=previous.alpha_metrics_required,
                compat_rebalance_v2=previous.compat_rebalance_v2, checked_at=time.time(),
            )
            return self.probe
        try:
            body = response.json()
        except ValueError:
            body = None
        self.probe = probe_from_health(response.status_code, body)
        if self.probe.schema_versions is not None:
            self._learned_v1_only = False
        return self.probe

    @property
    def known_versions(self) -> tuple[int, ...] | None:
        """The versions negotiation may rely on: the probe's list, else ``(1,)`` once a
        legacy WorldService has refused v2, else ``None`` (unknown)."""
        if self.probe.schema_versions is not None:
            return self.probe.schema_versions
        return (1,) if self._learned_v1_only else None

    def effective_version(self) -> int | None:
        """The version the WorldService will serve this gateway (what ``/health`` reports).

        Its ``/health`` list when it has one (best common version); for a legacy
        WorldService, the version it served when last asked at the configured version, and
        1 before that — a legacy WorldService always answers v1 (the gateway falls back);
        ``None`` while nothing is known.
        """
        configured = self.settings.rebalance_schema_version
        if self.probe.schema_versions is not None:
            return best_common_version(configured, list(self.probe.schema_versions))
        if self.probe.legacy or self._learned_v1_only:
            learned = 1 if self._learned_v1_only else self._observed_version
            return min(learned or 1, configured)
        return None

    # -- plan / apply --------------------------------------------------------------------

    async def post_rebalance_plan(self, request: OutgoingRequest) -> PlanResult:
        """``POST /rebalancing/plan`` at the negotiated version (see ``negotiation``)."""
        return await self._post_rebalance("plan", request, headers={})

    async def post_rebalance_apply(self, request: OutgoingRequest, *,
                                   if_match: str | None = None) -> PlanResult:
        """``POST /rebalancing/apply`` at the negotiated version; ``If-Match`` passed on."""
        headers = {"if-match": if_match} if if_match else {}
        return await self._post_rebalance("apply", request, headers=headers)

    async def relay_rebalance(self, route: str, request: OutgoingRequest | StreamedBody, *,
                              if_match: str | None = None) -> RelayedPlan:
        """``POST /rebalancing/{route}`` for the proxy: the answer's bytes relayed as they
        are when its top level shows a well-versioned document (``served.relayable_as_is``),
        else validated and re-rendered as :meth:`post_rebalance_plan` does."""
        headers = {"if-match": if_match} if if_match else {}
        response, sent, fell_back = await self._exchange(route, request, headers=headers,
                                                         stream_answer=True)
        apply = route == "apply"
        passthrough = self._passthrough(response)
        if not response.is_stream_consumed:  # announced by our WorldService (``answers``)
            announced = announced_version(response, sent=sent)
            assert announced is not None
            if "content-length" in response.headers:
                passthrough["content-length"] = response.headers["content-length"]
            chunks = relay_chunks(response, apply=apply, announced=announced, on_served=lambda
                                  served: self._observe(served, sent=sent, fell_back=fell_back))
            return RelayedPlan(content=b"", served_version=announced, headers=passthrough,
                               chunks=chunks)
        served = relayable_as_is(response.content, apply=apply)
        if served is None:
            _, content, served = parse_served_response(response.content, apply=apply)
        else:
            content = response.content
        self._observe(served, sent=sent, fell_back=fell_back)
        return RelayedPlan(content=content, served_version=served, headers=passthrough)

    def _observe(self, served: int, *, sent: int, fell_back: bool) -> None:
        if not fell_back and sent == self.settings.rebalance_schema_version:
            self._observed_version = served

    @staticmethod
    def _passthrough(response: httpx.Response) -> dict[str, str]:
        return {name: response.headers[name] for name in PASSTHROUGH_HEADERS
                if name in response.headers}

    async def _post_rebalance(self, route: str, request: OutgoingRequest, *,
                              headers: dict[str, str]) -> PlanResult:
        response, sent, fell_back = await self._exchange(route, request, headers=headers)
        model, content, served = parse_served_response(response.content, apply=route == "apply")
        self._observe(served, sent=sent, fell_back=fell_back)
        return PlanResult(response=model, content=content, served_version=served, sent_version=sent,
                          fell_back=fell_back, headers=self._passthrough(response))

    async def _exchange(self, route: str, body: OutgoingRequest | StreamedBody, *,
                        headers: dict[str, str], stream_answer: bool = False,
                        ) -> tuple[httpx.Response, int, bool]:
        """Send at the negotiated version (one v1 retry on a version refusal); a large body
        still arriving is streamed when the version allows it (``upload``). With
        ``stream_answer``, an answer our WorldService announces (``answers``) is returned
        unread; every other answer is read.

        Raises:
            The upstream error of a 4xx/5xx answer (``upstream_error``).
            RequestValidationError: a streamed body whose envelope is invalid.
        """
        path = f"/rebalancing/{route}"
        configured = self.settings.rebalance_schema_version
        known = self.known_versions
        headers = {**headers, "content-type": "application/json"}
        legacy = self.probe.legacy or self._learned_v1_only

        def version(request: OutgoingRequest) -> int:
            return choose_version(preferred_version(request.declared_version,
                                                    configured=configured), served=known)

        async def send(content: bytes | bytearray | AsyncIterator[bytes]) -> httpx.Response:
            return await self._request(route, "POST", path, headers=headers, content=content,
                                       stream=stream_answer and not legacy)

        if (isinstance(body, StreamedBody) and self._streams(known, legacy=legacy)
                and self.stream_slots.take()):
            try:
                response, request = await send_streamed(
                    body, send=send, encode=lambda request: request.encode(version(request)))
            finally:
                self.stream_slots.give_back()
            sent = version(request)
        else:
            request = await body.read() if isinstance(body, StreamedBody) else body
            sent = version(request)
            response = await send(request.encode(sent, legacy=legacy))
        if not response.is_stream_consumed and (
                known is None or announced_version(response, sent=sent) is None):
            await response.aread()
            await response.aclose()
        fell_back = False
        if sent > 1 and response.status_code in (400, 422):
            detail = error_detail(response.content)
            if is_version_refusal(response.status_code, detail):
                fell_back = True
                self.metrics.add_schema_fallback(route)
                logger.warning(
                    "worldservice refused %s at schema_version=%d (HTTP %d); retrying once as v1",
                    path, sent, response.status_code,
                    extra={"run_id": request.run_id, "versions_known": known is not None},
                )
                # A WorldService that refuses the version is not ours: send what a
                # strict original v1 model requires.
                response = await self._request(route, "POST", path, headers=headers,
                                               content=request.encode(1, legacy=True))
                if known is not None:
                    # The cached capability list was stale; learn the truth before next time.
                    await self.refresh()
                if response.status_code < 400 and self.probe.schema_versions is None:
                    self._learned_v1_only = True
        self.routes_missing = response.status_code == 404
        if response.status_code >= 400:
            raise upstream_error(response.status_code, error_detail(response.content))
        return response, sent, fell_back

    def _streams(self, known: tuple[int, ...] | None, *, legacy: bool) -> bool:
        """Whether a large body may be streamed (see ``upload``): our WorldService, at the
        configured version >= 2, which it serves (the caller's bytes then go through as
        they are or gain a ``schema_version``)."""
        configured = self.settings.rebalance_schema_version
        return (not legacy and known is not None and configured >= 2
                and choose_version(configured, served=known) == configured)

    # -- reads (relayed by routers/reads.py) ---------------------------------------------

    async def get_read(self, route: str, path: str, *,
                       query: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
        """``GET path`` on the WorldService: its JSON body and the relayed headers (ETag).

        Raises:
            UpstreamError: the WorldService answered 4xx/5xx (relayed unchanged).
            WorldServiceUnavailable, WorldServiceTimeout: as for every call.
        """
        target = f"{path}?{urlencode(query)}" if query else path
        response = await self._request(route, "GET", target)
        if response.status_code >= 400:
            raise UpstreamError(response.status_code, error_detail(response.content))
        headers = {name: response.headers[name] for name in PASSTHROUGH_HEADERS
                   if name in response.headers}
        return response.content, headers

    # -- explain (appended; versionless) -------------------------------------------------

    async def post_rebalance_explain(self, request: OutgoingRequest) -> bytes:
        """``POST /rebalancing/explain`` with the caller's bytes unchanged: the explain
        document is versionless, so nothing is negotiated and nothing falls back.

        Raises:
            UpstreamError: the WorldService's 4xx/5xx, relayed unchanged.
            WorldServiceBadResponse: a 2xx that is not an explain document.
        """
        # Imported here so this method stays one self-contained addition to the module.
        from pydantic import ValidationError

        from qmtl.contracts import RebalanceExplanation

        from .served import WorldServiceBadResponse

        response = await self._request("explain", "POST", "/rebalancing/explain",
                                       headers={"content-type": "application/json"},
                                       content=request.raw)
        if response.status_code >= 400:
            raise UpstreamError(response.status_code, error_detail(response.content))
        try:
            RebalanceExplanation.model_validate_json(response.content)
        except ValidationError as exc:
            raise WorldServiceBadResponse(
                f"the WorldService's explain document breaks the contract: {exc.errors()[:1]}"
            ) from exc
        return response.content

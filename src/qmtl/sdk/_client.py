"""The async gateway client: health, capabilities, plan / apply / execute and events.

One :class:`httpx.AsyncClient` per :class:`GatewayClient`, opened on first use and closed once
by :meth:`GatewayClient.aclose` (httpx's ``ClientState`` rule: a closed client is not reopened).
Every timeout is explicit. HTTP errors become :class:`GatewayHTTPError` with the server's
``E_…`` code; transport failures become :class:`GatewayUnavailable`. Calls are not retried:
plan, apply and execute are not safe to repeat blindly (apply and execute are idempotent only
under the same ``run_id``, which the caller chooses).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from qmtl.contracts import (
    ARROW_STREAM_MEDIA_TYPE,
    MultiWorldRebalanceRequest,
    decode_arrow_plan,
    require_pyarrow,
)

from ._arrow import arrow_available, arrow_plan_body, positions_records, positions_table
from ._body import encode_body
from ._capabilities import Capabilities, GatewayHealthView, parse_health
from ._errors import GatewayError, GatewayHTTPError, GatewayUnavailable, error_code
from ._events import EventStream, ReconnectPolicy
from ._reads import ReadsMixin

__all__ = [
    "DEFAULT_CAPABILITIES_TTL",
    "DEFAULT_TIMEOUT",
    "GatewayClient",
    "RequestLike",
    "request_body",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=60.0, pool=5.0)
"""Seconds: connecting and waiting for a pooled connection fail fast; a large plan may take
a while to upload and compute."""

DEFAULT_CAPABILITIES_TTL = 30.0
"""Seconds a capabilities answer is reused before ``/health`` is asked again."""

RequestLike = MultiWorldRebalanceRequest | Mapping[str, Any]
"""A request model, or a JSON-ready mapping sent as is (the gateway validates it)."""


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def request_body(request: RequestLike) -> dict[str, Any]:
    """The JSON body of a request: a model without its ``None`` fields, or a copy of a mapping."""
    if isinstance(request, MultiWorldRebalanceRequest):
        return request.model_dump(mode="json", exclude_none=True)
    if isinstance(request, Mapping):
        return dict(request)
    raise TypeError(
        f"request must be a MultiWorldRebalanceRequest or a mapping, got {type(request).__name__}"
    )


def apply_call(request: RequestLike, *, run_id: str | None,
               if_match: str | None) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The body and headers of ``POST /rebalancing/apply`` (``run_id`` overrides the
    request's; ``if_match`` becomes the ``If-Match`` header)."""
    body = request_body(request)
    if run_id is not None:
        body["run_id"] = run_id
    return body, ({"If-Match": if_match} if if_match is not None else None)


def _raise_http_error(response: httpx.Response, payload: Any) -> None:
    detail = payload.get("detail", payload) if isinstance(payload, dict) else None
    if detail is None:
        detail = response.text.strip() or response.reason_phrase
    raise GatewayHTTPError(response.status_code, error_code(response.status_code, detail),
                           detail)


def _rows_table(rows: list[dict[str, Any]]) -> Any:
    return require_pyarrow().Table.from_pylist(rows)


def _describe_transport_error(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})" if str(exc) else "cannot connect"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class GatewayClient(ReadsMixin):
    """Async client of a QMTL gateway.

    Args:
        base_url: the gateway's URL, e.g. ``http://127.0.0.1:8000``.
        token: a bearer token sent on every call and on the WebSocket (when auth is on).
        timeout: an :class:`httpx.Timeout` or seconds for every phase.
        capabilities_ttl: seconds a capabilities answer is cached (default 30).
        reconnect: backoff of :meth:`events` reconnections.
        transport: an httpx transport (tests may route to an ASGI app).
        clock: a monotonic clock in seconds (injectable so TTL tests need not sleep).

    Use as ``async with GatewayClient(url) as client: ...`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        capabilities_ttl: float = DEFAULT_CAPABILITIES_TTL,
        reconnect: ReconnectPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if capabilities_ttl < 0:
            raise ValueError(f"capabilities_ttl must be >= 0, got {capabilities_ttl!r}")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._ttl = capabilities_ttl
        self._reconnect = reconnect or ReconnectPolicy()
        self._transport = transport
        self._clock = clock
        self._http: httpx.AsyncClient | None = None
        self._state = _State.UNOPENED
        self._caps: Capabilities | None = None
        self._caps_at = 0.0
        self._caps_lock: asyncio.Lock | None = None
        self._streams: set[EventStream] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._state is _State.CLOSED:
            raise RuntimeError("this GatewayClient is closed; create a new one")
        if self._http is None:
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            self._http = httpx.AsyncClient(
                base_url=self.base_url, timeout=self._timeout, headers=headers,
                transport=self._transport,
            )
            self._state = _State.OPENED
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client and every open event stream (idempotent)."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        for stream in list(self._streams):
            await stream.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> GatewayClient:
        self._client()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # -- HTTP --------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, body: Any = None,
                    params: Mapping[str, str] | None = None,
                    headers: Mapping[str, str] | None = None,
                    accept_statuses: Sequence[int] = (),
                    content: bytes | None = None) -> tuple[int, dict[str, Any]]:
        """Send one request; returns (status, JSON object) (see :meth:`_exchange`)."""
        status, payload, _ = await self._exchange(method, path, body=body, params=params,
                                                  headers=headers,
                                                  accept_statuses=accept_statuses,
                                                  content=content)
        return status, payload

    async def _exchange(self, method: str, path: str, *, body: Any = None,
                        params: Mapping[str, str] | None = None,
                        headers: Mapping[str, str] | None = None,
                        accept_statuses: Sequence[int] = (),
                        content: bytes | None = None
                        ) -> tuple[int, dict[str, Any], httpx.Headers]:
        """Send one request (``body`` as JSON, or raw ``content``); returns (status, JSON
        object, response headers).

        Raises:
            GatewayUnavailable: a transport error (connect, timeout, protocol).
            GatewayHTTPError: an error status not in ``accept_statuses``.
            GatewayError: a success (or accepted) answer that is not a JSON object.
        """
        url = f"{self.base_url}{path}"
        response = await self._send(method, path, body=body, params=params, headers=headers,
                                    content=content)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_error and response.status_code not in accept_statuses:
            _raise_http_error(response, payload)
        if not isinstance(payload, dict):
            raise GatewayError(
                f"{method} {url} answered HTTP {response.status_code} without a JSON object"
            )
        return response.status_code, payload, response.headers

    async def _send(self, method: str, path: str, *, body: Any = None,
                    params: Mapping[str, str] | None = None,
                    headers: Mapping[str, str] | None = None,
                    content: bytes | None = None) -> httpx.Response:
        client = self._client()
        try:
            if content is None and body is not None:
                # orjson for large books (``_body``): NaN/Infinity still refused, not nulled
                content = encode_body(body)
                headers = {"content-type": "application/json", **(headers or {})}
            response = await client.request(method, path, content=content, params=params,
                                            headers=headers)
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"{self.base_url}{path}",
                                     _describe_transport_error(exc)) from exc
        logger.debug("%s %s%s -> %s", method, self.base_url, path, response.status_code)
        return response

    async def _post(self, path: str, *, body: Any, params: Mapping[str, str] | None = None,
                    headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        _, payload = await self._call("POST", path, body=body, params=params, headers=headers)
        return payload

    async def health(self) -> GatewayHealthView:
        """``GET /health``: status, components and strictly parsed capabilities.

        A degraded gateway may answer 503 with a health document; that document is returned.

        Raises:
            GatewayUnavailable: the gateway cannot be reached.
            GatewayHTTPError: an error status without a health document.
            CapabilityError: a capability has an invalid value (the error names the key).
        """
        status, document = await self._call("GET", "/health", accept_statuses=(503,))
        if status == 503 and "status" not in document and "capabilities" not in document:
            detail = document.get("detail", document)
            raise GatewayHTTPError(503, error_code(503, detail), detail)
        return parse_health(document)

    async def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """The gateway's capabilities, cached for ``capabilities_ttl`` seconds.

        An unreachable gateway (or one whose ``/health`` answers an error) gives
        :meth:`Capabilities.unreachable` — every feature off, with the reason — and that answer
        is cached like any other, so a flapping gateway is not hammered.

        Args:
            refresh: ask the gateway now even when the cached answer is fresh.

        Raises:
            CapabilityError: the health document carries an invalid value (never cached).
        """
        if not refresh and self._caps is not None and self._clock() - self._caps_at < self._ttl:
            return self._caps
        if self._caps_lock is None:
            self._caps_lock = asyncio.Lock()
        async with self._caps_lock:
            if not refresh and self._caps is not None and self._clock() - self._caps_at < self._ttl:
                return self._caps
            try:
                caps = (await self.health()).capabilities
            except GatewayUnavailable as exc:
                logger.warning("gateway %s unreachable: features off (%s)", self.base_url,
                               exc.reason, extra={"gateway": self.base_url})
                caps = Capabilities.unreachable(exc.reason)
            except GatewayHTTPError as exc:
                logger.warning("gateway %s health failed: features off (%s)", self.base_url, exc,
                               extra={"gateway": self.base_url})
                caps = Capabilities.unreachable(f"health answered HTTP {exc.status_code}: "
                                                f"{exc.message}")
            self._caps = caps
            self._caps_at = self._clock()
            return caps

    async def plan(self, request: RequestLike, *, schema_version: int | None = None,
                   positions: Any = None) -> dict[str, Any]:
        """``POST /rebalancing/plan``; returns the plan document as served.

        Args:
            request: the request (model or mapping).
            schema_version: overrides the request's ``schema_version`` when given.
            positions: a pyarrow Table or a pandas/polars DataFrame replacing
                ``request.positions``; sent as Arrow IPC when pyarrow is installed
                (docs/arrow.md), else a pandas DataFrame is sent as JSON rows.

        Raises:
            GatewayHTTPError: 4xx/5xx (e.g. 501 ``E_REBALANCE_MODE_UNSUPPORTED``).
            GatewayUnavailable: the gateway cannot be reached.
        """
        body = request_body(request)
        if schema_version is not None:
            body["schema_version"] = schema_version
        if positions is None:
            return await self._post("/rebalancing/plan", body=body)
        # --- Arrow IPC (h/arrow) ---
        if not arrow_available():
            body["positions"] = positions_records(positions)
            return await self._post("/rebalancing/plan", body=body)
        try:
            _, payload = await self._call(
                "POST", "/rebalancing/plan", content=arrow_plan_body(body, positions),
                headers={"content-type": ARROW_STREAM_MEDIA_TYPE})
        except GatewayHTTPError as exc:
            if exc.status_code != 415:
                raise
            # A gateway that does not take Arrow: the same positions as JSON rows.
            logger.info("%s refused Arrow IPC (415); sending the positions as JSON",
                        self.base_url)
            body["positions"] = positions_table(positions).to_pylist()
            return await self._post("/rebalancing/plan", body=body)
        return payload

    async def plan_table(self, request: RequestLike, *, positions: Any = None,
                         schema_version: int | None = None) -> tuple[Any, dict[str, Any]]:
        """``POST /rebalancing/plan`` answered in Arrow: (deltas table, envelope).

        The table has ``world_id`` (null on global rows), ``venue``, ``symbol``,
        ``delta_qty``; the envelope is the JSON document without its delta lists
        (docs/arrow.md). ``positions`` (a table or DataFrame) replaces
        ``request.positions``; needs pyarrow.

        Raises:
            UnsupportedMediaType: pyarrow is not installed.
            GatewayHTTPError, GatewayUnavailable: as :meth:`plan`.
            GatewayError: the answer is not an Arrow plan.
        """
        body = request_body(request)
        if schema_version is not None:
            body["schema_version"] = schema_version
        rows = positions if positions is not None else _rows_table(body.get("positions", []))
        response = await self._send(
            "POST", "/rebalancing/plan", content=arrow_plan_body(body, rows),
            headers={"content-type": ARROW_STREAM_MEDIA_TYPE,
                     "accept": ARROW_STREAM_MEDIA_TYPE})
        if response.is_error:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            _raise_http_error(response, payload)
        try:
            return decode_arrow_plan(response.content)
        except ValueError as exc:
            raise GatewayError(f"POST {self.base_url}/rebalancing/plan: {exc}") from exc

    async def apply(self, request: RequestLike, *, run_id: str | None = None,
                    if_match: str | None = None) -> dict[str, Any]:
        """``POST /rebalancing/apply``; returns the applied plan with ``run_id`` and ``etag``.

        Args:
            request: the request (model or mapping).
            run_id: the idempotency key (overrides the request's ``run_id``).
            if_match: sent as the ``If-Match`` header (optimistic concurrency).

        Raises:
            GatewayHTTPError: 4xx/5xx (409 ``E_RUN_ID_CONFLICT``, 412 ``E_ETAG_MISMATCH``...).
            GatewayUnavailable: the gateway cannot be reached.
        """
        body, headers = apply_call(request, run_id=run_id, if_match=if_match)
        return await self._post("/rebalancing/apply", body=body, headers=headers)

    async def execute(self, request: RequestLike, *, per_strategy: bool = False,
                      shared_account: bool = False, submit: bool = False,
                      allow_live: bool = False) -> dict[str, Any]:
        """``POST /rebalancing/execute``; returns the orders (and whether they were submitted).

        Args:
            request: the request (model or mapping).
            per_strategy: also split orders per strategy.
            shared_account: net orders across worlds into one account.
            submit: write the orders to the commit log (a dry run otherwise).
            allow_live: send ``X-Allow-Live: true`` (needed with ``submit`` while the gateway's
                live guard is on).

        Raises:
            GatewayHTTPError: 4xx/5xx (403 ``E_PERMISSION_DENIED``, 422 policy errors...).
            GatewayUnavailable: the gateway cannot be reached.
        """
        params = {
            "per_strategy": _flag(per_strategy),
            "shared_account": _flag(shared_account),
            "submit": _flag(submit),
        }
        headers = {"X-Allow-Live": "true"} if allow_live else None
        return await self._post("/rebalancing/execute", body=request_body(request),
                                params=params, headers=headers)

    # -- events ------------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        """``ws(s)://…/ws`` of this gateway."""
        scheme, rest = self.base_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"

    def events(self, *, world_ids: Sequence[str] | None = None, since_seq: int | None = None,
               reconnect: ReconnectPolicy | None = None,
               epoch: str | None = None) -> EventStream:
        """Rebalancing events from the gateway's WebSocket (SPEC 10), as an async iterator.

        The stream connects on first use (or ``await stream.subscribed()``), reconnects with
        bounded backoff when the connection drops and resumes from the last ``seq`` it yielded;
        ``stream.subscriptions`` records whether each (re)subscription was ``recovered``.

        Args:
            world_ids: only these worlds' events (all when ``None``).
            since_seq: resume after this relay sequence number.
            epoch: the epoch ``since_seq`` came with (``stream.epoch``); without it the
                gateway cannot place ``since_seq`` and answers ``recovered`` false.
            reconnect: backoff policy (the client's by default).
        """
        if self._state is _State.CLOSED:
            raise RuntimeError("this GatewayClient is closed; create a new one")
        if since_seq is not None and (isinstance(since_seq, bool) or since_seq < 0):
            raise ValueError(f"since_seq must be an integer >= 0, got {since_seq!r}")
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        stream = EventStream(
            self.ws_url, headers=headers, world_ids=list(world_ids) if world_ids else None,
            since_seq=since_seq, policy=reconnect or self._reconnect,
            open_timeout=self._timeout.connect if self._timeout.connect is not None else 5.0,
            on_close=self._streams.discard, epoch=epoch,
        )
        self._streams.add(stream)
        return stream

    def __repr__(self) -> str:
        return f"GatewayClient({self.base_url!r}, state={self._state.name.lower()})"


def _flag(value: bool) -> str:
    return "true" if value else "false"


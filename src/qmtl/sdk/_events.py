"""Rebalancing events from the gateway's WebSocket, with reconnect and resume (SPEC 10).

Protocol: the client sends ``{"type": "subscribe", "topics": ["rebalancing"], "world_ids"?,
"since_seq"?, "epoch"?}``; the gateway answers ``{"type": "subscribed", "recovered": bool,
"epoch": str}`` and then one CloudEvent per event, each with a top-level ``seq`` (the gateway's
relay sequence, strictly increasing within one epoch). On a dropped connection
:class:`EventStream` reconnects with bounded exponential backoff and subscribes again with
``since_seq`` = the last ``seq`` it yielded and the ``epoch`` that ``seq`` belongs to, so
nothing is yielded twice; the gateway's ``recovered`` answer says honestly whether every
missed event could be replayed, and the stream records it for each (re)subscription. An
answer naming another epoch than the one sent is a gap whatever ``recovered`` says: the
numbering restarted (e.g. ``qmtl up`` restarted with its in-process bus).

Messages that break the contract (not JSON, a bad ``seq``, event data that fails
validation) are logged, counted in :attr:`EventStream.skipped` and not yielded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING
from qmtl.contracts.errors import EventDecodeError

from ._errors import EventStreamError, GatewayHTTPError, GatewayUnavailable, error_code
from ._event_model import RebalancingEvent, parse_relay_message

__all__ = ["EventStream", "RebalancingEvent", "ReconnectPolicy", "SubscriptionInfo"]

logger = logging.getLogger(__name__)

_POLICY_VIOLATION = 1008
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""One event carries a whole world plan: allow large ones (websockets' default is 1 MiB)."""
RECENT_ID_CAPACITY = 10_000
"""Event ids remembered for deduplication (CloudEvent ids are unique per event)."""


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Bounded exponential backoff between (re)connection attempts.

    The k-th consecutive failure waits ``min(max_delay, initial_delay · multiplier^(k−1))``
    seconds. After ``max_attempts`` consecutive failures the stream raises
    :class:`GatewayUnavailable` (``None`` retries forever). A successful subscription resets
    the count.

    Attributes:
        initial_delay: seconds before the first retry.
        max_delay: the cap on any single wait, seconds.
        multiplier: growth factor between waits.
        max_attempts: consecutive failures tolerated, or ``None``.
        handshake_timeout: seconds to wait for the ``subscribed`` answer.
    """

    initial_delay: float = 0.1
    max_delay: float = 5.0
    multiplier: float = 2.0
    max_attempts: int | None = 30
    handshake_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("ReconnectPolicy needs delays >= 0 and multiplier >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1 or None, got {self.max_attempts!r}")

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (``failures`` ≥ 1)."""
        return float(min(self.max_delay, self.initial_delay * self.multiplier ** (failures - 1)))


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """One (re)subscription of an :class:`EventStream`.

    Attributes:
        since_seq: the ``since_seq`` sent (``None`` = only new events).
        recovered: every event after ``since_seq`` will be replayed (the gateway said so and
            its epoch is the one ``since_seq`` came from).
        epoch: the gateway's epoch (``None`` from gateways older than epochs).
        resubscription: ``False`` for the first subscription of the stream.
        failed_attempts: connection attempts that failed before this one succeeded.
    """

    since_seq: int | None
    recovered: bool
    resubscription: bool
    failed_attempts: int
    epoch: str | None = None


class _Skip(Exception):
    """A message that is not yielded (logged and counted by the caller)."""


def _close_code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd is not None else None


def _status_error(exc: InvalidStatus) -> GatewayHTTPError:
    status = exc.response.status_code
    try:
        payload = json.loads(exc.response.body or b"")
        detail = payload.get("detail", payload) if isinstance(payload, dict) else payload
    except ValueError:
        detail = (exc.response.body or b"").decode(errors="replace") or f"HTTP {status}"
    return GatewayHTTPError(status, error_code(status, detail), detail)


class EventStream(AsyncIterator[RebalancingEvent]):
    """An endless async iterator over rebalancing events; ends only on :meth:`aclose`.

    Attributes:
        last_seq: the ``seq`` of the last event yielded (or the ``since_seq`` given).
        epoch: the epoch ``last_seq`` belongs to (or the ``epoch`` given); persist both to
            resume in a later process.
        subscriptions: every (re)subscription, in order, with its ``recovered`` answer.
        skipped: messages received but not yielded (invalid, duplicate or unknown).
    """

    def __init__(self, url: str, *, headers: dict[str, str], world_ids: list[str] | None,
                 since_seq: int | None, policy: ReconnectPolicy, open_timeout: float,
                 on_close: Callable[[EventStream], None] | None = None,
                 epoch: str | None = None) -> None:
        self.url = url
        self.last_seq = since_seq
        self.epoch = epoch
        # The epoch of the open connection; ``epoch`` follows it once an event is yielded.
        self._conn_epoch: str | None = None
        self.subscriptions: list[SubscriptionInfo] = []
        self.skipped = 0
        self._headers = headers
        self._world_ids = world_ids
        self._policy = policy
        self._open_timeout = open_timeout
        self._on_close = on_close
        self._conn: ClientConnection | None = None
        self._closed = asyncio.Event()
        # Events at or below ``last_seq`` are duplicates — unless the gateway said it could
        # not recover (its numbering may have restarted): then only event ids tell.
        self._seq_guard = True
        self._recent_ids: OrderedDict[str, None] = OrderedDict()
        # Connections that dropped before delivering anything: back off before the next one,
        # so a gateway that accepts and drops at once is not hammered.
        self._empty_drops = 0
        self._delivered_on_connection = False

    @property
    def recovered(self) -> bool:
        """Whether every subscription that resumed from a ``seq`` was fully recovered."""
        return all(s.recovered for s in self.subscriptions if s.since_seq is not None)

    @property
    def reconnects(self) -> int:
        """How many times the stream subscribed again after a dropped connection."""
        return max(0, len(self.subscriptions) - 1)

    async def subscribed(self) -> SubscriptionInfo:
        """Connect and subscribe now (if not already); returns the current subscription.

        Use it before triggering an action whose event you must not miss.

        Raises:
            GatewayUnavailable: ``max_attempts`` consecutive connection failures.
            GatewayHTTPError: the gateway refused the WebSocket (401/403/4xx).
            EventStreamError: the gateway refused the subscription.
        """
        if self._conn is None and not await self._connect():
            raise RuntimeError("this event stream is closed")
        return self.subscriptions[-1]

    async def _connect(self) -> bool:
        """Connect and subscribe, retrying per the policy; ``False`` once the stream closed."""
        failures = 0
        while not self._closed.is_set():
            try:
                conn = await self._open(failures)
                if self._closed.is_set():
                    await conn.close()
                    return False
                self._conn = conn
                self._delivered_on_connection = False
                return True
            except InvalidStatus as exc:
                if exc.response.status_code < 500:
                    raise _status_error(exc) from exc
                reason = f"WebSocket handshake answered HTTP {exc.response.status_code}"
            except ConnectionClosed as exc:
                if _close_code(exc) == _POLICY_VIOLATION:
                    raise GatewayHTTPError(401, "E_UNAUTHORIZED", {
                        "code": "E_UNAUTHORIZED",
                        "message": f"the gateway closed the WebSocket (1008): "
                                   f"{exc.rcvd.reason if exc.rcvd else ''}".strip()}) from exc
                reason = f"connection closed during subscription ({exc})"
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            failures += 1
            if self._policy.max_attempts is not None and failures >= self._policy.max_attempts:
                raise GatewayUnavailable(self.url, f"{reason} (after {failures} attempts)")
            delay = self._policy.delay(failures)
            logger.warning("event stream %s: %s; retrying in %.2fs", self.url, reason, delay,
                           extra={"gateway": self.url, "since_seq": self.last_seq})
            await self._pause(delay)
        return False

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds, or less when the stream is closed meanwhile."""
        waiter = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({waiter}, timeout=delay)
        finally:
            waiter.cancel()

    async def _open(self, failures: int) -> ClientConnection:
        conn = await connect(self.url, additional_headers=self._headers,
                             open_timeout=self._open_timeout, close_timeout=2.0,
                             max_size=MAX_MESSAGE_BYTES)
        try:
            message: dict[str, Any] = {"type": "subscribe",
                                       "topics": [CONTROLBUS_TOPIC_REBALANCING]}
            if self._world_ids:
                message["world_ids"] = self._world_ids
            if self.last_seq is not None:
                message["since_seq"] = self.last_seq
                if self.epoch is not None:
                    message["epoch"] = self.epoch
            await conn.send(json.dumps(message))
            reply = await asyncio.wait_for(conn.recv(), self._policy.handshake_timeout)
            answer = _loads(reply)
            if not isinstance(answer, dict) or answer.get("type") != "subscribed":
                if isinstance(answer, dict) and answer.get("type") == "error":
                    code = str(answer.get("code") or "E_SUBSCRIBE")
                    raise EventStreamError(code, str(answer.get("message") or answer))
                raise EventStreamError("E_PROTOCOL", f"expected 'subscribed', got {reply!r:.200}")
        except BaseException:
            await conn.close()
            raise
        epoch = answer.get("epoch") if isinstance(answer.get("epoch"), str) else None
        # Another numbering than the one our seq came from: nothing can be recovered.
        same_epoch = self.epoch is None or epoch is None or epoch == self.epoch
        info = SubscriptionInfo(
            since_seq=self.last_seq, recovered=answer.get("recovered") is True and same_epoch,
            resubscription=bool(self.subscriptions), failed_attempts=failures, epoch=epoch,
        )
        self._conn_epoch = epoch
        self.subscriptions.append(info)
        if info.since_seq is not None and not info.recovered:
            self._seq_guard = False
        log = logger.info if info.recovered or info.since_seq is None else logger.warning
        log("event stream %s subscribed (since_seq=%s, recovered=%s, epoch=%s)", self.url,
            info.since_seq, info.recovered, epoch,
            extra={"gateway": self.url, "since_seq": info.since_seq})
        return conn

    async def __anext__(self) -> RebalancingEvent:
        while True:
            if self._closed.is_set():
                raise StopAsyncIteration
            if self._conn is None and not await self._connect():
                raise StopAsyncIteration
            assert self._conn is not None
            try:
                raw = await self._conn.recv()
            except ConnectionClosed as exc:
                self._conn = None
                if self._closed.is_set():
                    raise StopAsyncIteration from None
                if _close_code(exc) == _POLICY_VIOLATION:
                    raise GatewayHTTPError(401, "E_UNAUTHORIZED", {
                        "code": "E_UNAUTHORIZED",
                        "message": "the gateway closed the WebSocket (1008)"}) from exc
                self._empty_drops = 0 if self._delivered_on_connection else self._empty_drops + 1
                delay = self._policy.delay(self._empty_drops) if self._empty_drops else 0.0
                logger.warning("event stream %s dropped (%s); resuming after seq %s in %.2fs",
                               self.url, exc, self.last_seq, delay, extra={"gateway": self.url})
                if delay:
                    await self._pause(delay)
                continue
            try:
                return self._accept(raw)
            except _Skip:
                self.skipped += 1

    def _accept(self, raw: str | bytes) -> RebalancingEvent:
        message = _loads(raw)
        if not isinstance(message, dict):
            logger.warning("event stream %s: ignoring a message that is not a JSON object: %.200r",
                           self.url, raw)
            raise _Skip
        if "specversion" not in message:
            level = logging.WARNING if message.get("type") == "error" else logging.DEBUG
            logger.log(level, "event stream %s: ignoring message %.200r", self.url, message)
            raise _Skip
        try:
            event = parse_relay_message(message)
        except EventDecodeError as exc:
            logger.warning("event stream %s: skipping invalid event: %s", self.url, exc.message,
                           extra={"gateway": self.url, "event_id": message.get("id")})
            raise _Skip from exc
        if self._seq_guard and self.last_seq is not None and event.seq <= self.last_seq:
            logger.debug("event stream %s: duplicate seq %s skipped", self.url, event.seq)
            raise _Skip
        if event.id in self._recent_ids:
            logger.debug("event stream %s: duplicate event id %s skipped", self.url, event.id)
            raise _Skip
        if self._world_ids and event.world_id not in self._world_ids:
            raise _Skip
        self._recent_ids[event.id] = None
        if len(self._recent_ids) > RECENT_ID_CAPACITY:
            self._recent_ids.popitem(last=False)
        self._seq_guard = True
        self._delivered_on_connection = True
        self.last_seq = event.seq
        self.epoch = self._conn_epoch
        return event

    async def aclose(self) -> None:
        """Stop the stream and close its connection (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        if self._on_close is not None:
            self._on_close(self)

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


def _loads(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None

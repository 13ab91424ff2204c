"""One WebSocket connection on ``/ws`` (SPEC 10).

Protocol::

    client -> {"type": "subscribe", "topics": ["rebalancing"], "world_ids": [...]?,
               "since_seq": n?, "epoch": "..."?}
    server -> {"type": "subscribed", "topics": [...], "recovered": true|false, "epoch": "..."}
              then the replay (seq > since_seq), then live events
    client -> {"type": "unsubscribe"}  -> {"type": "unsubscribed"}
    client -> {"type": "ping"}         -> {"type": "pong"}
    anything else -> {"type": "error", "code": "E_WS_…", "message": …} (connection stays open)

Close codes: 1008 bad or missing token (when auth is configured), 1013 the client fell
behind or asked without reading (its outbox overflowed; reconnect with ``since_seq``), 1012
gateway shutdown ("service restart": reconnect). uvicorn itself closes every WebSocket with
1012 when it shuts down, before the app's lifespan ends; the hub's own shutdown close uses the
same code so that clients see one answer whichever comes first.

Each connection runs a receiver and a sender task; every outgoing message goes through the
subscriber's outbox, so control messages, replay and live events keep their order and a
slow socket only ever blocks its own sender.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING, WorldId
from qmtl.web.auth import token_is_valid, websocket_token

from .hub import EventHub, Subscriber, SubscriberClosed
from .metrics import GatewayMetrics

__all__ = ["CLOSE_CODES", "SUPPORTED_TOPICS", "SubscribeMessage", "serve_websocket"]

logger = logging.getLogger(__name__)

SUPPORTED_TOPICS = frozenset({CONTROLBUS_TOPIC_REBALANCING})
CLOSE_CODES = {"unauthorized": 1008, "overflow": 1013, "shutdown": 1012}
SEND_BATCH = 16
MAX_CLOSE_REASON = 120
"""A close frame's reason must fit in 123 bytes (RFC 6455); ours are ASCII."""
CLOSE_TIMEOUT = 10.0
"""Seconds to wait for a close frame to go out: a client that fell behind gets its 1013 once
it reads again (the frame queues behind what it has not read yet)."""


class SubscribeMessage(BaseModel):
    """``{"type": "subscribe", "topics": [...], "world_ids": [...]?, "since_seq": n?,
    "epoch": "..."?}`` — ``epoch`` is the one the client's ``since_seq`` came with."""

    model_config = ConfigDict(extra="ignore")

    type: str
    topics: list[str] = Field(min_length=1)
    world_ids: list[WorldId] | None = Field(default=None, min_length=1)
    since_seq: int | None = Field(default=None, strict=True, ge=0)
    epoch: str | None = Field(default=None, strict=True, min_length=1, max_length=128)


def _error(code: str, message: str, **extra: Any) -> str:
    return json.dumps({"type": "error", "code": code, "message": message, **extra})


def _subscribed(topics: Sequence[str]) -> Any:
    def render(recovered: bool, epoch: str) -> str:
        return json.dumps({"type": "subscribed", "topics": list(topics), "recovered": recovered,
                           "epoch": epoch})
    return render


def _handle_text(text: str, *, hub: EventHub, subscriber: Subscriber) -> None:
    """Act on one client message; every answer goes to the subscriber's outbox."""
    try:
        message = json.loads(text)
    except ValueError:
        subscriber.push_control(_error("E_WS_INVALID_JSON", "messages must be JSON objects"))
        return
    except RecursionError:
        # The parser recurses per nesting level; a deep message must not end the connection.
        subscriber.push_control(_error("E_WS_INVALID_JSON", "message nested too deeply"))
        return
    if not isinstance(message, dict):
        subscriber.push_control(_error("E_WS_INVALID_MESSAGE", "messages must be JSON objects"))
        return
    kind = message.get("type")
    if kind == "subscribe":
        try:
            request = SubscribeMessage.model_validate(message)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(root)"
            subscriber.push_control(_error("E_WS_INVALID_SUBSCRIBE", f"{field}: {err['msg']}",
                                           field=field))
            return
        unknown = sorted(set(request.topics) - SUPPORTED_TOPICS)
        if unknown:
            subscriber.push_control(_error(
                "E_WS_UNKNOWN_TOPIC",
                f"unknown topic(s) {unknown}; supported: {sorted(SUPPORTED_TOPICS)}",
                topics=unknown))
            return
        topics = sorted(set(request.topics))
        hub.subscribe(subscriber, world_ids=request.world_ids, since_seq=request.since_seq,
                      epoch=request.epoch, subscribed=_subscribed(topics))
    elif kind == "unsubscribe":
        hub.unsubscribe(subscriber)
        subscriber.push_control(json.dumps({"type": "unsubscribed"}))
    elif kind == "ping":
        subscriber.push_control(json.dumps({"type": "pong"}))
    else:
        # Named only when it is a short string: the answer never echoes arbitrary input.
        shown = repr(kind) if isinstance(kind, str) and len(kind) <= 40 else "given"
        subscriber.push_control(_error(
            "E_WS_UNKNOWN_MESSAGE",
            f"unknown message type ({shown}); expected subscribe, unsubscribe or ping"))


async def _receive(websocket: WebSocket, *, hub: EventHub, subscriber: Subscriber) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            text = message["bytes"].decode("utf-8", "replace")
        if text is not None:
            _handle_text(text, hub=hub, subscriber=subscriber)
        if subscriber.closed:
            return  # overflowed: nothing more is read from a client that does not read
        # Let the sender drain between requests, so a client that pipelines requests and
        # reads the answers is not taken for one that does not read.
        await asyncio.sleep(0)


async def _send(websocket: WebSocket, subscriber: Subscriber, metrics: GatewayMetrics) -> None:
    while True:
        try:
            # Small batches: fewer wake-ups per burst, while at most SEND_BATCH messages
            # sit outside the bounded outbox.
            batch = await subscriber.get_batch(SEND_BATCH)
        except SubscriberClosed:
            return
        for text in batch:
            await websocket.send_text(text)
        metrics.ws_events_sent.inc(len(batch))


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    try:
        await asyncio.wait_for(websocket.close(code=code, reason=reason), CLOSE_TIMEOUT)
    except (TimeoutError, RuntimeError, OSError, WebSocketDisconnect) as exc:
        # The client is gone or not reading; the server drops the connection anyway.
        logger.info("could not send close %d to a websocket client: %r", code, exc)


async def serve_websocket(websocket: WebSocket, *, hub: EventHub, tokens: Sequence[str],
                          metrics: GatewayMetrics) -> None:
    """Run one connection until the client leaves, falls behind, or the gateway stops."""
    await websocket.accept()
    if tokens and not token_is_valid(websocket_token(websocket), tokens):
        metrics.add_ws_disconnect("unauthorized")
        await _close(websocket, CLOSE_CODES["unauthorized"], "missing or invalid bearer token")
        return
    subscriber = hub.new_subscriber()
    metrics.ws_clients.inc()
    receiver = asyncio.create_task(_receive(websocket, hub=hub, subscriber=subscriber))
    sender = asyncio.create_task(_send(websocket, subscriber, metrics))
    closed = asyncio.create_task(subscriber.closed_signal.wait())
    try:
        done, _ = await asyncio.wait({receiver, sender, closed},
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (receiver, sender, closed):
            task.cancel()
        await asyncio.wait({receiver, sender, closed})
        hub.unsubscribe(subscriber)
        metrics.ws_clients.dec()
    reason, detail = subscriber.close_reason, subscriber.close_detail
    subscriber.close("client")
    failed = [t for t in (receiver, sender) if t in done and not t.cancelled() and t.exception()]
    if failed:
        exc = failed[0].exception()
        if not isinstance(exc, WebSocketDisconnect | OSError):
            logger.error("websocket connection failed: %r", exc, exc_info=exc)
        metrics.add_ws_disconnect("error")
        return
    if reason in ("overflow", "shutdown"):
        metrics.add_ws_disconnect(reason)
        message = detail or ("fell behind; reconnect with since_seq" if reason == "overflow"
                             else "gateway shutting down")
        await _close(websocket, CLOSE_CODES[reason], message[:MAX_CLOSE_REASON])

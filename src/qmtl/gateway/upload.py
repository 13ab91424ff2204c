"""Large plan/apply bodies streamed to the WorldService while they arrive.

Buffering a 10 MB book before sending it on costs a whole second upload after the first
(SPEC 7: the gateway may add at most 15 % to the direct time). So once a body passes
:data:`STREAM_AFTER_BYTES`, the proxy opens the WorldService request and forwards every
chunk as it comes, **holding back the last one**: the WorldService cannot plan an
incomplete JSON document, so nothing is decided until the gateway has seen the whole body.
At the end the gateway reads the envelope (schema version, run id) exactly as for a
buffered body and either

* sends the held-back chunk — the caller's bytes were what it wanted to send, or they are
  a prefix of it (a missing ``schema_version`` is appended: ``outgoing.rewrite_object``);
* or abandons the upstream request (the WorldService sees a disconnect before the end of
  the body, so it never plans it) and sends the rewritten body in full, or answers 422
  when the envelope is invalid.

Streaming is only used towards a WorldService that lists its versions (ours) and when the
gateway sends its configured version of at least 2 — the configurations where the caller's
bytes go through unchanged or gain a ``schema_version``; anything else is buffered. A
streamed upload holds a connection to the WorldService for as long as its caller takes to
send, so at most :data:`MAX_STREAMED_UPLOADS` run at once (the rest are buffered): slow
uploaders cannot take every connection from the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from .bodies import read_envelope, refuse_arrow
from .outgoing import OutgoingRequest

__all__ = ["MAX_STREAMED_UPLOADS", "STREAM_AFTER_BYTES", "StreamSlots", "StreamedBody",
           "read_proxy_body", "send_streamed"]

R = TypeVar("R")

STREAM_AFTER_BYTES = 256 * 1024
"""A body larger than this is streamed to the WorldService; a smaller one is buffered."""

MAX_STREAMED_UPLOADS = 16
"""Streamed uploads at once per gateway (of httpx's 100 pooled connections)."""


class StreamSlots:
    """A count of the streamed uploads in flight, bounded by ``limit``."""

    def __init__(self, limit: int = MAX_STREAMED_UPLOADS) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self) -> bool:
        """Take a slot if one is free (the caller gives it back with :meth:`give_back`)."""
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use -= 1


@dataclass(slots=True)
class StreamedBody:
    """A JSON body whose first chunks have been read and whose rest is still arriving.

    Every chunk is copied into :attr:`buffer` as it passes, while the upload waits on the
    network anyway: joining the chunks once the last one is in would put a copy of the
    whole body (~40 ms at 1,000,000 positions) between the caller's last byte and the
    WorldService's, and hold the body twice in memory.
    """

    head: list[bytes]
    rest: AsyncIterator[bytes]
    buffer: bytearray = field(default_factory=bytearray)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every chunk once (head, then the rest), kept in :attr:`buffer`."""
        head, self.head = self.head, []
        for chunk in head:
            self.buffer += chunk
            yield chunk
        async for chunk in self.rest:
            if chunk:
                self.buffer += chunk
                yield chunk

    async def read(self) -> OutgoingRequest:
        """The whole body and its envelope (buffered, for a WorldService it is not
        streamed to).

        Raises:
            RequestValidationError: as :func:`~qmtl.gateway.bodies.read_envelope`.
        """
        async for _ in self.chunks():
            pass
        return await self.envelope()

    async def envelope(self) -> OutgoingRequest:
        """The request read from every chunk seen (``OutgoingRequest.raw`` is
        :attr:`buffer`, not copied).

        Raises:
            RequestValidationError: as :func:`~qmtl.gateway.bodies.read_envelope`.
        """
        return await read_envelope(self.buffer)


class _SendInFull(Exception):
    """Internal: the caller's bytes are not a prefix of what must be sent."""


async def send_streamed(
    body: StreamedBody,
    *,
    send: Callable[[bytes | bytearray | AsyncIterator[bytes]], Awaitable[R]],
    encode: Callable[[OutgoingRequest], bytes | bytearray],
) -> tuple[R, OutgoingRequest]:
    """Stream ``body`` through ``send`` and complete it with ``encode``'s bytes.

    Args:
        body: the body as it arrives.
        send: makes the upstream request with this content (bytes, or chunks to stream).
        encode: the bytes to send for the request, once its envelope is known.

    Returns:
        ``send``'s answer and the request (envelope read from the whole body).

    Raises:
        RequestValidationError: the envelope is invalid (the upstream request is abandoned
            before the end of its body, so the WorldService never plans it).
        Whatever ``send`` raises.
    """
    outcome: list[tuple[OutgoingRequest, bytes | bytearray]] = []

    async def content() -> AsyncIterator[bytes]:
        sent = 0
        held: bytes | None = None
        async for chunk in body.chunks():
            if held is not None:
                yield held
                sent += len(held)
            held = chunk
        request = await body.envelope()
        outgoing = encode(request)
        outcome.append((request, outgoing))
        if outgoing is request.raw:
            yield held or b""
        elif outgoing.startswith(memoryview(request.raw)[:sent]):
            yield bytes(outgoing[sent:])  # the tail only (a missing version appended)
        else:
            raise _SendInFull

    try:
        answer = await send(content())
    except _SendInFull:
        request, outgoing = outcome[0]
        return await send(outgoing), request
    return answer, outcome[0][0]


async def read_proxy_body(request: Request) -> OutgoingRequest | StreamedBody:
    """A small body read whole with its envelope, or a large one left streaming.

    Raises:
        UnsupportedMediaType: an Arrow body on a JSON-only route (415).
        RequestValidationError: a small body that is not a JSON object, or whose
            ``schema_version``/``run_id`` is invalid.
    """
    refuse_arrow(request)
    stream = request.stream()
    head: list[bytes] = []
    size = 0
    async for chunk in stream:
        head.append(chunk)
        size += len(chunk)
        if size > STREAM_AFTER_BYTES:
            return StreamedBody(head=head, rest=stream)
    return await read_envelope(b"".join(head))


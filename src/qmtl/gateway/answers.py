"""Plan/apply answers of our WorldService relayed while they arrive.

A buffered relay reads the whole answer (4 MB for 100,000 positions) before sending its
first byte on, so the caller waits for the transfer twice. Our WorldService announces the
version it served in a header (:data:`~qmtl.contracts.SERVED_VERSION_HEADER`); such an
answer is relayed chunk by chunk, **holding back the last chunk** until the whole document
has passed the same check as a buffered answer (``served.relayable_as_is``: a well-versioned
document, exactly what re-rendering would give). A caller can only read a complete document
that passed it: if the check fails — a WorldService bug — the gateway logs it and closes
the connection before the last chunk, so the caller gets a transport error, never a
mis-versioned plan.

Answers without the header (a legacy or foreign WorldService), error answers and answers
whose announced version is not one the gateway could have been served are buffered and
checked — or re-rendered, or refused with 502 — before any byte is relayed, as before.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx

from qmtl.contracts import SERVED_VERSION_HEADER

from .served import WorldServiceBadResponse, relayable_as_is

__all__ = ["announced_version", "relay_chunks"]

logger = logging.getLogger(__name__)


def announced_version(response: httpx.Response, *, sent: int) -> int | None:
    """The version a 2xx JSON answer announces when it may be streamed, else ``None``."""
    if not 200 <= response.status_code < 300 or "content-encoding" in response.headers:
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    value = response.headers.get(SERVED_VERSION_HEADER, "")
    version = int(value) if value.isdigit() and len(value) < 4 else 0
    return version if 1 <= version <= sent else None


async def relay_chunks(response: httpx.Response, *, apply: bool, announced: int,
                       on_served: Callable[[int], None]) -> AsyncIterator[bytes]:
    """The answer's bytes as they arrive, the last chunk only once the document checks.

    Raises:
        WorldServiceBadResponse: the document does not check (the caller's connection is
            closed before the last chunk).
    """
    # Copied as it passes (the relay waits on the network anyway), not joined at the end.
    document = bytearray()
    held: bytes | None = None
    try:
        async for chunk in response.aiter_raw():
            if not chunk:
                continue
            document += chunk
            if held is not None:
                yield held
            held = chunk
        served = relayable_as_is(document, apply=apply)
        if served != announced:
            logger.error("the WorldService announced schema_version %d but its answer is not "
                         "a document to relay as is (%s); closing the caller's connection "
                         "before its end", announced,
                         "malformed" if served is None else f"served {served}")
            raise WorldServiceBadResponse(
                "the WorldService's answer does not match the version it announced",
                field="schema_version")
        on_served(served)
        if held is not None:
            yield held
    finally:
        await response.aclose()

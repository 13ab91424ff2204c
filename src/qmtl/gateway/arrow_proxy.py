"""Arrow IPC through the gateway's plan/apply proxy (docs/arrow.md).

The gateway reads only the version envelope — the ``qmtl.request`` JSON in the stream's
schema metadata, with the same :class:`~qmtl.gateway.outgoing.RequestEnvelope` as a JSON
body — negotiates the version exactly as for JSON, and forwards the stream: the caller's
bytes when the envelope already says what it will send, otherwise the same record batches
(zero-copy) behind a schema whose metadata carries the rewritten envelope. The positions are
never decoded here; the WorldService validates them.

Answers: an Arrow answer is relayed after its envelope is checked — ``schema_version`` an
integer between 1 and the version sent, and no v2-only key in a v1 envelope — so a
mis-versioned document is never relayed (502 ``E_WORLDSERVICE_BAD_RESPONSE``); a JSON answer
goes through the usual check. Errors come back with their status and detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from qmtl.contracts import (
    ARROW_REQUEST_KEY,
    ARROW_RESPONSE_KEY,
    ARROW_STREAM_MEDIA_TYPE,
    V2_ONLY_RESPONSE_KEYS,
    is_arrow_media_type,
    require_pyarrow,
)
from qmtl.web.bodies import parse_json, read_arrow_stream

from .negotiation import choose_version, error_detail, preferred_version
from .outgoing import OutgoingRequest, RequestEnvelope
from .served import WorldServiceBadResponse, parse_served_response
from .upload import StreamedBody, read_proxy_body
from .upstream import upstream_error
from .worldservice_client import PASSTHROUGH_HEADERS, WorldServiceClient

__all__ = ["ArrowBody", "PlanProxyBody", "parse_plan_body", "proxy_arrow"]


@dataclass(frozen=True, slots=True)
class ArrowBody:
    """An Arrow request as the proxy holds it: the caller's bytes, the table over them
    (zero-copy), the envelope of its metadata, and whether the caller wants Arrow back."""

    raw: bytes
    table: Any
    outgoing: OutgoingRequest
    accept: str

    def encode(self, version: int) -> bytes:
        """The stream to send at ``version`` (the caller's bytes when nothing changes)."""
        metadata = self.outgoing.encode(version)
        if metadata is self.outgoing.raw:
            return self.raw
        pa = require_pyarrow()
        schema_metadata = dict(self.table.schema.metadata or {})
        schema_metadata[ARROW_REQUEST_KEY] = metadata
        table = self.table.replace_schema_metadata(schema_metadata)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue())


async def _arrow_body(request: Request) -> ArrowBody:
    raw = await request.body()
    table, metadata = read_arrow_stream(raw)
    envelope = await parse_json(metadata, RequestEnvelope.model_validate_json)
    return ArrowBody(
        raw=raw,
        table=table,
        outgoing=OutgoingRequest.from_envelope(metadata, envelope),
        accept=request.headers.get("accept") or "application/json",
    )


async def parse_plan_body(request: Request) -> OutgoingRequest | StreamedBody | ArrowBody:
    """A JSON body (``upload.read_proxy_body``: its envelope, or the body still streaming),
    or an Arrow body (415 without pyarrow)."""
    if is_arrow_media_type(request.headers.get("content-type")):
        return await _arrow_body(request)
    return await read_proxy_body(request)


PlanProxyBody = Annotated[OutgoingRequest | StreamedBody | ArrowBody, Depends(parse_plan_body)]


def _check_arrow_answer(content: bytes, *, sent: int) -> None:
    pa = require_pyarrow()
    try:
        schema = pa.ipc.open_stream(content).schema
        envelope = json.loads((schema.metadata or {})[ARROW_RESPONSE_KEY])
    except (pa.ArrowException, ValueError, KeyError, OSError) as exc:
        raise WorldServiceBadResponse(
            f"the WorldService's Arrow answer is unreadable: {exc}", field="qmtl.response"
        ) from exc
    served = envelope.get("schema_version") if isinstance(envelope, dict) else None
    if not isinstance(served, int) or isinstance(served, bool) or not 1 <= served <= sent:
        raise WorldServiceBadResponse(
            f"the WorldService served schema_version {served!r} for a request sent at {sent}",
            field="schema_version",
        )
    if served < 2 and any(key in envelope for key in V2_ONLY_RESPONSE_KEYS):
        raise WorldServiceBadResponse(
            "a v1 Arrow answer carries v2-only keys", field="alpha_metrics"
        )


async def proxy_arrow(
    client: WorldServiceClient, body: ArrowBody, *, route: str, if_match: str | None = None
) -> Response:
    """Forward an Arrow plan/apply at the negotiated version and relay the answer.

    Raises:
        UpstreamError and the transport errors of the WorldService client;
        WorldServiceBadResponse: a malformed or mis-versioned answer.
    """
    preferred = preferred_version(
        body.outgoing.declared_version, configured=client.settings.rebalance_schema_version
    )
    sent = choose_version(preferred, served=client.known_versions)
    headers = {"content-type": ARROW_STREAM_MEDIA_TYPE, "accept": body.accept}
    if if_match:
        headers["if-match"] = if_match
    response = await client._request(
        route, "POST", f"/rebalancing/{route}", headers=headers, content=body.encode(sent)
    )
    if response.status_code >= 400:
        raise upstream_error(response.status_code, error_detail(response.content))
    passthrough = {
        name.title(): response.headers[name]
        for name in PASSTHROUGH_HEADERS
        if name in response.headers
    }
    if is_arrow_media_type(response.headers.get("content-type")):
        _check_arrow_answer(response.content, sent=sent)
        return Response(response.content, media_type=ARROW_STREAM_MEDIA_TYPE, headers=passthrough)
    _, content, _ = parse_served_response(response.content, apply=route == "apply")
    return Response(content, media_type="application/json", headers=passthrough)

"""The Arrow IPC form of the plan request and response (docs/arrow.md).

A request is one Arrow IPC *stream* (``application/vnd.apache.arrow.stream``) whose table is
the positions — columns ``world_id``, ``strategy_id``, ``symbol`` (strings), ``qty``,
``mark`` (numbers) and optionally ``venue`` (string, null = no venue); other columns are
ignored — and whose schema metadata holds the rest of the request as UTF-8 JSON under
:data:`ARROW_REQUEST_KEY` (every field of ``MultiWorldRebalanceRequest`` except
``positions``).

A response is one stream whose table holds the deltas — ``world_id`` (null on the global
rows), ``venue`` (null = no venue), ``symbol``, ``delta_qty`` — each world's rows in world
order then the global rows, each block ordered by (venue, symbol) as in JSON; its schema
metadata holds, under :data:`ARROW_RESPONSE_KEY`, the JSON response without the delta
lists (``schema_version``, ``per_world`` with each world's scales, ``overlay_deltas``, and
in v2 ``alpha_metrics`` and ``rebalance_intent``).

pyarrow is an optional dependency (the ``arrow`` extra); it is imported only when an Arrow
body is read or written, and :func:`require_pyarrow` turns its absence into a 415.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .errors import UnsupportedMediaType

__all__ = [
    "ARROW_DELTA_COLUMNS",
    "ARROW_POSITION_COLUMNS",
    "ARROW_REQUEST_KEY",
    "ARROW_RESPONSE_KEY",
    "ARROW_STREAM_MEDIA_TYPE",
    "decode_arrow_plan",
    "encode_arrow_request",
    "is_arrow_media_type",
    "require_pyarrow",
]

ARROW_STREAM_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
ARROW_REQUEST_KEY = b"qmtl.request"
"""Schema-metadata key of a request's non-position fields (a JSON object)."""
ARROW_RESPONSE_KEY = b"qmtl.response"
"""Schema-metadata key of a response's envelope (a JSON object)."""
ARROW_POSITION_COLUMNS = ("world_id", "strategy_id", "symbol", "qty", "mark", "venue")
ARROW_DELTA_COLUMNS = ("world_id", "venue", "symbol", "delta_qty")


def is_arrow_media_type(content_type: str | None) -> bool:
    """True when a ``Content-Type``/``Accept`` value names the Arrow stream format."""
    if not content_type:
        return False
    return any(
        part.split(";", 1)[0].strip().lower() == ARROW_STREAM_MEDIA_TYPE
        for part in content_type.split(",")
    )


def require_pyarrow() -> ModuleType:
    """``pyarrow``, or a 415 naming the extra that provides it.

    Raises:
        UnsupportedMediaType: pyarrow is not installed.
    """
    try:
        return importlib.import_module("pyarrow")
    except ImportError as exc:
        raise UnsupportedMediaType(
            f"{ARROW_STREAM_MEDIA_TYPE} needs pyarrow: install qmtl-rebalancing[arrow] "
            "(or send application/json)",
            content_type=ARROW_STREAM_MEDIA_TYPE,
            supported=["application/json"],
        ) from exc


def encode_arrow_request(positions: Any, fields: Mapping[str, Any]) -> bytes:
    """An Arrow request body: ``positions`` (a ``pyarrow.Table``) with ``fields`` (the
    other request fields, JSON-serialisable) in its schema metadata.

    Raises:
        UnsupportedMediaType: pyarrow is not installed.
    """
    pa = require_pyarrow()
    metadata = dict(positions.schema.metadata or {})
    metadata[ARROW_REQUEST_KEY] = json.dumps(dict(fields), allow_nan=False).encode()
    table = positions.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def decode_arrow_plan(raw: bytes) -> tuple[Any, dict[str, Any]]:
    """A response body as (``pyarrow.Table`` of deltas, envelope dict).

    Raises:
        UnsupportedMediaType: pyarrow is not installed.
        ValueError: not an Arrow stream, or no :data:`ARROW_RESPONSE_KEY` metadata.
    """
    pa = require_pyarrow()
    try:
        table = pa.ipc.open_stream(raw).read_all()
    except pa.ArrowInvalid as exc:
        raise ValueError(f"not an Arrow IPC stream: {exc}") from exc
    envelope = (table.schema.metadata or {}).get(ARROW_RESPONSE_KEY)
    if envelope is None:
        raise ValueError("the Arrow response has no qmtl.response metadata")
    return table, json.loads(envelope)

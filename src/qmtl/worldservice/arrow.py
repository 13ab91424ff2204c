"""Plan bodies and answers as Arrow IPC streams (``application/vnd.apache.arrow.stream``).

Request: one record batch stream whose table holds the positions — columns ``world_id``,
``strategy_id``, ``symbol`` (strings), ``qty``, ``mark`` (numbers) and optionally
``venue`` (string, null = no venue) — and whose schema metadata key ``qmtl.request``
holds every other field of the request as a JSON object (``positions`` is not allowed
there). The positions go straight to the engine's arrays: ids are dictionary-encoded by
Arrow (a hash table in C++), numbers are read as numpy views.

Anything the fast reader is not sure of (a null, a type, an id or a number the contract
refuses) sends the whole request through the contract model, with the table turned into
position objects: the 422 list is the JSON body's (``loc`` ``["body", "positions", 12,
"mark"]``).

Answer (when ``Accept`` names the Arrow type): one table of every delta — ``world_id``
(null for the global deltas), ``symbol``, ``venue`` (nullable), ``delta_qty`` — in the
JSON document's order (each world's deltas by world, then the global ones), and the rest of
the document (with empty ``deltas``/``global_deltas`` lists) as JSON in the schema
metadata key ``qmtl.response``.

``pyarrow`` is the optional extra ``qmtl-rebalancing[arrow]``; without it an Arrow body
is a 415 ``E_UNSUPPORTED_MEDIA_TYPE``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
import orjson

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import UnsupportedMediaType
from qmtl.engine.columns import ColumnRequest, book_from_codes

from .bodies import parse_body, validation_error

__all__ = [
    "ARROW_STREAM",
    "REQUEST_METADATA",
    "RESPONSE_METADATA",
    "decode_arrow_body",
    "encode_arrow_answer",
    "load_pyarrow",
    "wants_arrow",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
REQUEST_METADATA = b"qmtl.request"
RESPONSE_METADATA = b"qmtl.response"
_IDS = ("world_id", "strategy_id", "symbol", "venue")


def load_pyarrow() -> ModuleType:
    """``pyarrow``.

    Raises:
        UnsupportedMediaType: it is not installed (415, names the extra).
    """
    try:
        return importlib.import_module("pyarrow")
    except ImportError as exc:
        raise UnsupportedMediaType(
            "Arrow IPC bodies need pyarrow on the WorldService: install "
            "qmtl-rebalancing[arrow], or send JSON",
            content_type=ARROW_STREAM,
        ) from exc


def wants_arrow(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for the Arrow stream type."""
    return bool(accept) and ARROW_STREAM in str(accept).lower()


def _read_table(pa: ModuleType, raw: bytes) -> Any:
    try:
        with pa.ipc.open_stream(pa.py_buffer(raw)) as reader:
            return reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise validation_error(("body",), f"not an Arrow IPC stream: {exc}") from exc


def _ids(pa: ModuleType, column: Any) -> tuple[list[Any], Any] | None:
    """Distinct values and int64 codes of a string column (nulls get a ``None`` value)."""
    if not (
        pa.types.is_string(column.type)
        or pa.types.is_large_string(column.type)
        or pa.types.is_null(column.type)
    ):
        return None
    encoded = column.combine_chunks().dictionary_encode()
    values = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    if encoded.null_count:
        codes = np.where(
            encoded.indices.is_null().to_numpy(zero_copy_only=False),
            len(values),
            np.nan_to_num(codes, nan=0),
        )
        values.append(None)
    return values, np.asarray(codes, dtype=np.int64)


def _numbers(pa: ModuleType, column: Any) -> Any | None:
    # Integers and floats are numbers on the wire; booleans and decimals are not.
    if column.null_count or not (
        pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
    ):
        return None
    return column.combine_chunks().to_numpy(zero_copy_only=False).astype(np.float64)


def _fast_book(pa: ModuleType, table: Any) -> Any:
    names = set(table.column_names)
    if not {"world_id", "strategy_id", "symbol", "qty", "mark"} <= names:
        return None
    ids: dict[str, tuple[list[Any], Any]] = {}
    for name in _IDS:
        if name == "venue" and name not in names:
            ids[name] = ([None], np.zeros(table.num_rows, dtype=np.int64))
            continue
        column = _ids(pa, table.column(name))
        if column is None or (name != "venue" and None in column[0]):
            return None
        ids[name] = column
    qty, mark = _numbers(pa, table.column("qty")), _numbers(pa, table.column("mark"))
    if qty is None or mark is None:
        return None
    return book_from_codes(ids=ids, qty=qty, mark=mark)


async def decode_arrow_body(raw: bytes) -> ColumnRequest | MultiWorldRebalanceRequest:
    """An Arrow IPC plan body as a validated request (positions in columns when valid).

    Raises:
        UnsupportedMediaType: pyarrow is not installed.
        RequestValidationError: not an Arrow stream, metadata that is not a JSON object,
            or a field that breaks the contract (the JSON body's 422 list).
    """
    pa = load_pyarrow()
    table = _read_table(pa, raw)
    metadata = (table.schema.metadata or {}).get(REQUEST_METADATA, b"{}")
    try:
        rest = orjson.loads(metadata)
    except orjson.JSONDecodeError as exc:
        raise validation_error(
            ("body",), f"schema metadata {REQUEST_METADATA.decode()} is not JSON"
        ) from exc
    if not isinstance(rest, dict):
        raise validation_error(
            ("body",), f"schema metadata {REQUEST_METADATA.decode()} must be a JSON object"
        )
    if "positions" in rest:
        raise validation_error(
            ("body", "positions"), "positions travel as the Arrow table, not in the metadata"
        )
    request = await parse_body(metadata, MultiWorldRebalanceRequest)
    book = _fast_book(pa, table)
    if book is not None:
        return ColumnRequest(request=request, book=book)
    document = orjson.dumps({**rest, "positions": table.to_pylist()})
    return await parse_body(document, MultiWorldRebalanceRequest)


def encode_arrow_answer(encoded_json: bytes) -> bytes:
    """The Arrow form of a plan's JSON document (see the module docstring)."""
    pa = load_pyarrow()
    document = orjson.loads(encoded_json)
    world: list[str | None] = []
    symbol: list[str] = []
    venue: list[str | None] = []
    qty: list[float] = []
    for world_id, plan in document.get("per_world", {}).items():
        for delta in plan.get("deltas", []):
            world.append(world_id)
            symbol.append(delta["symbol"])
            venue.append(delta.get("venue"))
            qty.append(delta["delta_qty"])
        plan["deltas"] = []
    for delta in document.get("global_deltas", []):
        world.append(None)
        symbol.append(delta["symbol"])
        venue.append(delta.get("venue"))
        qty.append(delta["delta_qty"])
    document["global_deltas"] = []
    table = pa.table(
        {
            "world_id": pa.array(world, pa.string()),
            "symbol": pa.array(symbol, pa.string()),
            "venue": pa.array(venue, pa.string()),
            "delta_qty": pa.array(qty, pa.float64()),
        }
    )
    table = table.replace_schema_metadata({RESPONSE_METADATA: orjson.dumps(document)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())

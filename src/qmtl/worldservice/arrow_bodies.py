"""Arrow IPC request bodies: bytes → a validated request and a columnar position book.

The positions table is checked column by column (no Python object per position) and the
rest of the request — JSON in the schema metadata under ``qmtl.request`` — by the pydantic
model itself. Validation equals the JSON path: a row is *suspect* when one of its values
is null, not finite, not > 0 (mark), or an id whose distinct value fails the model's own
field validator (each distinct id is checked once, so the rule cannot drift from
``PositionSlice``); suspect rows are then validated by ``PositionSlice`` itself, which
produces the 422 entries — identical ``loc`` (``["body", "positions", i, "mark"]``),
``msg`` and ``type`` to a JSON body with the same rows. What JSON cannot express is
reported once per column: a missing column (``type`` ``missing``) or a column of the wrong
Arrow type (``string_type`` / ``float_type``), ``loc`` = ``["body", "positions", column]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi.exceptions import RequestValidationError
from numpy.typing import NDArray
from pydantic import TypeAdapter, ValidationError

from qmtl.contracts import (
    ARROW_POSITION_COLUMNS,
    MultiWorldRebalanceRequest,
    PositionSlice,
    require_pyarrow,
)
from qmtl.engine import PositionBook
from qmtl.web.bodies import OFFLOAD_BYTES, read_arrow_stream, validation_errors
from qmtl.web.gcpause import gc_paused

__all__ = ["ArrowPlanRequest", "decode_arrow_request", "parse_arrow_body"]

_ID_COLUMNS = ("world_id", "strategy_id", "symbol")
_NUMBER_COLUMNS = ("qty", "mark")
_FIELD_ORDER = list(MultiWorldRebalanceRequest.model_fields)


@dataclass(frozen=True, slots=True, eq=False)
class ArrowPlanRequest:
    """A decoded Arrow body: the request without positions, and its positions as a book.

    ``request.positions`` is empty; ``book`` holds them (row ``i`` of the table is position
    ``i``). :meth:`full_request` rebuilds the wire model for paths that need it (apply).
    """

    request: MultiWorldRebalanceRequest
    book: PositionBook
    table: Any

    def __len__(self) -> int:
        return len(self.book)

    def full_request(self) -> MultiWorldRebalanceRequest:
        """The request with its positions as ``PositionSlice`` objects (already valid)."""
        rows = self.table.select(
            [c for c in ARROW_POSITION_COLUMNS if c in self.table.column_names]
        ).to_pylist()
        positions = [PositionSlice.model_construct(**_as_floats(row)) for row in rows]
        return self.request.model_copy(update={"positions": positions})


def _as_floats(row: dict[str, Any]) -> dict[str, Any]:
    row["qty"] = float(row["qty"])
    row["mark"] = float(row["mark"])
    return row


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    # The model's own annotation and constraints: the per-value rule cannot drift from it.
    return TypeAdapter(PositionSlice.model_fields[name].rebuild_annotation())


def _invalid_values(name: str, values: Sequence[Any]) -> NDArray[np.bool_]:
    adapter = _field_adapter(name)
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        try:
            adapter.validate_python(value)
        except ValidationError:
            bad[i] = True
    return bad


def _column_error(kind: str, column: str, msg: str) -> dict[str, Any]:
    return {"type": kind, "loc": ["body", "positions", column], "msg": msg}


def _check_columns(pa: Any, table: Any) -> list[dict[str, Any]]:
    types = pa.types
    errors: list[dict[str, Any]] = []
    for name in ARROW_POSITION_COLUMNS:
        if name not in table.column_names:
            if name != "venue":
                errors.append(
                    _column_error(
                        "missing", name, f"Field required: the Arrow table has no column '{name}'"
                    )
                )
            continue
        copies = len(table.schema.get_all_field_indices(name))
        if copies > 1:
            errors.append(
                _column_error(
                    "value_error", name, f"the Arrow table has {copies} columns named '{name}'"
                )
            )
            continue
        kind = table.schema.field(name).type
        if types.is_dictionary(kind):
            kind = kind.value_type
        if name in _NUMBER_COLUMNS:
            if not (types.is_integer(kind) or types.is_floating(kind) or types.is_null(kind)):
                errors.append(
                    _column_error(
                        "float_type",
                        name,
                        f"Input should be a valid number: column '{name}' is {kind}, "
                        "expected an integer or floating-point column",
                    )
                )
        elif not (_string_like(pa, kind) or types.is_null(kind)):
            errors.append(
                _column_error(
                    "string_type",
                    name,
                    f"Input should be a valid string: column '{name}' is {kind}, "
                    "expected a string column",
                )
            )
    return errors


def _string_like(pa: Any, kind: Any) -> bool:
    types = pa.types
    return bool(
        types.is_string(kind)
        or types.is_large_string(kind)
        or getattr(types, "is_string_view", bool)(kind)
    )


def _dictionary(pa: Any, column: Any) -> Any:
    """One dictionary array for the column: the caller's own dictionary when it sent one
    (no hashing), else ``dictionary_encode`` (one hash pass)."""
    if pa.types.is_dictionary(column.type) and _string_like(pa, column.type.value_type):
        if column.num_chunks == 1:
            return column.chunk(0)
        return column.unify_dictionaries().combine_chunks()
    if not _string_like(pa, column.type) or getattr(pa.types, "is_string_view", bool)(column.type):
        column = column.cast(pa.string())
    return column.combine_chunks().dictionary_encode()


def _encode_ids(
    pa: Any, column: Any, *, name: str
) -> tuple[list[Any], NDArray[np.int64], NDArray[np.bool_]]:
    """Distinct values, one code per row, and the rows to re-validate one by one.

    A caller's dictionary may repeat values or hold unused ones; codes are re-mapped onto
    the distinct values that rows use (O(n) integer work), so no unused or duplicate
    category reaches the engine. A null venue is the value ``None`` (no venue).
    """
    encoded = _dictionary(pa, column)
    values = encoded.dictionary.to_pylist()
    indices = encoded.indices
    null_rows = np.asarray(indices.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    codes = np.asarray(indices.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    if name == "venue":
        values.append(None)
        codes[null_rows] = len(values) - 1
        null_rows[:] = False
    used = np.bincount(codes[~null_rows], minlength=len(values)) > 0
    if not (used.all() and len(set(values)) == len(values)):
        remap = np.zeros(max(len(values), 1), dtype=np.int64)  # null rows point at 0
        distinct: dict[Any, int] = {}
        for i in np.flatnonzero(used).tolist():
            remap[i] = distinct.setdefault(values[i], len(distinct))
        values = list(distinct)
        codes = remap[codes]
    suspect = (null_rows | _invalid_values(name, values)[codes]) if values else null_rows
    return values, codes, suspect


def _numbers(
    pa: Any, column: Any, *, positive: bool
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    if pa.types.is_dictionary(column.type):  # numbers sent as a dictionary: decode first
        column = pa.chunked_array(
            [chunk.dictionary_decode() for chunk in column.chunks], type=column.type.value_type
        )
    as_float = column.cast(pa.float64(), safe=False).combine_chunks()
    if as_float.null_count == 0:  # the usual case: no null bitmap to read or fill
        nulls = np.zeros(len(as_float), dtype=bool)
        values = np.asarray(as_float.to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        nulls = np.asarray(as_float.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        values = np.asarray(
            as_float.fill_null(1.0).to_numpy(zero_copy_only=False), dtype=np.float64
        )
    suspect = nulls | ~np.isfinite(values)
    if positive:
        suspect |= ~(values > 0)
    return values, suspect


def _row_errors(table: Any, rows: NDArray[np.int64]) -> list[dict[str, Any]]:
    present = [c for c in ARROW_POSITION_COLUMNS if c in table.column_names]
    errors: list[dict[str, Any]] = []
    for index, row in zip(rows.tolist(), table.select(present).take(rows).to_pylist(), strict=True):
        try:
            PositionSlice.model_validate(row)
        except ValidationError as exc:
            errors.extend(validation_errors(exc, prefix=("body", "positions", index)))
    return errors


def _field_rank(error: dict[str, Any]) -> int:
    loc = error["loc"]
    if len(loc) < 2 or loc[1] not in _FIELD_ORDER:
        return -1
    return _FIELD_ORDER.index(loc[1])


def _fail(errors: list[dict[str, Any]]) -> RequestValidationError:
    # Field order as pydantic reports a JSON body (total_equity … positions … run_id).
    return RequestValidationError(sorted(errors, key=_field_rank))


def decode_arrow_request(raw: bytes) -> ArrowPlanRequest:
    """Decode and validate an Arrow IPC plan body (see the module docstring).

    Raises:
        UnsupportedMediaType: pyarrow is not installed (415).
        RequestValidationError: not an Arrow stream, invalid metadata fields, missing or
            mistyped columns, invalid rows (422 list form).
    """
    pa = require_pyarrow()
    table, metadata = read_arrow_stream(raw)
    errors: list[dict[str, Any]] = []
    request: MultiWorldRebalanceRequest | None = None
    try:
        request = MultiWorldRebalanceRequest.model_validate_json(metadata)
    except ValidationError as exc:
        errors.extend(validation_errors(exc))
    if request is not None and request.positions:
        errors.append(
            {
                "type": "value_error",
                "loc": ["body", "positions"],
                "msg": "positions travel as the Arrow table, not in the qmtl.request metadata",
            }
        )
    column_errors = _check_columns(pa, table)
    if column_errors:
        raise _fail(errors + column_errors)
    ids = {name: _encode_ids(pa, table.column(name), name=name) for name in _ID_COLUMNS}
    if "venue" in table.column_names:
        venue = _encode_ids(pa, table.column("venue"), name="venue")
    else:
        venue = (
            [None],
            np.zeros(table.num_rows, dtype=np.int64),
            np.zeros(table.num_rows, dtype=bool),
        )
    qty, bad_qty = _numbers(pa, table.column("qty"), positive=False)
    mark, bad_mark = _numbers(pa, table.column("mark"), positive=True)
    suspect = bad_qty | bad_mark | venue[2]
    for _, _, bad in ids.values():
        suspect |= bad
    if suspect.any():
        errors.extend(_row_errors(table, np.flatnonzero(suspect).astype(np.int64)))
    if errors or request is None:
        raise _fail(errors)
    book = PositionBook.from_id_codes(
        worlds=ids["world_id"][0],
        world=ids["world_id"][1],
        strategies=ids["strategy_id"][0],
        strategy=ids["strategy_id"][1],
        venues=venue[0],
        venue=venue[1],
        symbols=ids["symbol"][0],
        symbol=ids["symbol"][1],
        qty=qty,
        mark=mark,
    )
    return ArrowPlanRequest(request=request, book=book, table=table)


def _decode_large(raw: bytes) -> ArrowPlanRequest:
    with gc_paused():
        return decode_arrow_request(raw)


async def parse_arrow_body(raw: bytes) -> ArrowPlanRequest:
    """:func:`decode_arrow_request`, in a worker thread when the body is large."""
    if len(raw) > OFFLOAD_BYTES:
        return await anyio.to_thread.run_sync(_decode_large, raw)
    return decode_arrow_request(raw)

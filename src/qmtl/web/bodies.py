"""JSON request bodies parsed straight from bytes, with 422 errors in FastAPI's list form.

Both services validate bodies with pydantic's own JSON parser (``model_validate_json``: one
pass, no intermediate Python objects; NaN/Infinity refused as ``finite_number`` errors), in a
worker thread when the body is large so the event relay keeps its latency. Errors keep
FastAPI's shape — ``{"detail": [{"loc": ["body", …], "msg": …, "type": …}]}`` — without
echoing the offending input (it may be huge, or NaN, which JSON cannot carry).

All numbers on the wire are finite (SPEC 2): ``NaN``/``Infinity`` literals are not JSON, so
they are refused wherever they are — in an unknown (otherwise ignored) field too, with the
``loc`` of the literal. A number that merely overflows (``1e999``) in an ignored field is
valid JSON grammar and stays ignored; in a known field it is a ``finite_number`` error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from .errors import validation_entry
from .gcpause import gc_paused

__all__ = ["OFFLOAD_BYTES", "parse_json", "refuse_non_finite_literals", "validation_error",
           "validation_errors"]

T = TypeVar("T")
B = TypeVar("B", bound=bytes | bytearray)  # a streamed body is read uncopied from its buffer

OFFLOAD_BYTES = 1 << 20
"""Bodies larger than this (bytes) are parsed in a worker thread with the cyclic GC paused."""


def validation_errors(exc: ValidationError, *, prefix: Sequence[str | int] = ("body",)
                      ) -> list[dict[str, Any]]:
    """FastAPI-style error entries for ``exc``: ``loc`` prefixed, no ``input``, safe ``ctx``."""
    return [validation_entry(err, prefix=prefix)
            for err in exc.errors(include_url=False, include_input=False)]


def validation_error(loc: Sequence[str | int], msg: str, *,
                     type_: str = "value_error") -> RequestValidationError:
    """A one-entry 422 naming the field at ``loc`` (e.g. ``("body", "world_alloc")``)."""
    return RequestValidationError([{"type": type_, "loc": list(loc), "msg": msg}])


def read_arrow_stream(raw: bytes) -> tuple[Any, bytes]:
    """An Arrow IPC body's table and the request JSON in its schema metadata (``{}`` when
    absent).

    Raises:
        UnsupportedMediaType: pyarrow is not installed (415).
        RequestValidationError: not an Arrow IPC stream (422 at ``["body"]``).
    """
    from qmtl.contracts import ARROW_REQUEST_KEY, require_pyarrow

    pa = require_pyarrow()
    try:
        table = pa.ipc.open_stream(raw).read_all()
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise validation_error(["body"], f"Invalid Arrow IPC stream: {exc}",
                               type_="arrow_invalid") from exc
    return table, (table.schema.metadata or {}).get(ARROW_REQUEST_KEY, b"{}")


class _Literal:
    """Stands in for a NaN/Infinity literal while its location is looked up."""


def _non_finite_literal(raw: bytes | bytearray) -> list[str | int] | None:
    """The path of the first ``NaN``/``Infinity`` literal in ``raw`` (already parsed once by
    pydantic), or ``None``. Only bodies whose bytes contain those words pay a second parse."""
    if b"NaN" not in raw and b"Infinity" not in raw:
        return None
    mark = _Literal()
    try:
        document = json.loads(raw, parse_constant=lambda _: mark)
    except (ValueError, RecursionError):  # pydantic accepted it; nothing more to say
        return None
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        path, value = stack.pop()
        if value is mark:
            return path
        if isinstance(value, dict):
            stack.extend(([*path, key], item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(([*path, index], item) for index, item in enumerate(value))
    return None


def refuse_non_finite_literals(raw: bytes | bytearray) -> None:
    """422 naming the first ``NaN``/``Infinity`` literal in ``raw`` (pydantic's JSON parser
    accepts them; JSON does not).

    Raises:
        RequestValidationError: ``raw`` holds such a literal.
    """
    path = _non_finite_literal(raw)
    if path is not None:
        raise validation_error(["body", *path], "Input should be a finite number: NaN and "
                               "Infinity are not JSON", type_="finite_number")


def _parse_finite(parse: Callable[[B], T], raw: B) -> T:
    parsed = parse(raw)
    refuse_non_finite_literals(raw)
    return parsed


def _parse_large(parse: Callable[[B], T], raw: B) -> T:
    with gc_paused():
        return parse(raw)


async def parse_json(raw: B, parse: Callable[[B], T], *,
                     refuses_literals: bool = False) -> T:
    """Run ``parse`` (e.g. ``Model.model_validate_json``) on ``raw``.

    ``refuses_literals``: ``parse`` already refuses ``NaN``/``Infinity`` literals (e.g. it
    reads with msgspec, which rejects them), so ``raw`` is not searched for them again.

    Raises:
        RequestValidationError: invalid JSON or invalid fields (422 list form).
    """
    checked = parse if refuses_literals else partial(_parse_finite, parse)
    try:
        if len(raw) > OFFLOAD_BYTES:
            return await anyio.to_thread.run_sync(_parse_large, checked, raw)
        return checked(raw)
    except ValidationError as exc:
        raise RequestValidationError(validation_errors(exc)) from exc

"""A fast reader for the plan request's positions (msgspec), checked against the models.

The pydantic models stay the one home of the contract (schemas, OpenAPI, error lists). This
module only speeds up the common case: a valid request. :func:`split_request` decodes the
``positions`` array into light msgspec rows, a chunk at a time (no validation beyond JSON
types), and validates
everything else with the pydantic model itself, so the non-position fields accept, reject
and default exactly as the model does. It returns ``None`` whenever it is unsure — the
caller then validates the whole document with pydantic, which produces the 422 list; the
error list is therefore the model's by construction. What the rows still need (finite
numbers, ``mark > 0``, printable ids) is checked column-wise by
:mod:`qmtl.engine.columns`, which also returns ``None`` (fall back) on any failure.

``tests/contracts/test_fast_reader.py`` fails when a field is added to
:class:`~qmtl.contracts.PositionSlice` or the request and not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat

import msgspec
from pydantic import ValidationError

from ._request import MultiWorldRebalanceRequest

__all__ = ["CHUNK_ROWS", "FastPositionRow", "SplitRequest", "split_request"]


class FastPositionRow(msgspec.Struct, gc=False):
    """One position as JSON types only: ids are any string, numbers any JSON number.

    ``gc=False``: a million rows must not be tracked by the cyclic garbage collector.
    """

    world_id: str
    strategy_id: str
    symbol: str
    qty: float
    mark: float
    venue: str | None = None


POSITION_FIELDS: frozenset[str] = frozenset(FastPositionRow.__struct_fields__)
"""The fields the fast reader knows (a test compares them with ``PositionSlice``)."""

HANDLED_REQUEST_FIELDS: frozenset[str] = frozenset({"positions"})
"""Request fields read by the fast path; every other field goes through the model."""

_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw] | None)
_ROWS = msgspec.json.Decoder(list[FastPositionRow])
_KEY = msgspec.json.Encoder()

CHUNK_ROWS = 65_536
"""Positions decoded into rows at a time (bounds the rows alive at once)."""

_READ = msgspec.Raw(b"")  # stands in for a position already decoded


@dataclass(frozen=True, slots=True)
class SplitRequest:
    """The request validated without its positions, and the positions still encoded.

    ``request.positions`` is empty. ``items`` are the encoded positions (views of the
    request's bytes); :meth:`chunks` decodes them into rows a chunk at a time. The rows
    still need the column checks of :mod:`qmtl.engine.columns` (finite, ``mark > 0``, ids).
    """

    request: MultiWorldRebalanceRequest
    items: list[msgspec.Raw]

    def __len__(self) -> int:
        return len(self.items)

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[list[FastPositionRow]]:
        """The rows, ``size`` at a time. The positions can be read once: each chunk's
        views are dropped as it is decoded, so the million ``Raw`` objects of a large book
        (~60 MB) are not all alive while its columns are built (SPEC 7: peak memory ≤ 3×
        the request).

        Raises:
            msgspec.ValidationError: a position is not of the JSON types of a row.
            RuntimeError: the positions were read already.
        """
        items = self.items
        if items and items[0] is _READ:
            raise RuntimeError("the positions of this request were read already")
        for start in range(0, len(items), size):
            stop = min(start + size, len(items))
            encoded = b"".join((b"[", b",".join(items[start:stop]), b"]"))
            items[start:stop] = repeat(_READ, stop - start)
            yield _ROWS.decode(encoded)


def split_request(raw: bytes) -> SplitRequest | None:
    """``raw`` split into the model-validated envelope and the raw position rows.

    Returns ``None`` (validate the whole document with pydantic instead) when the document is
    not a JSON object, a row is not of the JSON types above, or the rest of the request is
    invalid. NaN/Infinity literals are not JSON: msgspec refuses them, hence ``None`` too.
    """
    try:
        top = _TOP.decode(raw)
        positions = top.pop("positions", None)
        items = _ITEMS.decode(positions) if positions is not None else None
    # RecursionError: nested deeper than msgspec goes (e.g. an unknown field 100,000 deep)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    rest = (
        b"{"
        + b",".join(_KEY.encode(key) + b":" + bytes(value) for key, value in top.items())
        + b"}"
    )
    try:
        request = MultiWorldRebalanceRequest.model_validate_json(rest)
    except ValidationError:
        return None
    return SplitRequest(request=request, items=items or [])

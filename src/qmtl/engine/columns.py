"""The columnar wire path: request bytes or plain data → position arrays → plan → JSON bytes.

No pydantic object is built per position or per delta. Positions come in as msgspec rows
(:mod:`qmtl.contracts._fast`) or plain dicts, are factorised with hash tables (one dict per
id column, ids checked once per distinct value) into a :class:`~qmtl.engine.book.PositionBook`,
planned by :func:`~qmtl.engine.planning.plan_book`, and the response document is built from
the result columns and encoded by orjson.

Accept/reject equals the contract models' by construction: every function here returns
``None`` when it is not sure the models would accept the input, and the caller then runs the
pydantic path (which raises the 422 list). Tests compare both paths on thousands of random
and mutated requests (``tests/engine/test_columns_equivalence.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter, methodcaller
from typing import Any

import msgspec
import numpy as np
import orjson

from qmtl.contracts import (
    LATEST_SCHEMA_VERSION,
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    OverlayDelta,
    RebalanceIntent,
    RebalanceMode,
    render_response,
)
from qmtl.contracts._fast import FastPositionRow, split_request
from qmtl.contracts._types import MAX_IDENTIFIER_LENGTH, check_identifier

from .alpha import alpha_envelope
from .book import IntArray, Key, PositionBook
from .overlay import plan_overlay
from .planning import BookPlan, allocation_inputs, check_mode, plan_book, to_response
from .scales import compute_scales

__all__ = [
    "ColumnRequest",
    "ColumnPlan",
    "book_from_chunks",
    "book_from_dicts",
    "book_from_rows",
    "decode_request",
    "encode_document",
    "plan_columns",
    "plan_document",
    "plan_rebalance_data",
]


@dataclass(frozen=True, slots=True)
class ColumnRequest:
    """A validated request whose positions live in ``book`` (``request.positions`` is empty)."""

    request: MultiWorldRebalanceRequest
    book: PositionBook

    def __len__(self) -> int:
        return len(self.book)


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """A plan in columns plus the skeleton response (worlds, scales, overlay; no deltas).

    ``skeleton`` was validated by the response models (finite scales, ids), so the document
    built from it carries the same guarantees as today's pydantic rendering.
    """

    plan: BookPlan
    skeleton: MultiWorldRebalanceResponse


def _identifiers_ok(values: Iterable[str | None], *, nullable: bool = False) -> bool:
    for value in values:
        if value is None:
            if not nullable:
                return False
            continue
        if type(value) is not str or not value or len(value) > MAX_IDENTIFIER_LENGTH:
            return False
        try:
            check_identifier(value)
        except ValueError:
            return False
    return True


_ID_COLUMNS = ("world_id", "strategy_id", "symbol", "venue")
ColumnReader = Callable[[str], Iterable[Any]]
"""Gives one column of a chunk of positions as an iterable (``reader("qty")``)."""


class _Columns:
    """Positions accumulated chunk by chunk into id dicts and number arrays.

    Ids are factorised with one dict per column, iterated in C: ``setdefault(value, i)``
    returns the index of the value's first occurrence; ranking those indices at the end
    (a cumulative count, O(n)) gives dense codes in the dicts' insertion order. Only one
    chunk's rows need to exist at a time, which bounds the memory of a large request.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.filled = 0
        self.index: dict[str, dict[Any, int]] = {name: {} for name in _ID_COLUMNS}
        self.first = {name: np.empty(n, dtype=np.int64) for name in _ID_COLUMNS}
        self.qty = np.empty(n, dtype=np.float64)
        self.mark = np.empty(n, dtype=np.float64)

    def add(self, size: int, column: ColumnReader) -> bool:
        """Append a chunk of ``size`` positions; ``False`` when one is not plainly valid."""
        start, stop = self.filled, self.filled + size
        if stop > self.n:
            return False
        try:  # an unhashable id (a list from plain data) is simply not an id
            for name in _ID_COLUMNS:
                self.first[name][start:stop] = np.fromiter(
                    map(self.index[name].setdefault, column(name), range(start, stop)),
                    dtype=np.int64,
                    count=size,
                )
            self.qty[start:stop] = np.fromiter(column("qty"), dtype=np.float64, count=size)
            self.mark[start:stop] = np.fromiter(column("mark"), dtype=np.float64, count=size)
        except (TypeError, ValueError, OverflowError, KeyError):
            return False
        self.filled = stop
        return True

    def codes(self, name: str) -> tuple[list[Any], IntArray]:
        first = self.first[name]
        seen = np.zeros(self.n, dtype=np.int64)
        seen[first] = 1
        return list(self.index[name]), (np.cumsum(seen) - 1)[first]

    def book(self) -> PositionBook | None:
        """The book, or ``None`` when a value breaks a ``PositionSlice`` rule."""
        if self.filled != self.n:
            return None
        return book_from_codes(
            ids={name: self.codes(name) for name in _ID_COLUMNS}, qty=self.qty, mark=self.mark
        )


def book_from_codes(
    *, ids: Mapping[str, tuple[Sequence[Any], IntArray]], qty: Any, mark: Any
) -> PositionBook | None:
    """The book of factorised columns: ``ids[name] = (distinct values, codes)`` for
    ``world_id``, ``strategy_id``, ``symbol`` and ``venue`` (``None`` allowed there only);
    ``None`` when a value breaks a ``PositionSlice`` rule (id, finiteness, ``mark > 0``)."""
    worlds, world = ids["world_id"]
    strategies, strategy = ids["strategy_id"]
    symbols, symbol = ids["symbol"]
    venues, venue = ids["venue"]
    if not (
        _identifiers_ok(worlds)
        and _identifiers_ok(strategies)
        and _identifiers_ok(symbols)
        and _identifiers_ok(venues, nullable=True)
    ):
        return None
    qty = np.asarray(qty, dtype=np.float64)
    mark = np.asarray(mark, dtype=np.float64)
    if not (np.isfinite(qty).all() and np.isfinite(mark).all() and (mark > 0).all()):
        return None
    return PositionBook.from_id_codes(
        worlds=list(worlds), world=world, strategies=list(strategies), strategy=strategy,
        venues=venues, venue=venue, symbols=symbols, symbol=symbol, qty=qty, mark=mark)


def _row_reader(rows: Sequence[FastPositionRow]) -> ColumnReader:
    return lambda name: map(attrgetter(name), rows)


def book_from_rows(rows: Sequence[FastPositionRow]) -> PositionBook | None:
    """The book of msgspec rows, or ``None`` when a row breaks a ``PositionSlice`` rule."""
    columns = _Columns(len(rows))
    return columns.book() if columns.add(len(rows), _row_reader(rows)) else None


def book_from_chunks(n: int, chunks: Iterable[Sequence[FastPositionRow]]) -> PositionBook | None:
    """The book of ``n`` positions given as successive chunks of msgspec rows (only one
    chunk alive at a time), or ``None`` when a row breaks a ``PositionSlice`` rule."""
    columns = _Columns(n)
    for rows in chunks:
        if not columns.add(len(rows), _row_reader(rows)):
            return None
    return columns.book()


_NUMBER_TYPES = frozenset({int, float})
_VENUE_TYPES = frozenset({str, type(None)})


def book_from_dicts(positions: Sequence[Mapping[str, Any]]) -> PositionBook | None:
    """The book of plain position dicts (what ``json.loads`` gives), or ``None`` when one
    is not exactly of the wire's JSON types (a bool or a string where a number goes, a
    missing key...). The type checks are sets of ``type`` over each column (C loops)."""
    if not set(map(type, positions)) <= {dict}:
        return None
    venue = methodcaller("get", "venue")
    try:
        if not (
            set(map(type, map(itemgetter("qty"), positions))) <= _NUMBER_TYPES
            and set(map(type, map(itemgetter("mark"), positions))) <= _NUMBER_TYPES
            and set(map(type, map(venue, positions))) <= _VENUE_TYPES
        ):
            return None
    except KeyError:
        return None

    def column(name: str) -> Iterable[Any]:
        return map(venue if name == "venue" else itemgetter(name), positions)

    columns = _Columns(len(positions))
    return columns.book() if columns.add(len(positions), column) else None


def decode_request(raw: bytes) -> ColumnRequest | None:
    """JSON ``raw`` as a validated request with columnar positions, or ``None`` (validate
    with the pydantic model instead: it accepts nothing this refuses, and says why)."""
    split = split_request(raw)
    if split is None:
        return None
    try:
        book = book_from_chunks(len(split), split.chunks())
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return None if book is None else ColumnRequest(request=split.request, book=book)


def plan_columns(request: MultiWorldRebalanceRequest, book: PositionBook) -> ColumnPlan:
    """:func:`~qmtl.engine.planning.plan_rebalance` over a book, result kept in columns.

    Raises:
        The errors of ``plan_rebalance`` (mode, overlay configuration, overflow).
    """
    check_mode(request)
    inputs = allocation_inputs(request)
    if request.mode == RebalanceMode.OVERLAY and request.overlay is not None:
        scales = compute_scales(book, inputs)
        overlay: list[OverlayDelta] | None = plan_overlay(
            scales, request.overlay, lot_size_by_symbol=request.lot_size_by_symbol
        )
        plan = BookPlan.without_deltas(scales, book.keys)
    else:
        overlay = None
        plan = plan_book(
            book,
            inputs,
            min_trade_notional=request.min_trade_notional,
            lot_size_by_symbol=request.lot_size_by_symbol,
        )
    bare = BookPlan.without_deltas(plan.scales, plan.keys)
    return ColumnPlan(plan=plan, skeleton=to_response(bare, overlay_deltas=overlay))


def _delta_dicts(keys: Sequence[Key], key_index: IntArray, qty: Any) -> list[dict[str, Any]]:
    # Key order as SymbolDelta dumps it: symbol, delta_qty, venue (omitted when null).
    return [
        {"symbol": keys[k][1], "delta_qty": q}
        if keys[k][0] is None
        else {"symbol": keys[k][1], "delta_qty": q, "venue": keys[k][0]}
        for k, q in zip(key_index.tolist(), qty.tolist(), strict=True)
    ]


def plan_document(
    column_plan: ColumnPlan,
    *,
    version: int,
    alpha_metrics: Any = None,
    rebalance_intent: RebalanceIntent | None = None,
) -> dict[str, Any]:
    """The wire document of ``render_response`` for this plan at ``version``: the same keys
    in the same order, deltas filled from the columns.

    Raises:
        ValueError: v2 without ``alpha_metrics`` (as ``render_response``).
    """
    skeleton = column_plan.skeleton
    if version >= 2:
        skeleton = skeleton.model_copy(
            update={
                "alpha_metrics": alpha_metrics,
                "rebalance_intent": rebalance_intent or RebalanceIntent(),
            }
        )
    body = render_response(skeleton, version)
    plan = column_plan.plan
    for w, world in enumerate(plan.scales.worlds):
        rows = plan.world_rows(w)
        body["per_world"][world]["deltas"] = _delta_dicts(
            plan.keys, plan.delta_key[rows], plan.delta_qty[rows]
        )
    body["global_deltas"] = _delta_dicts(plan.keys, plan.global_key, plan.global_qty)
    return body


def encode_document(body: Any) -> bytes:
    """Compact JSON bytes (orjson); integers beyond 64 bits (possible in free-form
    ``rebalance_intent.meta``) go through the standard library instead."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def plan_rebalance_data(
    data: Mapping[str, Any], *, periods_per_year: float = 252.0
) -> dict[str, Any]:
    """:func:`~qmtl.engine.planning.plan_rebalance` for plain data (what ``json.loads``
    gives): the request as dicts and lists in, the wire document out, served at the
    request's ``schema_version`` (1 when absent; 2 at most). No model per position or delta.

    Every field but ``positions`` is validated by the request model; the positions column-wise
    (:func:`book_from_dicts`). When they are not plainly valid the whole request goes through
    the model, which raises its usual error (or accepts it: then it is planned from objects).

    Raises:
        pydantic.ValidationError: the request breaks the contract (as ``model_validate``).
        The errors of ``plan_rebalance`` (mode, overlay configuration, overflow) and
        ``alpha_envelope`` (unusable ``alpha_series``).
    """
    positions = data.get("positions")
    rest = {key: value for key, value in data.items() if key != "positions"}
    request = MultiWorldRebalanceRequest.model_validate(rest)
    book = book_from_dicts(positions) if isinstance(positions, list) else None
    if book is None and positions is not None:
        full = MultiWorldRebalanceRequest.model_validate(data)
        book = PositionBook.from_positions(full.positions)
    elif book is None:
        book = PositionBook.from_positions([])
    version = min(request.requested_version, LATEST_SCHEMA_VERSION)
    planned = plan_columns(request, book)
    if version < 2:
        return plan_document(planned, version=version)
    envelope = alpha_envelope(request, planned.skeleton, periods_per_year=periods_per_year)
    return plan_document(
        planned, version=version, alpha_metrics=envelope, rebalance_intent=request.rebalance_intent
    )

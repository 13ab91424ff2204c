"""The columnar position book and the group sums every planning step is built from.

A :class:`PositionBook` stores positions as parallel numpy arrays: integer codes into
sorted category lists (worlds, strategies, netting keys) plus ``qty`` and ``mark``.
Because the categories are sorted, grouping by code yields groups already in the
wire order (netting keys sort with venue ``None`` first, then venue, then symbol).

:func:`group` factorises integer codes in O(n) with ``bincount`` when the code space is
small and in O(n log n) with ``np.unique`` otherwise; every other statistic is a
``bincount`` over the group index. No Python loop runs per position or per symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from qmtl.contracts import PositionSlice

__all__ = [
    "Groups",
    "Key",
    "PositionBook",
    "group",
    "key_order",
    "mark_by_key",
    "net_qty_by_key",
    "sum_by",
]

Key = tuple[str | None, str]
"""The netting key ``(venue, symbol)``."""

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

_C = TypeVar("_C", str, Key)
_H = TypeVar("_H", bound=Hashable)
_DENSE_SLACK = 65_536  # code spaces up to 4n + this are counted densely with bincount


def sum_by(codes: IntArray, weights: FloatArray, *, size: int) -> FloatArray:
    """``out[c] = sum(weights[codes == c])`` for ``c < size`` (one ``bincount``)."""
    return np.bincount(codes, weights=weights, minlength=size).astype(np.float64, copy=False)


def key_order(key: Key) -> tuple[bool, str, str]:
    """Sort key of a netting key: venue ``None`` first, then venue, then symbol."""
    venue, symbol = key
    return (venue is not None, venue or "", symbol)


@dataclass(frozen=True, slots=True)
class Groups:
    """Distinct codes (``ids``, ascending) and each element's group (``inverse``)."""

    ids: IntArray
    inverse: IntArray

    def __len__(self) -> int:
        return int(self.ids.size)

    def sum(self, weights: FloatArray) -> FloatArray:
        """Per-group sum of ``weights`` (one weight per element)."""
        return sum_by(self.inverse, weights, size=len(self))

    def count(self) -> IntArray:
        """Number of elements in each group."""
        return np.bincount(self.inverse, minlength=len(self)).astype(np.int64)

    def max(self, values: FloatArray) -> FloatArray:
        """Per-group maximum (``-inf`` for an empty group, which cannot occur)."""
        out = np.full(len(self), -np.inf)
        np.maximum.at(out, self.inverse, values)
        return out


def group(codes: IntArray, *, size: int) -> Groups:
    """Factorise non-negative integer ``codes`` below ``size``.

    O(n + size) with ``bincount`` when ``size <= 4n + 65536``, else O(n log n) with
    ``np.unique``.

    :param codes: one code per element, each in ``[0, size)``.
    :param size: the size of the code space.
    :returns: the groups, ids ascending.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if size <= 4 * codes.size + _DENSE_SLACK:
        present = np.bincount(codes, minlength=size) > 0
        ids = np.flatnonzero(present).astype(np.int64)
        lookup = np.cumsum(present, dtype=np.int64) - 1
        return Groups(ids=ids, inverse=lookup[codes])
    ids, inverse = np.unique(codes, return_inverse=True)
    return Groups(ids=ids.astype(np.int64), inverse=inverse.reshape(-1).astype(np.int64))


def weighted_mark(groups: Groups, *, qty: FloatArray, mark: FloatArray) -> FloatArray:
    """Per-group ``|qty|``-weighted average mark (plain mean when every qty is 0).

    ``mark_g = sum(|q| / sum(|q|) * m)``, clipped to the group's ``[min m, max m]`` and
    exactly ``m`` when all marks agree. The weights are normalised before they multiply the
    marks, so no term exceeds the largest mark: ``|q| * m`` alone overflows for a large
    quantity next to a mark near the float maximum although the mean is finite, and a mean
    taken as ``max m - weighted deviation`` cancels to 0 when the marks span many orders of
    magnitude.

    :returns: base currency per unit, one value per group.
    """
    high = groups.max(mark)
    low = -groups.max(-mark)
    absq = np.abs(qty)
    gross = groups.sum(absq)
    overflowed = ~np.isfinite(gross)
    if overflowed.any():
        # sum(|q|) past the float maximum would make every share 0 (a mean of 0, clipped
        # to the lowest mark): those groups weigh |q| / max |q| instead, each <= 1.
        largest = groups.max(absq)
        absq = np.where(overflowed[groups.inverse], absq / largest[groups.inverse], absq)
        gross = groups.sum(absq)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(gross[groups.inverse] > 0, absq / gross[groups.inverse], 0.0)
    weighted = groups.sum(share * mark)
    plain = groups.sum(mark / np.maximum(groups.count(), 1)[groups.inverse])
    mean = np.clip(np.where(gross > 0, weighted, plain), low, high)
    return np.where(high == low, high, mean)


def _sorted_categories(names: Sequence[str]) -> bool:
    return all(a < b for a, b in zip(names, names[1:], strict=False))


def _sorted_keys(keys: Sequence[Key]) -> bool:
    ordered = [key_order(k) for k in keys]
    return all(a < b for a, b in zip(ordered, ordered[1:], strict=False))


def _check_codes(name: str, codes: NDArray[np.integer], *, length: int, size: int) -> None:
    if codes.ndim != 1 or codes.size != length:
        raise ValueError(f"PositionBook.{name} must be a 1-D array of {length} codes")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"PositionBook.{name} must hold integer codes, got {codes.dtype}")
    if length and (int(codes.min()) < 0 or int(codes.max()) >= size):
        raise ValueError(f"PositionBook.{name} has a code outside [0, {size})")


@dataclass(frozen=True, slots=True, eq=False)
class PositionBook:
    """Positions as columns (the engine's fast path).

    ``worlds``, ``strategies`` and ``keys`` are sorted, distinct category lists
    (keys in :func:`key_order`); ``world``, ``strategy`` and ``key`` hold one integer
    code per position into them; ``qty`` is signed (units of the instrument) and
    ``mark`` is the price in base currency per unit (> 0). The arrays are never
    modified by the engine; read-only arrays are fine.

    Build it with :meth:`from_positions` (wire objects) or :meth:`from_codes`
    (unsorted categories are re-coded); the constructor validates but does not sort.
    """

    worlds: tuple[str, ...]
    strategies: tuple[str, ...]
    keys: tuple[Key, ...]
    world: NDArray[np.integer]
    strategy: NDArray[np.integer]
    key: NDArray[np.integer]
    qty: FloatArray
    mark: FloatArray

    def __post_init__(self) -> None:
        length = int(np.asarray(self.qty).size)
        if np.asarray(self.qty).ndim != 1 or np.asarray(self.mark).shape != (length,):
            raise ValueError("PositionBook.qty and PositionBook.mark must be 1-D and equally long")
        _check_codes("world", np.asarray(self.world), length=length, size=len(self.worlds))
        _check_codes(
            "strategy", np.asarray(self.strategy), length=length, size=len(self.strategies)
        )
        _check_codes("key", np.asarray(self.key), length=length, size=len(self.keys))
        if not _sorted_categories(self.worlds):
            raise ValueError("PositionBook.worlds must be sorted and distinct")
        if not _sorted_categories(self.strategies):
            raise ValueError("PositionBook.strategies must be sorted and distinct")
        if not _sorted_keys(self.keys):
            raise ValueError("PositionBook.keys must be sorted (venue None first) and distinct")
        if not bool(np.isfinite(self.qty).all()):
            raise ValueError("PositionBook.qty must be finite")
        if not bool((np.isfinite(self.mark) & (self.mark > 0)).all()):
            raise ValueError("PositionBook.mark must be finite and > 0")

    def __len__(self) -> int:
        return int(self.qty.size)

    @classmethod
    def from_codes(
        cls,
        *,
        worlds: Sequence[str],
        strategies: Sequence[str],
        keys: Sequence[Key],
        world: NDArray[np.integer],
        strategy: NDArray[np.integer],
        key: NDArray[np.integer],
        qty: FloatArray,
        mark: FloatArray,
    ) -> PositionBook:
        """Build a book from codes into distinct but possibly unsorted categories.

        Categories are sorted and the codes re-mapped (O(n + c log c)); the code and
        value arrays given are not modified.
        """
        world_order, world_rank = _rank(worlds, sort_key=_identity)
        strategy_order, strategy_rank = _rank(strategies, sort_key=_identity)
        key_sorted, key_rank = _rank(keys, sort_key=key_order)
        return cls(
            worlds=tuple(world_order),
            strategies=tuple(strategy_order),
            keys=tuple(key_sorted),
            world=world_rank[np.asarray(world, dtype=np.int64)],
            strategy=strategy_rank[np.asarray(strategy, dtype=np.int64)],
            key=key_rank[np.asarray(key, dtype=np.int64)],
            qty=np.asarray(qty, dtype=np.float64),
            mark=np.asarray(mark, dtype=np.float64),
        )

    @classmethod
    def from_id_codes(
        cls,
        *,
        worlds: Sequence[str],
        world: NDArray[np.integer],
        strategies: Sequence[str],
        strategy: NDArray[np.integer],
        venues: Sequence[str | None],
        venue: NDArray[np.integer],
        symbols: Sequence[str],
        symbol: NDArray[np.integer],
        qty: FloatArray,
        mark: FloatArray,
    ) -> PositionBook:
        """A read-only book from codes into distinct (possibly unsorted) categories, one
        code per position and id column — what every reader of positions produces.

        ``venues`` may contain ``None`` (no venue). Netting keys are the (venue, symbol)
        pairs that occur, found by grouping ``venue * len(symbols) + symbol`` — O(n)
        integer work, no per-position tuple — plus sorting the categories. Values must
        already be valid (finite qty, mark > 0).
        """
        n_symbols = max(len(symbols), 1)
        pairs = group(
            np.asarray(venue, dtype=np.int64) * n_symbols + np.asarray(symbol, dtype=np.int64),
            size=max(len(venues), 1) * n_symbols,
        )
        keys: list[Key] = [
            (venues[code // n_symbols], symbols[code % n_symbols]) for code in pairs.ids.tolist()
        ]
        book = cls.from_codes(worlds=worlds, strategies=strategies, keys=keys, world=world,
                              strategy=strategy, key=pairs.inverse, qty=qty, mark=mark)
        for array in (book.world, book.strategy, book.key, book.qty, book.mark):
            array.flags.writeable = False
        return book

    @classmethod
    def from_positions(cls, positions: Sequence[PositionSlice]) -> PositionBook:
        """Factorise wire positions with dicts (O(n) lookups + sorting the categories).

        :param positions: validated ``PositionSlice`` objects.
        :returns: a book whose position ``i`` is ``positions[i]``; its arrays are read-only.
        """
        count = len(positions)
        worlds, world = _factorise([p.world_id for p in positions], sort_key=_identity)
        strategies, strategy = _factorise([p.strategy_id for p in positions], sort_key=_identity)
        venues, venue = _factorise([p.venue for p in positions], sort_key=_venue_order)
        symbols, symbol = _factorise([p.symbol for p in positions], sort_key=_identity)
        return cls.from_id_codes(
            worlds=worlds, world=world, strategies=strategies, strategy=strategy,
            venues=venues, venue=venue, symbols=symbols, symbol=symbol,
            qty=np.fromiter((p.qty for p in positions), dtype=np.float64, count=count),
            mark=np.fromiter((p.mark for p in positions), dtype=np.float64, count=count),
        )

    def select(
        self, *, world_id: str | None = None, strategy_id: str | None = None
    ) -> NDArray[np.bool_]:
        """Mask of the positions of one world and/or one strategy (``None`` = all)."""
        mask = np.ones(len(self), dtype=bool)
        for name, categories, codes in (
            (world_id, self.worlds, self.world),
            (strategy_id, self.strategies, self.strategy),
        ):
            if name is None:
                continue
            try:
                mask &= np.asarray(codes) == categories.index(name)
            except ValueError:
                mask[:] = False
        return mask

    def marks_by_key(self, *, world_id: str | None = None) -> dict[Key, float]:
        """``|qty|``-weighted average mark per key (see :func:`weighted_mark`)."""
        mask = self.select(world_id=world_id)
        groups = group(np.asarray(self.key)[mask], size=len(self.keys))
        marks = weighted_mark(groups, qty=self.qty[mask], mark=self.mark[mask])
        return {self.keys[k]: v for k, v in zip(groups.ids.tolist(), marks.tolist(), strict=True)}

    def net_qty_by_key(
        self, *, world_id: str | None = None, strategy_id: str | None = None
    ) -> dict[Key, float]:
        """Signed ``sum(qty)`` per key (units of the instrument)."""
        mask = self.select(world_id=world_id, strategy_id=strategy_id)
        groups = group(np.asarray(self.key)[mask], size=len(self.keys))
        sums = groups.sum(self.qty[mask])
        return {self.keys[k]: v for k, v in zip(groups.ids.tolist(), sums.tolist(), strict=True)}


def _rank(names: Sequence[_C], *, sort_key: Callable[[_C], Any]) -> tuple[list[_C], IntArray]:
    """Sorted distinct categories and, for each old code, its new code."""
    if len(set(names)) != len(names):
        raise ValueError("PositionBook categories must be distinct")
    order = sorted(range(len(names)), key=lambda i: sort_key(names[i]))
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(names), dtype=np.int64)
    return [names[i] for i in order], rank


def _identity(name: str) -> str:
    return name


def _factorise(column: Sequence[_H], *, sort_key: Callable[[_H], Any]) -> tuple[list[_H], IntArray]:
    """Sorted distinct values of ``column`` and each element's index among them."""
    categories = sorted(dict.fromkeys(column), key=sort_key)
    index = {value: i for i, value in enumerate(categories)}
    codes = np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=len(column))
    return categories, codes


def _venue_order(venue: str | None) -> tuple[bool, str]:
    return (venue is not None, venue or "")


def mark_by_key(
    positions: Sequence[PositionSlice], *, world_id: str | None = None
) -> dict[Key, float]:
    """``|qty|``-weighted average mark per ``(venue, symbol)``.

    ``mark_k = sum(|q_i| * m_i) / sum(|q_i|)`` over the positions at ``k`` (of ``world_id``,
    or of every world when ``None``); the plain mean of the marks when every ``q_i`` is 0.

    :param positions: wire positions.
    :param world_id: restrict to one world; ``None`` = across all worlds.
    :returns: base currency per unit, per key present in the selection.
    """
    return PositionBook.from_positions(positions).marks_by_key(world_id=world_id)


def net_qty_by_key(
    positions: Sequence[PositionSlice],
    *,
    world_id: str | None = None,
    strategy_id: str | None = None,
) -> dict[Key, float]:
    """Net signed quantity ``sum(q_i)`` per ``(venue, symbol)`` (units of the instrument).

    :param positions: wire positions.
    :param world_id: restrict to one world (``None`` = all).
    :param strategy_id: restrict to one strategy (``None`` = all).
    :returns: one entry per key present in the selection.
    """
    book = PositionBook.from_positions(positions)
    return book.net_qty_by_key(world_id=world_id, strategy_id=strategy_id)

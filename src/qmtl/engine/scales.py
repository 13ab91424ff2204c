"""World and strategy scale factors (SPEC 3, first bullets).

Notation for world ``w``: ``B`` = before and ``A`` = after allocation (ratios of total
equity, missing = 0); ``N_w = sum(qty * mark)`` its net notional (base currency).

* ``gw = A / B`` if ``B > 0``; else ``1`` if ``A > 0``; else ``0`` (a world left out of the
  after map is liquidated).
* Strategy ratios (ratios of total equity): an explicit ``strategy_alloc_before_total[w]``
  / ``strategy_alloc_after_total[w]`` map is used as given (a strategy it does not name
  has before = 0). Otherwise *before* is derived: ``n_s / total_equity`` with
  ``n_s = sum(qty * mark)`` of the strategy's positions in ``w`` (``n_s / N_w`` when
  ``total_equity == 0``; all 0 when ``N_w <= 0``), and *after* = ``before * gw``.
* ``gs = after / before`` when before > 0 and the strategy has an explicit after ratio;
  otherwise ``gs = gw`` (derived after = before * gw; before <= 0 gives gw if A > 0 else 0,
  which equals gw).

A *member* is one (world, strategy) pair: every strategy holding a position in the world
plus every strategy named for it in an explicit map. Members are sorted by world, then
strategy id. Cost: O(n) array work plus O(members) dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from qmtl.contracts.errors import PlanInputInvalid

from .book import FloatArray, IntArray, PositionBook, group, sum_by

__all__ = ["AllocationInputs", "Scales", "compute_scales"]

StrategyMap = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class AllocationInputs:
    """The allocation part of a request (ratios of total equity; base currency)."""

    total_equity: float
    world_alloc_after: Mapping[str, float]
    world_alloc_before: Mapping[str, float] | None = None
    strategy_alloc_before_total: StrategyMap | None = None
    strategy_alloc_after_total: StrategyMap | None = None

    def planned_worlds(self, book: PositionBook) -> tuple[str, ...]:
        """Every world with a plan: allocation maps, explicit strategy maps and positions."""
        names = set(self.world_alloc_after) | set(book.worlds)
        for extra in (
            self.world_alloc_before,
            self.strategy_alloc_before_total,
            self.strategy_alloc_after_total,
        ):
            names |= set(extra or {})
        return tuple(sorted(names))


@dataclass(frozen=True, slots=True, eq=False)
class Scales:
    """Scale factors for every planned world and member.

    Per world (index into ``worlds``): ``alloc_before``/``alloc_after`` (B, A),
    ``scale_world`` (gw), ``world_notional`` (N_w) and ``world_gross`` (sum |qty * mark|),
    both in base currency.
    Per member: ``member_world`` (index into ``worlds``), ``member_strategy`` (id),
    ``before``/``after`` (effective ratios of total equity), ``scale`` (gs).
    Per position of the book: ``position_world`` (index into ``worlds``),
    ``position_member`` and ``position_scale`` (the gs applied to it).
    """

    worlds: tuple[str, ...]
    alloc_before: FloatArray
    alloc_after: FloatArray
    scale_world: FloatArray
    world_notional: FloatArray
    world_gross: FloatArray
    member_world: IntArray
    member_strategy: tuple[str, ...]
    before: FloatArray
    after: FloatArray
    scale: FloatArray
    position_world: IntArray
    position_member: IntArray
    position_scale: FloatArray

    def member_slice(self, world_index: int) -> slice:
        """The members of one world (members are sorted by world)."""
        start = int(np.searchsorted(self.member_world, world_index, side="left"))
        stop = int(np.searchsorted(self.member_world, world_index, side="right"))
        return slice(start, stop)

    def scale_by_strategy(self, world_index: int) -> dict[str, float]:
        """``{strategy: gs}`` of one world, sorted by strategy id."""
        span = self.member_slice(world_index)
        names = self.member_strategy[span]
        return dict(zip(names, self.scale[span].tolist(), strict=True))


def _world_scale(before: FloatArray, after: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = after / np.where(before > 0, before, 1.0)
    return np.where(before > 0, ratio, np.where(after > 0, 1.0, 0.0))


def position_notional(book: PositionBook) -> FloatArray:
    """``qty * mark`` per position (base currency); rejects overflow, naming the position."""
    with np.errstate(over="ignore", invalid="ignore"):
        notional = book.qty * book.mark
    require_finite(notional, field="positions", indexed=True)
    return notional


def require_finite(values: FloatArray, *, field: str, indexed: bool = False,
                   what: str | None = None) -> None:
    """Raise :class:`PlanInputInvalid` when ``values`` holds inf/NaN (float overflow).

    ``field`` is the request field to blame (``positions[3]`` when ``indexed``: the index of
    the first bad value); ``what`` says which derived figure overflowed.
    """
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        where = f"{field}[{int(bad[0])}]" if indexed else field
        figure = f" ({what})" if what else ""
        raise PlanInputInvalid(
            f"{where}: the figures{figure} overflow a float; use smaller quantities or ratios",
            field=where,
        )


def compute_scales(book: PositionBook, inputs: AllocationInputs) -> Scales:
    """Compute ``gw`` per world and ``gs`` per member and per position (see module doc).

    :param book: the positions.
    :param inputs: allocations of the request.
    :returns: the scales; every planned world is present.
    :raises PlanInputInvalid: when a ratio quotient or a notional overflows a float.
    """
    worlds = inputs.planned_worlds(book)
    world_index = {name: i for i, name in enumerate(worlds)}
    before_map = inputs.world_alloc_before or {}
    alloc_before = np.array([before_map.get(w, 0.0) for w in worlds], dtype=np.float64)
    alloc_after = np.array([inputs.world_alloc_after.get(w, 0.0) for w in worlds])
    alloc_after = alloc_after.astype(np.float64)
    gw = _world_scale(alloc_before, alloc_after)
    for i in np.flatnonzero(~np.isfinite(gw)).tolist():
        raise PlanInputInvalid(
            f"world_alloc_before.{worlds[i]} is too small: after / before overflows a float",
            field=f"world_alloc_before.{worlds[i]}",
            world_id=worlds[i],
        )

    remap = np.array([world_index[w] for w in book.worlds], dtype=np.int64)
    position_world = remap[np.asarray(book.world, dtype=np.int64)]
    notional = position_notional(book)
    world_notional = sum_by(position_world, notional, size=len(worlds))
    require_finite(world_notional, field="positions", what="world net notional")
    world_gross = sum_by(position_world, np.abs(notional), size=len(worlds))
    require_finite(world_gross, field="positions", what="world gross notional")

    n_strategies = len(book.strategies)
    members = group(
        position_world * n_strategies + np.asarray(book.strategy, dtype=np.int64),
        size=len(worlds) * n_strategies,
    )
    held_world = members.ids // max(n_strategies, 1)
    held_strategy = members.ids % max(n_strategies, 1)
    held_notional = members.sum(notional)

    # Strategies named only in explicit maps join their world with no positions.
    held = set(members.ids.tolist())
    strategy_index = {name: i for i, name in enumerate(book.strategies)}
    extra: set[tuple[int, str]] = set()
    for explicit in (inputs.strategy_alloc_before_total, inputs.strategy_alloc_after_total):
        for world, ratios in (explicit or {}).items():
            for name in ratios:
                code = strategy_index.get(name)
                if code is None or world_index[world] * n_strategies + code not in held:
                    extra.add((world_index[world], name))
    extra_sorted = sorted(extra)
    names = sorted(set(book.strategies) | {name for _, name in extra_sorted})
    name_rank = {name: i for i, name in enumerate(names)}
    book_rank = np.array([name_rank[s] for s in book.strategies], dtype=np.int64)

    member_world = np.concatenate(
        [held_world, np.array([w for w, _ in extra_sorted], dtype=np.int64)]
    )
    member_rank = np.concatenate(
        [book_rank[held_strategy], np.array([name_rank[s] for _, s in extra_sorted], np.int64)]
    )
    member_notional = np.concatenate([held_notional, np.zeros(len(extra_sorted))])
    order = np.lexsort((member_rank, member_world))
    member_world = member_world[order]
    member_strategy = tuple(names[r] for r in member_rank[order].tolist())
    member_notional = member_notional[order]
    sorted_index = np.empty(order.size, dtype=np.int64)  # held-group index -> member index
    sorted_index[order] = np.arange(order.size, dtype=np.int64)
    position_member = sorted_index[members.inverse]

    net = world_notional[member_world]
    denominator = inputs.total_equity if inputs.total_equity > 0 else net
    # A tiny total_equity can make a derived ratio overflow to inf; it is only an error
    # where the ratio divides an explicit after ratio (checked in _apply_explicit).
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        before = np.where(net > 0, member_notional / np.where(net > 0, denominator, 1.0), 0.0)
    scale_world_m = gw[member_world]
    with np.errstate(over="ignore", invalid="ignore"):
        after = np.where(scale_world_m > 0, before * scale_world_m, 0.0)
    scale = scale_world_m.copy()

    _apply_explicit(
        inputs,
        worlds=worlds,
        member_world=member_world,
        member_strategy=member_strategy,
        before=before,
        after=after,
        scale=scale,
        scale_world=gw,
    )
    return Scales(
        worlds=worlds,
        alloc_before=alloc_before,
        alloc_after=alloc_after,
        scale_world=gw,
        world_notional=world_notional,
        world_gross=world_gross,
        member_world=member_world,
        member_strategy=member_strategy,
        before=before,
        after=after,
        scale=scale,
        position_world=position_world,
        position_member=position_member,
        position_scale=scale[position_member],
    )


def _apply_explicit(
    inputs: AllocationInputs,
    *,
    worlds: tuple[str, ...],
    member_world: IntArray,
    member_strategy: tuple[str, ...],
    before: FloatArray,
    after: FloatArray,
    scale: NDArray[np.float64],
    scale_world: FloatArray,
) -> None:
    """Overwrite derived ratios and scales with the explicit maps (arrays owned here)."""
    before_maps = inputs.strategy_alloc_before_total or {}
    after_maps = inputs.strategy_alloc_after_total or {}
    for w, world in enumerate(worlds):
        if world not in before_maps and world not in after_maps:
            continue
        start = int(np.searchsorted(member_world, w, side="left"))
        stop = int(np.searchsorted(member_world, w, side="right"))
        gw = float(scale_world[w])
        for m in range(start, stop):
            name = member_strategy[m]
            if world in before_maps:
                before[m] = before_maps[world].get(name, 0.0)
            explicit_after = after_maps.get(world, {}).get(name) if world in after_maps else None
            if explicit_after is None:
                with np.errstate(over="ignore"):
                    after[m] = before[m] * gw if gw > 0 else 0.0
                scale[m] = gw
                continue
            after[m] = explicit_after
            if not np.isfinite(before[m]):
                raise PlanInputInvalid(
                    f"total_equity is too small: strategy {name!r} of world {world!r} holds "
                    "a notional whose ratio of total equity overflows a float",
                    field="total_equity",
                    world_id=world,
                    strategy_id=name,
                )
            if before[m] > 0:
                with np.errstate(over="ignore"):
                    scale[m] = np.float64(explicit_after) / np.float64(before[m])
                if not np.isfinite(scale[m]):
                    raise PlanInputInvalid(
                        f"strategy_alloc_after_total.{world}.{name}: after / before "
                        "overflows a float",
                        field=f"strategy_alloc_after_total.{world}.{name}",
                        world_id=world,
                        strategy_id=name,
                    )
            else:
                scale[m] = gw

"""Per-strategy orders: each strategy trades its own move (SPEC 3), by hand."""

from __future__ import annotations

from typing import Any

import pytest

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import PlanInputInvalid, RebalanceModeUnsupported
from qmtl.engine import plan_rebalance, split_per_strategy, strategy_orders

from ._build import deltas_of, pos, request


def flat(
    req: MultiWorldRebalanceRequest,
) -> dict[str, dict[str, list[tuple[Any, str, float]]]]:
    split = split_per_strategy(req, plan_rebalance(req))
    return {
        world: {s: [(d.venue, d.symbol, d.delta_qty) for d in ds] for s, ds in by_s.items()}
        for world, by_s in split.items()
    }


def crossed(req: MultiWorldRebalanceRequest) -> dict[str, list[tuple[Any, float]]]:
    return strategy_orders(req, plan_rebalance(req)).crossed()


def test_only_the_strategy_whose_allocation_changed_trades() -> None:
    # s1 and s2 hold 10 BTC each (0.1 of equity each). s1 doubles (0.1 -> 0.2), s2 stays:
    # gs = 2 and 1. World delta = 10 * (2 - 1) + 10 * (1 - 1) = +10.
    # Own moves: s1 +10, s2 0 (no order). A pro-rata split would give +5 / +5.
    req = request(
        total_equity=1_000_000,
        world_alloc_before={"w1": 0.2},
        world_alloc_after={"w1": 0.3},
        strategy_alloc_before_total={"w1": {"s1": 0.1, "s2": 0.1}},
        strategy_alloc_after_total={"w1": {"s1": 0.2, "s2": 0.1}},
        positions=[pos("w1", "s1", "BTC", 10, 50_000), pos("w1", "s2", "BTC", 10, 50_000)],
    )
    assert deltas_of(plan_rebalance(req), "w1") == [(None, "BTC", 10.0)]
    assert flat(req) == {"w1": {"s1": [(None, "BTC", 10.0)], "s2": []}}
    # Both trade the same way: nothing is netted away.
    assert crossed(req) == {"w1": [((None, "BTC"), 0.0)]}


def test_a_short_strategy_extends_its_short_when_its_world_grows() -> None:
    # World x1.2; s1 long 10, s2 short -4 -> own moves s1 +2, s2 -0.8 (a sell, not a buy).
    # World delta +1.2; crossed = (2 + 0.8 - 1.2) / 2 = 0.8.
    req = request(
        world_alloc_before={"w1": 0.5},
        world_alloc_after={"w1": 0.6},
        positions=[pos("w1", "s1", "BTC", 10, 100), pos("w1", "s2", "BTC", -4, 100)],
    )
    assert deltas_of(plan_rebalance(req), "w1") == [(None, "BTC", 1.2)]
    assert flat(req) == {"w1": {"s1": [(None, "BTC", 2.0)], "s2": [(None, "BTC", -0.8)]}}
    assert crossed(req) == {"w1": [((None, "BTC"), 0.8)]}
    split = strategy_orders(req, plan_rebalance(req))
    # Each row carries its strategy's own position (for the reduce-only rule).
    assert split.position.tolist() == [10.0, -4.0]


def test_opposite_moves_cancel_in_the_world_but_not_per_strategy() -> None:
    # s1 5 @ 10 doubles, s2 5 @ 10 is liquidated: world delta 0 (no world order),
    # strategies +5 and -5; crossed = (5 + 5 - 0) / 2 = 5.
    req = request(
        total_equity=1000,
        world_alloc_before={"w1": 0.1},
        world_alloc_after={"w1": 0.1},
        strategy_alloc_before_total={"w1": {"s1": 0.05, "s2": 0.05}},
        strategy_alloc_after_total={"w1": {"s1": 0.1, "s2": 0.0}},
        positions=[pos("w1", "s1", "A", 5, 10), pos("w1", "s2", "A", 5, 10)],
    )
    assert deltas_of(plan_rebalance(req), "w1") == []
    assert flat(req) == {"w1": {"s1": [(None, "A", 5.0)], "s2": [(None, "A", -5.0)]}}
    assert crossed(req) == {"w1": [((None, "A"), 5.0)]}


def test_lot_rounding_is_per_strategy_toward_zero() -> None:
    # Lot 0.1, world x2: s1 0.35 -> +0.35 -> 0.3; s2 0.35 -> 0.3; world 0.7 -> 0.7.
    # The strategies' 0.6 differs from the world's 0.7 by less than one lot each.
    req = request(
        world_alloc_before={"w1": 0.25},
        world_alloc_after={"w1": 0.5},
        lot_size_by_symbol={"A": 0.1},
        positions=[pos("w1", "s1", "A", 0.35, 10), pos("w1", "s2", "A", 0.35, 10)],
    )
    assert deltas_of(plan_rebalance(req), "w1") == [(None, "A", 0.7)]
    assert flat(req) == {"w1": {"s1": [(None, "A", 0.3)], "s2": [(None, "A", 0.3)]}}


def test_dust_uses_the_worlds_mark_at_the_key() -> None:
    # s1 1 @ 100 and s2 3 @ 200 at A: world mark (1 * 100 + 3 * 200) / 4 = 175.
    # Explicit maps: s1 doubles (+1), s2 unchanged. Threshold 150: s1's 1 * 175 = 175 is
    # kept (with its own mark 100 it would have been dust).
    req = request(
        total_equity=10_000,
        world_alloc_before={"w1": 0.1},
        world_alloc_after={"w1": 0.1},
        strategy_alloc_before_total={"w1": {"s1": 0.01, "s2": 0.06}},
        strategy_alloc_after_total={"w1": {"s1": 0.02, "s2": 0.06}},
        min_trade_notional=150,
        positions=[pos("w1", "s1", "A", 1, 100), pos("w1", "s2", "A", 3, 200)],
    )
    assert flat(req) == {"w1": {"s1": [(None, "A", 1.0)], "s2": []}}
    # Threshold 175.01: 175 is strictly below -> dust.
    higher = req.model_copy(update={"min_trade_notional": 175.01})
    assert flat(higher) == {"w1": {"s1": [], "s2": []}}
    assert crossed(higher) == {}


def test_dropped_dust_does_not_shift_attribution() -> None:
    # gw = 0.5 at X @ 100: a_small 0.01 -> -0.005 (notional 0.5 < 1: dust), b_mid 1 -> -0.5,
    # c_big 3 -> -1.5. Each keeps exactly its own move.
    req = request(
        world_alloc_before={"w1": 0.5},
        world_alloc_after={"w1": 0.25},
        min_trade_notional=1,
        positions=[
            pos("w1", "a_small", "X", 0.01, 100),
            pos("w1", "b_mid", "X", 1, 100),
            pos("w1", "c_big", "X", 3, 100),
        ],
    )
    assert flat(req) == {
        "w1": {"a_small": [], "b_mid": [(None, "X", -0.5)], "c_big": [(None, "X", -1.5)]}
    }


def test_strategies_only_trade_keys_they_hold() -> None:
    # gw = 2: s1 holds A (+1) and v:B (+1), s2 holds v:B (+3).
    req = request(
        world_alloc_before={"w1": 0.5},
        world_alloc_after={"w1": 1.0},
        positions=[
            pos("w1", "s1", "A", 1, 10),
            pos("w1", "s1", "B", 1, 10, venue="v"),
            pos("w1", "s2", "B", 3, 10, venue="v"),
        ],
    )
    assert flat(req) == {"w1": {"s1": [(None, "A", 1.0), ("v", "B", 1.0)], "s2": [("v", "B", 3.0)]}}


def _overlay_request(before: float, after: float, **extra: Any) -> MultiWorldRebalanceRequest:
    return request(
        total_equity=1000,
        mode="overlay",
        overlay={"instrument_by_world": {"w1": "ES"}, "price_by_symbol": {"ES": 10}},
        world_alloc_before={"w1": before},
        world_alloc_after={"w1": after},
        positions=[pos("w1", "s1", "X", 1, 100), pos("w1", "s2", "Y", 3, 100)],
        **extra,
    )


def test_overlay_strategies_trade_their_own_notional() -> None:
    # N_s1 = 100, N_s2 = 300, ES @ 10. gw = 1.5: s1 0.5 * 100 / 10 = +5, s2 +15
    # (the world's overlay trade is +20).
    assert flat(_overlay_request(0.5, 0.75)) == {
        "w1": {"s1": [(None, "ES", 5.0)], "s2": [(None, "ES", 15.0)]}
    }
    # gw = 0.5: -5 / -15.
    assert flat(_overlay_request(0.5, 0.25)) == {
        "w1": {"s1": [(None, "ES", -5.0)], "s2": [(None, "ES", -15.0)]}
    }
    # Explicit maps: gs = 0.3 / 0.2 = 1.5 and 0.1 / 0.2 = 0.5 -> s1 +5, s2 -15;
    # crossed = (5 + 15 - 10) / 2 = 5.
    maps = {
        "strategy_alloc_before_total": {"w1": {"s1": 0.2, "s2": 0.2}},
        "strategy_alloc_after_total": {"w1": {"s1": 0.3, "s2": 0.1}},
    }
    req = _overlay_request(0.5, 0.75, **maps)
    assert flat(req) == {"w1": {"s1": [(None, "ES", 5.0)], "s2": [(None, "ES", -15.0)]}}
    assert crossed(req) == {"w1": [((None, "ES"), 5.0)]}


def test_overlay_drops_strategy_trades_below_min_order_notional() -> None:
    # +5 and +15 ES at 10 -> notionals 50 and 150; minimum 60 drops s1's.
    req = _overlay_request(0.5, 0.75)
    assert req.overlay is not None
    req = req.model_copy(
        update={"overlay": req.overlay.model_copy(update={"min_order_notional": 60})}
    )
    assert flat(req) == {"w1": {"s1": [], "s2": [(None, "ES", 15.0)]}}


def test_every_world_and_strategy_is_listed() -> None:
    req = request(
        world_alloc_before={"w1": 0.5, "w2": 0.1},
        world_alloc_after={"w1": 0.5, "w2": 0.1},
        strategy_alloc_after_total={"w2": {"s9": 0.1}},
        positions=[pos("w1", "s1", "X", 1, 10)],
    )
    assert flat(req) == {"w1": {"s1": []}, "w2": {"s9": []}}
    assert flat(request(world_alloc_after={"w1": 0.5})) == {"w1": {}}


def test_positions_of_a_world_the_plan_lacks_are_refused() -> None:
    req = request(world_alloc_before={"w1": 0.5}, positions=[pos("w1", "s1", "X", 1, 10)])
    other = plan_rebalance(request(world_alloc_before={"w2": 0.5}))
    with pytest.raises(PlanInputInvalid) as caught:
        split_per_strategy(req, other)
    assert caught.value.context["world_id"] == "w1"
    hybrid = request(mode="hybrid", world_alloc_before={"w1": 0.5})
    with pytest.raises(RebalanceModeUnsupported):
        split_per_strategy(hybrid, plan_rebalance(req))

"""Per-strategy split of world deltas (SPEC 3, last bullets), by hand."""

from __future__ import annotations

from typing import Any

import pytest

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import PlanInputInvalid, RebalanceModeUnsupported
from qmtl.engine import plan_rebalance, split_per_strategy

from ._build import pos, request


def flat(
    req: MultiWorldRebalanceRequest,
) -> dict[str, dict[str, list[tuple[Any, str, float]]]]:
    split = split_per_strategy(req, plan_rebalance(req))
    return {
        world: {s: [(d.venue, d.symbol, d.delta_qty) for d in ds] for s, ds in by_s.items()}
        for world, by_s in split.items()
    }


def test_split_pro_rata_by_exposure() -> None:
    # World delta -0.5 BTC; exposures 0.6 * 60000 = 36000 and 0.9 * 60000 = 54000
    # -> s1: -0.5 * 36000 / 90000 = -0.2, s2: -0.5 * 54000 / 90000 = -0.3.
    req = request(
        total_equity=100_000,
        world_alloc_before={"w1": 0.3},
        world_alloc_after={"w1": 0.2},
        positions=[pos("w1", "s1", "BTC", 0.6, 60_000), pos("w1", "s2", "BTC", 0.9, 60_000)],
    )
    assert flat(req) == {"w1": {"s1": [(None, "BTC", -0.2)], "s2": [(None, "BTC", -0.3)]}}
    # Same with lot 0.001: 500 lots -> quotas 200 and 300 lots.
    with_lot = req.model_copy(update={"lot_size_by_symbol": {"BTC": 0.001}})
    assert flat(with_lot) == {"w1": {"s1": [(None, "BTC", -0.2)], "s2": [(None, "BTC", -0.3)]}}


def test_exact_lot_quotas() -> None:
    # gw = 0 (liquidation), lot 0.1. s1 holds 0.3 and s2 holds 0.7 A at the same mark;
    # world delta -1.0 = 10 lots; quotas 10 * 3/10 = 3 and 10 * 7/10 = 7 lots -> -0.3 / -0.7.
    req = request(
        world_alloc_before={"w1": 0.5},
        lot_size_by_symbol={"A": 0.1},
        positions=[pos("w1", "s1", "A", 0.3, 10), pos("w1", "s2", "A", 0.7, 10)],
    )
    assert flat(req) == {"w1": {"s1": [(None, "A", -0.3)], "s2": [(None, "A", -0.7)]}}


def test_remainders_go_to_the_largest_fractions() -> None:
    # Exposures at A @ 10: s1 1 (10), s2 2 (20), s3 2 (20). gw = 0.61 / 0.5 = 1.22 ->
    # world delta = 5 * 0.22 = +1.1 = 11 lots of 0.1. Quotas 11 * 10/50 = 2.2,
    # 11 * 20/50 = 4.4 and 4.4 -> floors 2, 4, 4 (10 lots); 1 lot left goes to the largest
    # fraction, 0.4 (tie s2/s3 -> first by id, s2) -> s1 0.2, s2 0.5, s3 0.4 (sum 1.1).
    req = request(
        world_alloc_before={"w1": 0.5},
        world_alloc_after={"w1": 0.61},
        lot_size_by_symbol={"A": 0.1},
        positions=[
            pos("w1", "s1", "A", 1, 10),
            pos("w1", "s2", "A", 2, 10),
            pos("w1", "s3", "A", 2, 10),
        ],
    )
    response = plan_rebalance(req)
    assert [d.delta_qty for d in response.per_world["w1"].deltas] == [1.1]
    assert flat(req) == {
        "w1": {"s1": [(None, "A", 0.2)], "s2": [(None, "A", 0.5)], "s3": [(None, "A", 0.4)]}
    }


def test_dropped_dust_piece_does_not_shift_attribution() -> None:
    # Regression for the original platform's bug (pieces re-zipped with the wrong ids once
    # a dust piece was removed). Exposures at X @ 100: a_small 0.01 (1), b_mid 1 (100),
    # c_big 3 (300); gw = 0.5 -> world delta = 4.01 * -0.5 = -2.005 (notional 200.5).
    # Pieces: a_small -0.005 (notional 0.5 < 1: dust), b_mid -0.5, c_big -1.5.
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


def test_strategies_without_exposure_at_the_key_get_nothing() -> None:
    # s1 holds A and B, s2 holds only B. The A delta goes entirely to s1.
    req = request(
        world_alloc_before={"w1": 0.5},
        world_alloc_after={"w1": 1.0},
        positions=[
            pos("w1", "s1", "A", 1, 10),
            pos("w1", "s1", "B", 1, 10, venue="v"),
            pos("w1", "s2", "B", 3, 10, venue="v"),
        ],
    )
    # gw = 2: A +1 (all s1); B +4 split 1:3 -> s1 +1, s2 +3.
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


def test_overlay_split_uses_after_weights_for_buys_and_before_for_sells() -> None:
    # N = 400; derived before: s1 100/1000 = 0.1, s2 300/1000 = 0.3 (1:3); after = before*gw.
    # Buy: gw = 1.5 -> +0.5 * 400 / 10 = +20 ES -> s1 +5, s2 +15 (after weights 1:3).
    assert flat(_overlay_request(0.5, 0.75)) == {
        "w1": {"s1": [(None, "ES", 5.0)], "s2": [(None, "ES", 15.0)]}
    }
    # Sell: gw = 0.5 -> -20 ES -> before weights 1:3 -> -5 / -15.
    assert flat(_overlay_request(0.5, 0.25)) == {
        "w1": {"s1": [(None, "ES", -5.0)], "s2": [(None, "ES", -15.0)]}
    }
    # Explicit maps: buys follow after (0.3 : 0.1), sells follow before (0.2 : 0.2).
    maps = {
        "strategy_alloc_before_total": {"w1": {"s1": 0.2, "s2": 0.2}},
        "strategy_alloc_after_total": {"w1": {"s1": 0.3, "s2": 0.1}},
    }
    assert flat(_overlay_request(0.5, 0.75, **maps)) == {
        "w1": {"s1": [(None, "ES", 15.0)], "s2": [(None, "ES", 5.0)]}
    }
    assert flat(_overlay_request(0.5, 0.25, **maps)) == {
        "w1": {"s1": [(None, "ES", -10.0)], "s2": [(None, "ES", -10.0)]}
    }


def test_overlay_split_is_equal_when_weights_are_zero() -> None:
    # Explicit after ratios are all 0 for a buy -> equal split of +20 -> +10 each.
    req = _overlay_request(0.5, 0.75, strategy_alloc_after_total={"w1": {"s1": 0.0, "s2": 0.0}})
    assert flat(req) == {"w1": {"s1": [(None, "ES", 10.0)], "s2": [(None, "ES", 10.0)]}}


def test_overlay_split_drops_pieces_below_min_order_notional() -> None:
    # +20 ES split 5 / 15 at price 10 -> notionals 50 and 150; minimum 60 drops s1's piece
    # (the world order itself is 200 >= 60).
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


def test_split_refuses_foreign_worlds_and_hybrid() -> None:
    req = request(world_alloc_before={"w1": 0.5}, positions=[pos("w1", "s1", "X", 1, 10)])
    response = plan_rebalance(req)
    other = request(world_alloc_before={"w2": 0.5})
    with pytest.raises(PlanInputInvalid) as caught:
        split_per_strategy(other, response)
    assert caught.value.context["world_id"] == "w1"
    # A world of the plan without deltas that the request does not know: listed, empty.
    empty = plan_rebalance(request(world_alloc_after={"w7": 0.5}))
    assert split_per_strategy(req, empty) == {"w7": {}}
    hybrid = request(mode="hybrid", world_alloc_before={"w1": 0.5})
    with pytest.raises(RebalanceModeUnsupported):
        split_per_strategy(hybrid, response)

"""Scaling plans computed by hand (SPEC 3)."""

from __future__ import annotations

import numpy as np
import pytest

from qmtl.contracts.errors import (
    OverlayConfigRequired,
    PlanInputInvalid,
    RebalanceModeUnsupported,
)
from qmtl.engine import AllocationInputs, PositionBook, plan_book, plan_rebalance
from qmtl.engine.scales import compute_scales

from ._build import deltas_of, global_of, pos, request


def test_world_scale_two_thirds_sells_half_a_bitcoin() -> None:
    # gw = 0.2 / 0.3 = 2/3; net BTC = 0.6 + 0.9 = 1.5; delta = 1.5 * (2/3 - 1) = -0.5
    # (0.6 * -1/3 = -0.2 and 0.9 * -1/3 = -0.3 in exact arithmetic; float noise cleaned).
    response = plan_rebalance(
        request(
            total_equity=100_000,
            world_alloc_before={"w1": 0.3},
            world_alloc_after={"w1": 0.2},
            positions=[
                pos("w1", "s1", "BTCUSDT", 0.6, 60_000),
                pos("w1", "s2", "BTCUSDT", 0.9, 60_000),
            ],
        )
    )
    plan = response.per_world["w1"]
    assert plan.scale_world == pytest.approx(2 / 3, rel=1e-15)
    assert plan.scale_by_strategy == pytest.approx({"s1": 2 / 3, "s2": 2 / 3}, rel=1e-15)
    assert deltas_of(response, "w1") == [(None, "BTCUSDT", -0.5)]
    assert global_of(response) == [(None, "BTCUSDT", -0.5)]
    assert response.schema_version == 1
    assert response.alpha_metrics is None and response.rebalance_intent is None
    assert response.overlay_deltas is None


def test_lot_size_rounds_toward_zero_without_artefacts() -> None:
    # gw = 0.25 / 0.5 = 0.5; move = 0.6666 * (0.5 - 1) = -0.3333; lot 0.001 -> 333 lots
    # toward zero -> -0.333 exactly.
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.5},
            world_alloc_after={"w1": 0.25},
            lot_size_by_symbol={"ETH": 0.001},
            positions=[pos("w1", "s1", "ETH", 0.6666, 3000)],
        )
    )
    assert deltas_of(response, "w1") == [(None, "ETH", -0.333)]
    assert global_of(response) == [(None, "ETH", -0.333)]


def test_lot_multiple_stays_exact() -> None:
    # gw = 0.75 / 0.5 = 1.5; move = 0.6 * 0.5 = 0.3; 0.3 / 0.1 = 2.9999999999999996 in
    # floats, + 1e-9 -> 3 lots -> 0.3 (not 0.30000000000000004 and not 0.2).
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.5},
            world_alloc_after={"w1": 0.75},
            lot_size_by_symbol={"SOL": 0.1},
            positions=[pos("w1", "s1", "SOL", 0.6, 150)],
        )
    )
    [(_, _, qty)] = deltas_of(response, "w1")
    assert qty == 0.3
    assert repr(qty) == "0.3"


def test_float_noise_is_cleaned_to_twelve_digits() -> None:
    # 0.1 + 0.2 = 0.30000000000000004 as floats; gw = 0 -> move = -0.30000000000000004
    # -> cleaned to 12 significant digits = -0.3.
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.5},
            world_alloc_after={},
            positions=[pos("w1", "s1", "X", 0.1, 10), pos("w1", "s2", "X", 0.2, 10)],
        )
    )
    assert deltas_of(response, "w1") == [(None, "X", -0.3)]


def test_min_trade_notional_drops_below_and_keeps_equal() -> None:
    # gw = 0.5 / 1.0 = 0.5. AAA: 2 @ 100 -> -1, notional 100 == threshold -> kept.
    # BBB: 2 @ 99 -> -1, notional 99 < 100 -> dust, dropped (world and global).
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 1.0},
            world_alloc_after={"w1": 0.5},
            min_trade_notional=100,
            positions=[pos("w1", "s1", "AAA", 2, 100), pos("w1", "s1", "BBB", 2, 99)],
        )
    )
    assert deltas_of(response, "w1") == [(None, "AAA", -1.0)]
    assert global_of(response) == [(None, "AAA", -1.0)]


def test_short_position_is_bought_back() -> None:
    # gw = 0.25 / 0.5 = 0.5; world net notional = -100 <= 0 -> derived before ratios are 0
    # -> gs = gw = 0.5; move = -1 * (0.5 - 1) = +0.5 (buy back half the short).
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.5},
            world_alloc_after={"w1": 0.25},
            positions=[pos("w1", "s1", "X", -1, 100)],
        )
    )
    assert response.per_world["w1"].scale_by_strategy == {"s1": 0.5}
    assert deltas_of(response, "w1") == [(None, "X", 0.5)]


def test_explicit_strategy_maps_override_the_world_scale() -> None:
    # gw = 0.5 / 0.5 = 1, but s1: 0.5 / 0.25 = 2 -> BTC 1 * (2 - 1) = +1;
    # s2: 0 / 0.25 = 0 -> ETH 2 * (0 - 1) = -2; s3 is absent from the after map -> gw = 1.
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.5},
            world_alloc_after={"w1": 0.5},
            strategy_alloc_before_total={"w1": {"s1": 0.25, "s2": 0.25}},
            strategy_alloc_after_total={"w1": {"s1": 0.5, "s2": 0.0}},
            positions=[
                pos("w1", "s1", "BTC", 1, 100),
                pos("w1", "s2", "ETH", 2, 50),
                pos("w1", "s3", "SOL", 7, 10),
            ],
        )
    )
    assert response.per_world["w1"].scale_by_strategy == {"s1": 2.0, "s2": 0.0, "s3": 1.0}
    assert deltas_of(response, "w1") == [(None, "BTC", 1.0), (None, "ETH", -2.0)]


def test_strategy_with_no_before_ratio_uses_the_world_scale() -> None:
    # s2 is missing from the explicit before map -> before = 0 -> gs = gw = 0.6/0.4 = 1.5.
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.4},
            world_alloc_after={"w1": 0.6},
            strategy_alloc_before_total={"w1": {"s1": 0.4}},
            strategy_alloc_after_total={"w1": {"s1": 0.2, "s2": 0.4}},
            positions=[pos("w1", "s1", "A", 4, 10), pos("w1", "s2", "B", 2, 10)],
        )
    )
    # s1: 0.2 / 0.4 = 0.5 -> A 4 * -0.5 = -2; s2: 2 * (1.5 - 1) = +1
    # (0.6 / 0.4 is 1.4999999999999998 in floats; the delta is cleaned to 1.0).
    scales = response.per_world["w1"].scale_by_strategy
    assert scales == {"s1": 0.5, "s2": pytest.approx(1.5, rel=1e-15)}
    assert deltas_of(response, "w1") == [(None, "A", -2.0), (None, "B", 1.0)]


def test_world_missing_from_after_map_is_liquidated() -> None:
    # w2 is absent from the after map: A = 0 -> gw = 0 -> every position is closed.
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.5, "w2": 0.5},
            world_alloc_after={"w1": 0.5},
            positions=[
                pos("w1", "s1", "X", 3, 10),
                pos("w2", "s1", "X", 2, 10),
                pos("w2", "s2", "Y", -4, 5, venue="v1"),
            ],
        )
    )
    assert response.per_world["w1"].scale_world == 1.0
    assert deltas_of(response, "w1") == []
    assert response.per_world["w2"].scale_world == 0.0
    assert deltas_of(response, "w2") == [(None, "X", -2.0), ("v1", "Y", 4.0)]
    assert global_of(response) == [(None, "X", -2.0), ("v1", "Y", 4.0)]


def test_two_worlds_net_quantities_even_when_marks_differ() -> None:
    # w1: gw = 0.2/0.1 = 2, holds 1 @ 100 -> +1. w2: gw = 0.1/0.2 = 0.5, holds 3 @ 110
    # -> -1.5. Global = +1 - 1.5 = -0.5 units (quantities add; marks are not averaged).
    positions = [pos("w1", "s1", "X", 1, 100), pos("w2", "s1", "X", 3, 110)]
    fields = {
        "world_alloc_before": {"w1": 0.1, "w2": 0.2},
        "world_alloc_after": {"w1": 0.2, "w2": 0.1},
        "positions": positions,
    }
    response = plan_rebalance(request(**fields))
    assert deltas_of(response, "w1") == [(None, "X", 1.0)]
    assert deltas_of(response, "w2") == [(None, "X", -1.5)]
    assert global_of(response) == [(None, "X", -0.5)]

    # Global dust uses the key's |qty|-weighted mark across worlds:
    # (1 * 100 + 3 * 110) / 4 = 107.5; |-0.5 * 107.5| = 53.75 < 60 -> dropped, while the
    # world deltas (1 * 100 = 100 and 1.5 * 110 = 165) are kept.
    response = plan_rebalance(request(**fields, min_trade_notional=60))
    assert deltas_of(response, "w1") == [(None, "X", 1.0)]
    assert deltas_of(response, "w2") == [(None, "X", -1.5)]
    assert global_of(response) == []


def test_world_dust_uses_the_quantity_weighted_mark() -> None:
    # One world, two positions at X: 1 @ 100 and 3 @ 200 -> mark (100 + 600) / 4 = 175.
    # gw = 0.9/1.0 -> delta = 4 * -0.1 = -0.4 -> notional 0.4 * 175 = 70.
    fields = {
        "world_alloc_before": {"w1": 1.0},
        "world_alloc_after": {"w1": 0.9},
        "positions": [pos("w1", "s1", "X", 1, 100), pos("w1", "s2", "X", 3, 200)],
    }
    assert deltas_of(plan_rebalance(request(**fields, min_trade_notional=70)), "w1") == [
        (None, "X", -0.4)
    ]
    assert deltas_of(plan_rebalance(request(**fields, min_trade_notional=70.01)), "w1") == []


def test_opposing_moves_cancel_to_no_delta() -> None:
    # s1 doubles (+1 X), s2 (short 1 X) also doubles (-1 X): the world nets to 0 -> no delta.
    response = plan_rebalance(
        request(
            world_alloc_before={"w1": 0.5},
            world_alloc_after={"w1": 0.5},
            strategy_alloc_before_total={"w1": {"s1": 0.1, "s2": 0.1}},
            strategy_alloc_after_total={"w1": {"s1": 0.2, "s2": 0.2}},
            positions=[pos("w1", "s1", "X", 1, 10), pos("w1", "s2", "X", -1, 10)],
        )
    )
    assert deltas_of(response, "w1") == []
    assert global_of(response) == []


def test_worlds_without_positions_are_still_planned() -> None:
    response = plan_rebalance(
        request(
            world_alloc_before={"b_only": 0.2, "both": 0.1},
            world_alloc_after={"a_only": 0.3, "both": 0.2},
            strategy_alloc_after_total={"strat_only": {"s9": 0.1}},
            positions=[],
        )
    )
    assert list(response.per_world) == ["a_only", "b_only", "both", "strat_only"]
    assert {w: p.scale_world for w, p in response.per_world.items()} == {
        "a_only": 1.0,  # B = 0, A > 0
        "b_only": 0.0,  # A = 0
        "both": 2.0,  # 0.2 / 0.1
        "strat_only": 0.0,  # A = B = 0
    }
    assert response.per_world["strat_only"].scale_by_strategy == {"s9": 0.0}
    assert all(plan.deltas == [] for plan in response.per_world.values())
    assert response.global_deltas == []


def test_per_world_and_deltas_are_ordered() -> None:
    # Venue None sorts first, then venue, then symbol; worlds by id.
    positions = [
        pos("wb", "s1", "ZZZ", 1, 1, venue="v2"),
        pos("wb", "s1", "AAA", 1, 1, venue="v2"),
        pos("wb", "s1", "MMM", 1, 1),
        pos("wb", "s1", "BBB", 1, 1, venue="v1"),
        pos("wa", "s1", "AAA", 1, 1),
    ]
    response = plan_rebalance(
        request(world_alloc_before={"wa": 0.5, "wb": 0.5}, positions=positions)
    )
    assert list(response.per_world) == ["wa", "wb"]
    assert [(v, s) for v, s, _ in deltas_of(response, "wb")] == [
        (None, "MMM"),
        ("v1", "BBB"),
        ("v2", "AAA"),
        ("v2", "ZZZ"),
    ]
    assert [(v, s) for v, s, _ in global_of(response)] == [
        (None, "AAA"),
        (None, "MMM"),
        ("v1", "BBB"),
        ("v2", "AAA"),
        ("v2", "ZZZ"),
    ]
    assert "venue" not in response.model_dump()["global_deltas"][0]


def test_hybrid_mode_is_unsupported() -> None:
    with pytest.raises(RebalanceModeUnsupported) as caught:
        plan_rebalance(request(mode="HYBRID"))
    assert caught.value.code == "E_REBALANCE_MODE_UNSUPPORTED"
    assert caught.value.status_code == 501


def test_overlay_without_config_is_refused() -> None:
    with pytest.raises(OverlayConfigRequired):
        plan_rebalance(request(mode="overlay"))


def test_overflowing_figures_are_a_coded_error_not_nan() -> None:
    huge = request(
        world_alloc_before={"w1": 0.5},
        world_alloc_after={"w1": 0.25},
        positions=[pos("w1", "s1", "X", 1, 1), pos("w1", "s1", "Y", 1e308, 10)],
    )
    with pytest.raises(PlanInputInvalid) as caught:
        plan_rebalance(huge)
    assert caught.value.context["field"] == "positions[1]"
    assert caught.value.status_code == 422

    tiny_before = request(
        world_alloc_before={"w1": 0.5},
        world_alloc_after={"w1": 0.5},
        strategy_alloc_before_total={"w1": {"s1": 1e-310}},
        strategy_alloc_after_total={"w1": {"s1": 1e10}},
        positions=[pos("w1", "s1", "X", 1, 1)],
    )
    with pytest.raises(PlanInputInvalid) as caught:
        plan_rebalance(tiny_before)
    assert caught.value.context["strategy_id"] == "s1"


def test_derived_before_ratios() -> None:
    # s1: 1 @ 100, s2: 3 @ 100; world net notional 400.
    positions = [pos("w1", "s1", "X", 1, 100), pos("w1", "s2", "Y", 3, 100)]
    req = request(total_equity=1000, world_alloc_before={"w1": 0.4}, positions=positions)
    book = PositionBook.from_positions(req.positions)

    def before(total_equity: float, after: float) -> list[float]:
        inputs = AllocationInputs(
            total_equity=total_equity,
            world_alloc_before={"w1": 0.4},
            world_alloc_after={"w1": after},
        )
        scales = compute_scales(book, inputs)
        return [float(x) for x in scales.before]

    assert before(1000, 0.4) == [0.1, 0.3]  # 100 / 1000, 300 / 1000
    assert before(0, 0.4) == [0.25, 0.75]  # total equity 0 -> 100 / 400, 300 / 400
    short = PositionBook.from_positions(
        request(positions=[pos("w1", "s1", "X", -1, 100), pos("w1", "s2", "Y", 0.5, 100)]).positions
    )
    scales = compute_scales(
        short, AllocationInputs(total_equity=1000, world_alloc_after={"w1": 0.1})
    )
    assert scales.before.tolist() == [0.0, 0.0]  # net notional -50 <= 0


def test_a_tiny_total_equity_gives_scales_without_an_overflow_warning() -> None:
    # Issue #10 item 3 (reported by the console helper): 100 / 1e-300 overflows the derived
    # before ratio. It is only a divisor under an explicit after ratio, so the scales are
    # the world's (0.2 / 0.4 = 0.5) and no RuntimeWarning is raised (pytest makes warnings
    # errors; a warning was a 500 in servers run that way).
    book = PositionBook.from_positions(
        request(positions=[pos("w1", "s1", "X", 1, 100), pos("w1", "s2", "Y", 3, 100)]).positions
    )
    for total_equity in (1e-300, 8.7e-129, 5e-324):
        scales = compute_scales(
            book,
            AllocationInputs(
                total_equity=total_equity,
                world_alloc_before={"w1": 0.4},
                world_alloc_after={"w1": 0.2},
            ),
        )
        assert scales.scale.tolist() == [0.5, 0.5]
        assert scales.position_scale.tolist() == [0.5, 0.5]
    # An explicit after ratio divides by the derived before 100 / 5e-324 = inf: 422 naming
    # total_equity (with 1e-300 it is 1e302, finite: s1's gs = 0.1 / 1e302).
    explicit = AllocationInputs(
        total_equity=5e-324,
        world_alloc_before={"w1": 0.4},
        world_alloc_after={"w1": 0.2},
        strategy_alloc_after_total={"w1": {"s1": 0.1}},
    )
    with pytest.raises(PlanInputInvalid) as caught:
        compute_scales(book, explicit)
    assert caught.value.context["field"] == "total_equity"


def test_inputs_are_not_modified() -> None:
    req = request(
        world_alloc_before={"w1": 0.3},
        world_alloc_after={"w1": 0.2},
        lot_size_by_symbol={"X": 0.01},
        positions=[pos("w1", "s1", "X", 1.5, 10), pos("w1", "s2", "Y", -2, 5, venue="v")],
    )
    before = req.model_dump()
    plan_rebalance(req)
    assert req.model_dump() == before

    arrays = {
        "world": np.array([0, 0, 1]),
        "strategy": np.array([0, 1, 1]),
        "key": np.array([1, 0, 1]),
        "qty": np.array([1.0, -2.0, 3.0]),
        "mark": np.array([10.0, 20.0, 30.0]),
    }
    copies = {name: array.copy() for name, array in arrays.items()}
    for array in arrays.values():
        array.flags.writeable = False
    book = PositionBook(
        worlds=("w1", "w2"), strategies=("s1", "s2"), keys=((None, "A"), ("v", "B")), **arrays
    )
    plan = plan_book(
        book,
        AllocationInputs(
            total_equity=100, world_alloc_before={"w1": 0.5, "w2": 0.5}, world_alloc_after={}
        ),
    )
    # Liquidation: w1 A: +2 (short closed), w1 v/B: -1, w2 v/B: -3.
    assert plan.delta_qty.tolist() == [2.0, -1.0, -3.0]
    assert plan.global_qty.tolist() == [2.0, -4.0]
    for name, array in arrays.items():
        np.testing.assert_array_equal(array, copies[name])


@pytest.mark.parametrize("lot", [1e-320, 5e-324, 1e-300])
def test_a_lot_too_small_for_the_float_grid_leaves_quantities_unrounded(lot: float) -> None:
    # |delta| / lot overflows (1e-320, 5e-324) or exceeds MAX_LOTS (1e-300): the world delta
    # is kept as netted, and so is the global one (it was -inf, then a 500, before).
    # gw = 0.25 / 0.5 = 0.5: X moves (1 + 3) x (0.5 - 1) = -2.
    response = plan_rebalance(request(
        world_alloc_before={"w1": 0.5}, world_alloc_after={"w1": 0.25},
        lot_size_by_symbol={"X": lot},
        positions=[pos("w1", "s1", "X", 1, 10), pos("w1", "s2", "X", 3, 10)],
    ))
    assert deltas_of(response, "w1") == [(None, "X", -2.0)]
    assert global_of(response) == [(None, "X", -2.0)]


def test_a_summed_qty_that_overflows_is_refused_not_cancelled_to_zero() -> None:
    # Each |qty| is finite but their sum is inf; "noise" cancelling against an infinite
    # gross would silently turn the -1e308 move into no trade.
    huge = request(
        world_alloc_before={"w1": 0.5}, world_alloc_after={"w1": 0.25},
        positions=[pos("w1", "s1", "X", 1e308, 1e-10), pos("w1", "s2", "X", 1e308, 1e-10)],
    )
    with pytest.raises(PlanInputInvalid) as caught:
        plan_rebalance(huge)
    assert caught.value.context["field"] == "positions"


def test_a_global_delta_survives_a_key_gross_past_the_float_maximum() -> None:
    # X is held in two worlds (1e308 each; each world's summed |qty| is finite, the key's
    # overflows). w1 halves: -5e307 at mark 1 (kept); w2 halves: -5e307 at mark 5e-324
    # (notional ~2.5e-16 < 1: dust). Global: -5e307 at the key's mark (1 + 5e-324) / 2 =
    # 0.5 -> notional 2.5e307, kept. An infinite key gross cancelled it as noise, and an
    # overflowing weight sum priced it at 5e-324 (dust): both dropped it silently.
    req = request(
        world_alloc_before={"w1": 0.5, "w2": 0.2},
        world_alloc_after={"w1": 0.25, "w2": 0.1},
        min_trade_notional=1.0,
        positions=[pos("w1", "s1", "X", 1e308, 1.0), pos("w2", "s2", "X", 1e308, 5e-324)],
    )
    response = plan_rebalance(req)
    assert deltas_of(response, "w1") == [(None, "X", -5e307)]
    assert deltas_of(response, "w2") == []
    assert global_of(response) == [(None, "X", -5e307)]

"""The explain document: golden figures by hand, and its final deltas are the plan's."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given

from qmtl.contracts import Disposition, RebalanceExplanation
from qmtl.contracts.errors import (
    OverlayConfigRequired,
    PlanInputInvalid,
    RebalanceModeUnsupported,
)
from qmtl.engine import plan_rebalance
from qmtl.engine.explain import explain_document, explain_rebalance

from ._build import pos, request
from .test_planning_properties import SETTINGS, requests


def golden_request() -> dict[str, object]:
    """World w keeps 0.5 but moves capital from strategy a (0.2 -> 0.1, gs = 0.5) to b
    (0.3 -> 0.45, gs = 1.5); world v halves (0.2 -> 0.1, gw = 0.5). Threshold 5.

    w, X: a moves 12 x (0.5 - 1) = -6, b moves 4 x 0.5 = +2: raw -4, crossed (8 - 4)/2 = 2,
          mark (12 x 10 + 4 x 14) / 16 = 11, lot 1 -> -4, notional -44 (traded).
    w, Y: b moves 3 x 0.5 = 1.5, lot 1 -> 1, residual 0.5, notional 20 (traded).
    w, Z: a moves 7 x -0.5 = -3.5, no lot, notional 3.5 < 5 (dust).
    w, V: b moves 1 x 0.5 = 0.5, lot 1 -> 0 (rounded), residual 0.5.
    w notionals: before 176 + 60 + 7 + 50 = 293, after 293 - 44 + 20 = 269; turnover
    (44 + 20) / 1000 = 0.064.
    v, X: s moves 4 x -0.5 = -2, mark 10, notional -20; before 40, after 20; turnover 0.02.
    """
    return {
        "total_equity": 1000.0,
        "world_alloc_before": {"w": 0.5, "v": 0.2},
        "world_alloc_after": {"w": 0.5, "v": 0.1},
        "strategy_alloc_before_total": {"w": {"a": 0.2, "b": 0.3}},
        "strategy_alloc_after_total": {"w": {"a": 0.1, "b": 0.45}},
        "min_trade_notional": 5.0,
        "lot_size_by_symbol": {"X": 1.0, "Y": 1.0, "V": 1.0},
        "positions": [
            pos("w", "a", "X", 12, 10),
            pos("w", "b", "X", 4, 14),
            pos("w", "b", "Y", 3, 20),
            pos("w", "a", "Z", 7, 1),
            pos("w", "b", "V", 1, 50),
            pos("v", "s", "X", 4, 10),
        ],
    }


def by_symbol(doc: RebalanceExplanation, world: str) -> dict[str, object]:
    return {k.symbol: k for k in doc.per_world[world].keys}


def test_golden_book_by_hand() -> None:
    doc = explain_rebalance(request(**golden_request()))
    keys = by_symbol(doc, "w")
    x, y, z, v = keys["X"], keys["Y"], keys["Z"], keys["V"]
    assert (x.raw_move, x.netted_qty, x.crossed_qty, x.rounded_qty, x.lot_residual) == (
        -4.0,
        -4.0,
        2.0,
        -4.0,
        0.0,
    )
    assert (x.mark, x.final_delta, x.notional, x.strategies) == (11.0, -4.0, -44.0, 2)
    assert x.disposition is Disposition.TRADED
    assert (y.raw_move, y.rounded_qty, y.lot_residual, y.final_delta, y.notional) == (
        1.5,
        1.0,
        0.5,
        1.0,
        20.0,
    )
    assert y.disposition is Disposition.TRADED
    assert (z.rounded_qty, z.rounded_notional, z.dropped_as_dust, z.final_delta) == (
        -3.5,
        3.5,
        True,
        0.0,
    )
    assert z.disposition is Disposition.DUST
    assert (v.netted_qty, v.rounded_qty, v.lot_residual, v.final_delta) == (0.5, 0.0, 0.5, 0.0)
    assert v.disposition is Disposition.ROUNDED
    w = doc.per_world["w"]
    assert (w.alloc_before, w.alloc_after, w.scale_world) == (0.5, 0.5, 1.0)
    assert w.scale_by_strategy == {"a": 0.5, "b": 1.5}
    assert (w.net_notional_before, w.net_notional_after) == (293.0, 269.0)
    assert (w.gross_notional_before, w.gross_notional_after) == (293.0, 269.0)
    assert w.traded_notional == 64.0
    assert math.isclose(w.turnover, 0.064)
    other = doc.per_world["v"]
    assert [(k.symbol, k.final_delta, k.mark, k.crossed_qty) for k in other.keys] == [
        ("X", -2.0, 10.0, 0.0)
    ]
    assert (other.scale_world, other.net_notional_before, other.net_notional_after) == (
        0.5,
        40.0,
        20.0,
    )
    assert math.isclose(other.turnover, 0.02)


def test_moves_that_cancel_between_strategies_are_netted() -> None:
    doc = explain_rebalance(
        request(
            total_equity=1000.0,
            world_alloc_before={"w": 0.5},
            world_alloc_after={"w": 0.5},
            strategy_alloc_before_total={"w": {"a": 0.2, "b": 0.2}},
            strategy_alloc_after_total={"w": {"a": 0.1, "b": 0.3}},
            positions=[pos("w", "a", "X", 10, 10), pos("w", "b", "X", 10, 10)],
        )
    )
    (x,) = doc.per_world["w"].keys
    # 0.3 / 0.2 is 1.4999999999999998: the raw sum keeps the float noise, the net does not.
    assert abs(x.raw_move) < 1e-12
    assert (x.netted_qty, x.final_delta) == (0.0, 0.0)
    assert math.isclose(x.crossed_qty, 5.0)
    assert x.disposition is Disposition.NETTED


def test_turnover_is_zero_without_equity_and_unmoved_keys_are_left_out() -> None:
    doc = explain_rebalance(
        request(
            total_equity=0.0,
            world_alloc_before={"w": 0.5, "u": 0.2},
            world_alloc_after={"w": 0.25, "u": 0.2},
            positions=[pos("w", "s", "X", 10, 10), pos("u", "s", "X", 3, 10)],
        )
    )
    assert doc.per_world["w"].traded_notional == 50.0
    assert doc.per_world["w"].turnover == 0.0
    assert doc.per_world["u"].keys == []


def test_explain_is_versionless_and_keeps_the_planned_worlds() -> None:
    doc = explain_rebalance(request(world_alloc_after={"empty": 0.1}))
    assert "schema_version" not in doc.model_dump()
    assert list(doc.per_world) == ["empty"]


def test_overlay_moves_the_world_figures_but_no_key() -> None:
    doc = explain_rebalance(
        request(
            total_equity=1000.0,
            mode="overlay",
            world_alloc_before={"w": 0.5},
            world_alloc_after={"w": 0.25},
            positions=[pos("w", "s", "X", 10, 10)],
            overlay={"instrument_by_world": {"w": "F"}, "price_by_symbol": {"F": 5.0}},
        )
    )
    w = doc.per_world["w"]
    assert w.keys == []
    assert (w.net_notional_before, w.net_notional_after, w.traded_notional) == (100.0, 50.0, 50.0)


def test_mode_errors_are_the_plans() -> None:
    with pytest.raises(RebalanceModeUnsupported):
        explain_rebalance(request(mode="hybrid"))
    with pytest.raises(OverlayConfigRequired):
        explain_rebalance(request(mode="overlay"))


@SETTINGS
@given(req=requests(dust=True))
def test_final_deltas_are_the_plans_world_deltas(req: object) -> None:
    plan = plan_rebalance(req)  # type: ignore[arg-type]
    doc = explain_rebalance(req)  # type: ignore[arg-type]
    assert list(doc.per_world) == list(plan.per_world)
    # The WorldService encodes explain_document directly: it must be the model's wire form.
    raw = explain_document(req)  # type: ignore[arg-type]
    assert json.loads(json.dumps(raw, allow_nan=False)) == doc.model_dump(mode="json")
    for world, planned in plan.per_world.items():
        explained = [
            (k.venue, k.symbol, k.final_delta)
            for k in doc.per_world[world].keys
            if k.final_delta != 0
        ]
        assert explained == [(d.venue, d.symbol, d.delta_qty) for d in planned.deltas]
        for k in doc.per_world[world].keys:
            assert k.crossed_qty >= 0
            assert (k.disposition is Disposition.TRADED) == (k.final_delta != 0)
            assert (
                math.isclose(
                    k.netted_qty - k.lot_residual, k.rounded_qty, rel_tol=1e-9, abs_tol=1e-9
                )
                or k.lot_residual == 0
            )


def test_opposite_moves_near_the_float_maximum_stay_finite() -> None:
    big = 1.7e308
    doc = explain_rebalance(
        request(
            total_equity=1.0,
            world_alloc_before={"w": 0.5},
            world_alloc_after={},
            positions=[pos("w", "a", "X", big, 0.5), pos("w", "b", "X", -big, 0.5)],
        )
    )
    (x,) = doc.per_world["w"].keys
    assert (x.raw_move, x.crossed_qty, x.final_delta) == (0.0, big, 0.0)
    assert x.disposition is Disposition.NETTED


def test_figures_that_overflow_are_a_coded_error() -> None:
    big = 1.7e308
    with pytest.raises(PlanInputInvalid):
        explain_rebalance(
            request(
                total_equity=1.0,
                world_alloc_before={"w": 0.5},
                world_alloc_after={},
                positions=[
                    pos("w", "a", "X", big, 0.5),
                    pos("w", "b", "X", -big, 0.5),
                    pos("w", "c", "X", big, 0.5),
                ],
            )
        )

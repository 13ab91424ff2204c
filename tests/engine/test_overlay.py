"""Overlay plans computed by hand (SPEC 3, overlay bullet)."""

from __future__ import annotations

import pytest

from qmtl.contracts.errors import OverlayConfigInvalid
from qmtl.engine import plan_rebalance

from ._build import pos, request

OVERLAY = {"instrument_by_world": {"w1": "ES"}, "price_by_symbol": {"ES": 10.0}}


def test_overlay_buys_the_instrument_for_a_larger_allocation() -> None:
    # gw = 0.75 / 0.5 = 1.5; world net notional = 1 * 100 = 100;
    # qty = (1.5 - 1) * 100 / 10 = +5 ES.
    response = plan_rebalance(
        request(
            mode="overlay",
            overlay=OVERLAY,
            world_alloc_before={"w1": 0.5},
            world_alloc_after={"w1": 0.75},
            positions=[pos("w1", "s1", "X", 1, 100)],
        )
    )
    plan = response.per_world["w1"]
    assert plan.scale_world == 1.5
    assert plan.scale_by_strategy == {"s1": 1.5}
    assert plan.deltas == []
    assert response.global_deltas == []
    assert response.overlay_deltas is not None
    assert [(d.world_id, d.symbol, d.delta_qty, d.venue) for d in response.overlay_deltas] == [
        ("w1", "ES", 5.0, None)
    ]


def test_overlay_lot_rounding_min_notional_and_ordering() -> None:
    # w1: (0.5/1.0 - 1) * (3 * 100) / 7 = -21.428571... ES; lot 0.5 -> 42 lots -> -21.0.
    # w2: (0.3/0.2 - 1) * (2 * 50) / 40 = +1.25 NQ -> notional 1.25 * 40 = 50 == minimum: kept.
    # w3: (0.2/0.1 - 1) * (1 * 30) / 40 = +0.75 NQ -> notional 30 < 50: dropped.
    overlay = {
        "instrument_by_world": {"w1": "ES", "w2": "NQ", "w3": "NQ"},
        "price_by_symbol": {"ES": 7.0, "NQ": 40.0},
        "min_order_notional": 50,
    }
    response = plan_rebalance(
        request(
            mode="overlay",
            overlay=overlay,
            lot_size_by_symbol={"ES": 0.5},
            world_alloc_before={"w1": 0.5, "w2": 0.2, "w3": 0.1},
            world_alloc_after={"w1": 0.25, "w2": 0.3, "w3": 0.2},
            positions=[
                pos("w2", "s1", "Y", 2, 50),
                pos("w1", "s1", "X", 3, 100),
                pos("w3", "s1", "Z", 1, 30),
            ],
        )
    )
    assert response.overlay_deltas is not None
    assert [(d.world_id, d.symbol, d.delta_qty) for d in response.overlay_deltas] == [
        ("w1", "ES", -21.0),
        ("w2", "NQ", 1.25),
    ]


def test_world_with_zero_overlay_notional_needs_no_instrument() -> None:
    # w2: gw = 1 (unchanged) and w3 holds nothing -> no trade, so no instrument needed.
    response = plan_rebalance(
        request(
            mode="overlay",
            overlay=OVERLAY,
            world_alloc_before={"w1": 0.5, "w2": 0.2},
            world_alloc_after={"w1": 0.75, "w2": 0.2, "w3": 0.05},
            positions=[pos("w1", "s1", "X", 1, 100), pos("w2", "s1", "X", 1, 100)],
        )
    )
    assert response.overlay_deltas is not None
    assert [d.world_id for d in response.overlay_deltas] == ["w1"]
    assert list(response.per_world) == ["w1", "w2", "w3"]


def test_missing_instrument_names_the_world() -> None:
    with pytest.raises(OverlayConfigInvalid) as caught:
        plan_rebalance(
            request(
                mode="overlay",
                overlay={"instrument_by_world": {}, "price_by_symbol": {"ES": 10}},
                world_alloc_before={"w9": 0.5},
                world_alloc_after={"w9": 0.75},
                positions=[pos("w9", "s1", "X", 1, 100)],
            )
        )
    assert caught.value.context["world_id"] == "w9"
    assert "w9" in caught.value.message
    assert caught.value.status_code == 422


def test_missing_price_names_world_and_symbol() -> None:
    with pytest.raises(OverlayConfigInvalid) as caught:
        plan_rebalance(
            request(
                mode="overlay",
                overlay={"instrument_by_world": {"w1": "ES"}, "price_by_symbol": {}},
                world_alloc_before={"w1": 0.5},
                world_alloc_after={"w1": 0.25},
                positions=[pos("w1", "s1", "X", 1, 100)],
            )
        )
    assert caught.value.context == {
        "field": "overlay.price_by_symbol",
        "world_id": "w1",
        "symbol": "ES",
    }
    assert "ES" in caught.value.message and "w1" in caught.value.message

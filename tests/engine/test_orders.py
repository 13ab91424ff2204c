"""Orders from deltas under venue policies (SPEC 4)."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from qmtl.contracts import SymbolDelta
from qmtl.contracts.errors import PlanInputInvalid
from qmtl.engine import Key, VenuePolicy, build_orders

DEFAULT = VenuePolicy()


def delta(symbol: str, qty: float, venue: str | None = None) -> SymbolDelta:
    return SymbolDelta(symbol=symbol, delta_qty=qty, venue=venue)


def test_default_policy_order_shape() -> None:
    # No position at the key: a sell opens a short, so it is not reduce-only.
    [order] = build_orders(
        [delta("BTC", -0.5)],
        marks={},
        exposure={},
        policies={},
        default_policy=DEFAULT,
        id_prefix="run1|w1",
    )
    expected_id = "q" + hashlib.sha256(b"run1|w1|None|BTC|-0.5").hexdigest()[:31]
    assert order.model_dump() == {
        "symbol": "BTC",
        "quantity": -0.5,
        "side": "sell",
        "time_in_force": "GTC",
        "client_order_id": expected_id,
    }
    assert len(order.client_order_id) == 32


def test_venue_policy_lot_min_notional_and_ioc() -> None:
    policies = {
        "binance": VenuePolicy(lot_size=0.01, min_notional=10, requires_ioc=True),
        "ftx": VenuePolicy(default_time_in_force="DAY", supports_reduce_only=False),
    }
    marks: dict[Key, float] = {
        ("binance", "ETH"): 2000.0,
        ("binance", "DOGE"): 0.1,
        ("binance", "SOL"): 100.0,
    }
    orders = build_orders(
        [
            delta("ETH", 0.1234, "binance"),  # lot 0.01 -> 0.12; 0.12 * 2000 = 240 >= 10
            delta("DOGE", 99.999, "binance"),  # lot -> 99.99; 99.99 * 0.1 = 9.999 < 10: dropped
            delta("SOL", 0.1, "binance"),  # 0.1 * 100 = 10 == minimum: kept
            delta("SOL", 0.004, "binance"),  # lot -> 0: dropped before the notional check
            delta("BTC", -1, "ftx"),  # no reduce-only support -> omitted
            delta("BTC", 2, "other"),  # unknown venue -> default policy
        ],
        marks=marks,
        exposure={},
        policies=policies,
        default_policy=DEFAULT,
        id_prefix="p",
    )
    assert [
        (o.venue, o.symbol, o.quantity, o.side, o.time_in_force, o.reduce_only) for o in orders
    ] == [
        ("binance", "ETH", 0.12, "buy", "IOC", None),
        ("binance", "SOL", 0.1, "buy", "IOC", None),
        ("ftx", "BTC", -1.0, "sell", "DAY", None),
        ("other", "BTC", 2.0, "buy", "GTC", None),
    ]
    assert "reduce_only" not in orders[2].model_dump()


def test_reduce_only_follows_the_position_when_exposure_is_given() -> None:
    exposure: dict[Key, float] = {(None, "LONG"): 2.0, (None, "SHORT"): -3.0, (None, "FLAT"): 0.0}
    orders = build_orders(
        [
            delta("LONG", -2.0),  # sells the whole long -> reduce-only
            delta("SHORT", 1.0),  # buys back part of the short -> reduce-only
            delta("SHORT", -1.0),  # extends the short -> NOT reduce-only
            delta("FLAT", -1.0),  # opens a short -> NOT reduce-only
            delta("NEW", 1.0),  # no position at all -> NOT reduce-only
        ],
        marks={},
        exposure=exposure,
        policies={},
        default_policy=DEFAULT,
        id_prefix="p",
    )
    assert [o.reduce_only for o in orders] == [True, True, None, None, None]


def test_client_order_ids_are_deterministic() -> None:
    def ids(prefix: str) -> list[str]:
        orders = build_orders(
            [delta("A", 1.0), delta("A", 1.0, "v"), delta("B", -2.0)],
            marks={},
            exposure={},
            policies={},
            default_policy=DEFAULT,
            id_prefix=prefix,
        )
        return [o.client_order_id for o in orders]

    first = ids("run-1|w1|per_world")
    assert first == ids("run-1|w1|per_world")
    assert len(set(first)) == 3
    assert set(first).isdisjoint(ids("run-2|w1|per_world"))
    assert all(i.startswith("q") and len(i) == 32 for i in first)
    assert first[1] == "q" + hashlib.sha256(b"run-1|w1|per_world|v|A|1.0").hexdigest()[:31]


def test_zero_deltas_are_dropped() -> None:
    assert (
        build_orders(
            [delta("A", 0.0)],
            marks={},
            exposure={},
            policies={},
            default_policy=DEFAULT,
            id_prefix="p",
        )
        == []
    )


def test_min_notional_needs_a_mark() -> None:
    with pytest.raises(PlanInputInvalid) as caught:
        build_orders(
            [delta("A", 1.0, "v")],
            marks={},
            exposure={},
            policies={"v": VenuePolicy(min_notional=5)},
            default_policy=DEFAULT,
            id_prefix="p",
        )
    assert caught.value.context["symbol"] == "A"


def test_venue_policy_validation() -> None:
    with pytest.raises(ValidationError):
        VenuePolicy(lot_size=0)
    with pytest.raises(ValidationError):
        VenuePolicy(min_notional=-1)
    with pytest.raises(ValidationError):
        VenuePolicy.model_validate({"lot_size": 1, "unknown": True})
    with pytest.raises(ValidationError):
        VenuePolicy.model_validate({"default_time_in_force": "NOW"})
    policy = VenuePolicy(lot_size=0.5)
    with pytest.raises(ValidationError):
        policy.lot_size = 1.0  # type: ignore[misc]

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


def test_an_order_crossing_zero_is_split_into_closing_and_opening_parts() -> None:
    exposure: dict[Key, float] = {(None, "LONG"): 10.0, (None, "SHORT"): -4.0}
    orders = build_orders(
        [delta("LONG", -15.0), delta("SHORT", 6.0)],
        marks={},
        exposure=exposure,
        policies={},
        default_policy=DEFAULT,
        id_prefix="p",
    )
    # Long 10, sell 15 -> sell 10 reduce-only (closes), then sell 5 (opens a short).
    # Short 4, buy 6 -> buy 4 reduce-only, then buy 2.
    assert [(o.symbol, o.quantity, o.side, o.reduce_only) for o in orders] == [
        ("LONG", -10.0, "sell", True),
        ("LONG", -5.0, "sell", None),
        ("SHORT", 4.0, "buy", True),
        ("SHORT", 2.0, "buy", None),
    ]
    ids = [o.client_order_id for o in orders]
    assert len(set(ids)) == 4
    assert ids[0] == "q" + hashlib.sha256(b"p|None|LONG|-10.0|close").hexdigest()[:31]
    assert ids[1] == "q" + hashlib.sha256(b"p|None|LONG|-5.0|open").hexdigest()[:31]
    again = build_orders(
        [delta("LONG", -15.0), delta("SHORT", 6.0)],
        marks={},
        exposure=exposure,
        policies={},
        default_policy=DEFAULT,
        id_prefix="p",
    )
    assert [o.client_order_id for o in again] == ids


def test_crossing_parts_respect_the_lot_and_float_noise() -> None:
    # Lot 0.1, long 10.05: the closing part is 100 whole lots (10.0), the opening part the
    # other 50 lots (5.0); together the 15.0 sold.
    lot = {"v": VenuePolicy(lot_size=0.1)}
    orders = build_orders(
        [delta("A", -15.0, "v")],
        marks={},
        exposure={("v", "A"): 10.05},
        policies=lot,
        default_policy=DEFAULT,
        id_prefix="p",
    )
    assert [(o.quantity, o.reduce_only) for o in orders] == [(-10.0, True), (-5.0, None)]
    # No lot, a position summed with float noise: the closing part is cleaned to -10.0.
    orders = build_orders(
        [delta("A", -15.0)],
        marks={},
        exposure={(None, "A"): 9.999999999999998},
        policies={},
        default_policy=DEFAULT,
        id_prefix="p",
    )
    assert [(o.quantity, o.reduce_only) for o in orders] == [(-10.0, True), (-5.0, None)]


def test_a_crossing_order_stays_whole_when_a_part_cannot_be_sent() -> None:
    policies = {
        "nro": VenuePolicy(supports_reduce_only=False),
        "min": VenuePolicy(min_notional=50),
        "lot": VenuePolicy(lot_size=1.0),
    }
    orders = build_orders(
        [
            delta("A", -15.0, "nro"),  # venue without reduce-only: one order, no flag
            delta("A", -1.0, "min"),  # closing 0.1 * 100 = 10 < 50: one unflagged order
            delta("A", -3.0, "lot"),  # closing part 0.4 -> 0 whole lots: one unflagged order
        ],
        marks={("min", "A"): 100.0},
        exposure={("nro", "A"): 10.0, ("min", "A"): 0.1, ("lot", "A"): 0.4},
        policies=policies,
        default_policy=DEFAULT,
        id_prefix="p",
    )
    assert [(o.venue, o.quantity, o.reduce_only) for o in orders] == [
        ("nro", -15.0, None),
        ("min", -1.0, None),
        ("lot", -3.0, None),
    ]
    assert orders[0].client_order_id == ("q" + hashlib.sha256(b"p|nro|A|-15.0").hexdigest()[:31])


def test_reduce_only_at_the_ends_of_the_float_range() -> None:
    """Issue #10 item 3: ``q * p`` overflowed (a RuntimeWarning, 500 under warnings as
    errors) for figures near the float maximum and underflowed to 0 for subnormal ones, so
    a reducing order lost its flag. Signs decide; no warning is raised (pytest makes
    warnings errors)."""
    exposure: dict[Key, float] = {
        (None, "HUGE"): 1e308,
        (None, "TINY"): 5e-324,
        (None, "BIG"): 1.5e308,
    }
    orders = build_orders(
        [
            delta("HUGE", -1e308),  # closes the whole long exactly -> reduce-only
            delta("TINY", -5e-324),  # closes a subnormal long -> reduce-only
            delta("BIG", 1.5e308),  # adds to the long: q - close overflows, never used
        ],
        marks={(None, "HUGE"): 1e300, (None, "TINY"): 1.0, (None, "BIG"): 2.0},
        exposure=exposure,
        policies={},
        default_policy=VenuePolicy(min_notional=1e-320),
        id_prefix="p",
    )
    # The notionals 1e608 and 3e308 overflow: far above the floor, kept; 5e-324 x 1 is
    # below 1e-320 and dropped.
    assert [(o.symbol, o.quantity, o.reduce_only) for o in orders] == [
        ("HUGE", -1e308, True),
        ("BIG", 1.5e308, None),
    ]
    tiny = build_orders(
        [delta("TINY", -5e-324)],
        marks={},
        exposure=exposure,
        policies={},
        default_policy=DEFAULT,
        id_prefix="p",
    )
    assert [(o.quantity, o.reduce_only) for o in tiny] == [(-5e-324, True)]

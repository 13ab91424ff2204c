"""PositionBook construction, grouping and the per-key helpers."""

from __future__ import annotations

import numpy as np
import pytest

from qmtl.engine import PositionBook, mark_by_key, net_qty_by_key
from qmtl.engine.book import group, weighted_mark

from ._build import pos, request

POSITIONS = request(
    positions=[
        pos("w2", "s2", "BTC", 1, 100, venue="v"),
        pos("w1", "s1", "BTC", 3, 200, venue="v"),
        pos("w1", "s2", "ETH", -2, 50),
        pos("w1", "s1", "ETH", 0, 70),
        pos("w1", "s1", "ZERO", 0, 10),
        pos("w1", "s2", "ZERO", 0, 30),
    ]
).positions


def test_from_positions_sorts_categories_and_keeps_position_order() -> None:
    book = PositionBook.from_positions(POSITIONS)
    assert book.worlds == ("w1", "w2")
    assert book.strategies == ("s1", "s2")
    assert book.keys == ((None, "ETH"), (None, "ZERO"), ("v", "BTC"))
    assert [book.worlds[i] for i in book.world] == [p.world_id for p in POSITIONS]
    assert [book.keys[i] for i in book.key] == [(p.venue, p.symbol) for p in POSITIONS]
    assert book.qty.tolist() == [p.qty for p in POSITIONS]
    assert not book.qty.flags.writeable


def test_mark_by_key_is_quantity_weighted() -> None:
    assert mark_by_key(POSITIONS) == {
        ("v", "BTC"): (1 * 100 + 3 * 200) / 4,  # 175
        (None, "ETH"): 50.0,  # |-2| * 50 + 0 * 70 over 2
        (None, "ZERO"): 20.0,  # every qty 0 -> plain mean of 10 and 30
    }
    assert mark_by_key(POSITIONS, world_id="w2") == {("v", "BTC"): 100.0}
    assert mark_by_key(POSITIONS, world_id="nope") == {}


def test_equal_marks_come_back_exactly() -> None:
    # 0.1 * 60000 / 0.1 is not 60000 in floats; the engine's formula returns it exactly.
    positions = request(
        positions=[pos("w", "s", "X", 0.1, 60000.0), pos("w", "t", "X", 0.7, 60000.0)]
    ).positions
    assert mark_by_key(positions) == {(None, "X"): 60000.0}


def test_net_qty_by_key() -> None:
    assert net_qty_by_key(POSITIONS) == {
        (None, "ETH"): -2.0,
        (None, "ZERO"): 0.0,
        ("v", "BTC"): 4.0,
    }
    assert net_qty_by_key(POSITIONS, world_id="w1", strategy_id="s1") == {
        (None, "ETH"): 0.0,
        (None, "ZERO"): 0.0,
        ("v", "BTC"): 3.0,
    }


def test_from_codes_recodes_unsorted_categories() -> None:
    book = PositionBook.from_codes(
        worlds=["b", "a"],
        strategies=["x"],
        keys=[("v", "S"), (None, "T")],
        world=np.array([0, 1]),
        strategy=np.array([0, 0]),
        key=np.array([0, 1]),
        qty=np.array([1.0, 2.0]),
        mark=np.array([3.0, 4.0]),
    )
    assert book.worlds == ("a", "b") and book.keys == ((None, "T"), ("v", "S"))
    assert book.world.tolist() == [1, 0]
    assert book.key.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"worlds": ("b", "a")}, "worlds must be sorted"),
        ({"keys": (("v", "A"), (None, "B"))}, "keys must be sorted"),
        ({"world": np.array([0, 2])}, "outside"),
        ({"qty": np.array([1.0, np.nan])}, "qty must be finite"),
        ({"mark": np.array([1.0, 0.0])}, "mark must be finite and > 0"),
        ({"key": np.array([0.0, 1.0])}, "integer codes"),
        ({"strategy": np.array([0])}, "1-D array of 2 codes"),
    ],
)
def test_constructor_validates(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "worlds": ("a", "b"),
        "strategies": ("s",),
        "keys": ((None, "B"), ("v", "A")),
        "world": np.array([0, 1]),
        "strategy": np.array([0, 0]),
        "key": np.array([0, 1]),
        "qty": np.array([1.0, 2.0]),
        "mark": np.array([1.0, 2.0]),
    }
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        PositionBook(**fields)  # type: ignore[arg-type]


def test_dense_and_sparse_grouping_agree() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 50, 200) * 1_000_003
    sparse = group(codes, size=50 * 1_000_003)  # too large for bincount -> np.unique
    dense = group(codes // 1_000_003, size=50)
    np.testing.assert_array_equal(sparse.ids // 1_000_003, dense.ids)
    np.testing.assert_array_equal(sparse.inverse, dense.inverse)
    weights = rng.normal(size=200)
    np.testing.assert_allclose(sparse.sum(weights), dense.sum(weights))
    # by hand: the ids are exactly the distinct codes, ascending
    assert sparse.ids.tolist() == sorted(set(codes.tolist()))


def test_weighted_mark_when_the_summed_quantity_overflows() -> None:
    # |q| = 1e308 twice: sum(|q|) overflows, which made every share 0 and the mean the
    # lowest mark (5e-324). Equal weights: (1 + 5e-324) / 2 = 0.5.
    qty = np.array([1e308, -1e308, 2.0])
    mark = np.array([1.0, 5e-324, 7.0])
    got = weighted_mark(group(np.array([0, 0, 1]), size=2), qty=qty, mark=mark)
    assert got.tolist() == [0.5, 7.0]

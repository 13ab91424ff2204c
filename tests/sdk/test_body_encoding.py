"""Request bodies: orjson for large books, the same document; NaN still refused."""

from __future__ import annotations

import json
import math

import pytest

from qmtl.sdk._body import LARGE_BOOK, encode_body


def _body(n: int, qty: float = 1.5) -> dict[str, object]:
    rows = [
        {
            "world_id": "w",
            "strategy_id": "s",
            "symbol": f"S{i}",
            "qty": qty,
            "mark": 2,
            "venue": None,
        }
        for i in range(n)
    ]
    return {
        "total_equity": 1e6,
        "world_alloc_after": {"w": 0.5},
        "positions": rows,
        "rebalance_intent": {"meta": {"ticket": "Ω"}},
    }


@pytest.mark.parametrize("n", [1, LARGE_BOOK])
def test_same_document_small_and_large(n: int) -> None:
    body = _body(n)
    assert json.loads(encode_body(body)) == body


@pytest.mark.parametrize("n", [1, LARGE_BOOK])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_numbers_are_refused_not_nulled(n: int, bad: float) -> None:
    with pytest.raises(ValueError):
        encode_body(_body(n, qty=bad))

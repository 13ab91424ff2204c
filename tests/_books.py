"""The two-world book most service tests plan (hand-checked figures in the docstring)."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["TWO_WORLD_BOOK", "two_world_book"]

TWO_WORLD_BOOK: dict[str, Any] = {
    "total_equity": 1_000_000.0,
    "world_alloc_before": {"w1": 0.3, "w2": 0.2},
    "world_alloc_after": {"w1": 0.2, "w2": 0.3},
    "positions": [
        {"world_id": "w1", "strategy_id": "s1", "symbol": "BTCUSDT", "qty": 0.6,
         "mark": 60000.0, "venue": "binance"},
        {"world_id": "w1", "strategy_id": "s2", "symbol": "BTCUSDT", "qty": 0.9,
         "mark": 60000.0, "venue": "binance"},
        {"world_id": "w2", "strategy_id": "s3", "symbol": "ETHUSDT", "qty": 10.0,
         "mark": 3000.0, "venue": "binance"},
    ],
}
"""w1 0.3 -> 0.2 scales by 2/3: BTCUSDT moves (0.6 + 0.9) x (2/3 - 1) = -0.5.
w2 0.2 -> 0.3 scales by 1.5: ETHUSDT moves 10 x (1.5 - 1) = +5."""


def two_world_book(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`TWO_WORLD_BOOK` with top-level ``changes`` applied."""
    book = copy.deepcopy(TWO_WORLD_BOOK)
    book.update(changes)
    return book

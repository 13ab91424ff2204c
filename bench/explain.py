"""Benchmark explain against plan (issue 12 target: explain ≤ 2× a plan at 100k positions).

Two levels, medians of 5 runs each on the same seeded book (10 worlds × 50 strategies):

* core: ``explain_book`` vs ``plan_book`` on a columnar ``PositionBook``;
* wire: ``explain_rebalance`` vs ``plan_rebalance`` from a validated request (objects in,
  document model out — what the WorldService computes before encoding).

    uv run python bench/explain.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from _common import machine_line, seeded_request

from engine import make_book
from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.engine import AllocationInputs, plan_book, plan_rebalance
from qmtl.engine.explain import explain_book, explain_rebalance

RUNS = 5


def median_ms(fn: Callable[[], Any]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def inputs(book: Any) -> AllocationInputs:
    before = {w: 0.08 for w in book.worlds}
    after = {w: 0.08 * (0.5 + i / 10) for i, w in enumerate(book.worlds)}
    return AllocationInputs(total_equity=1e9, world_alloc_before=before, world_alloc_after=after)


def main() -> None:
    print(machine_line())
    print("| positions | symbols | level | plan ms | explain ms | ratio |")
    print("|---:|---:|---|---:|---:|---:|")
    for n, n_symbols in ((100_000, 100), (100_000, 10_000)):
        book = make_book(n, n_symbols)
        alloc = inputs(book)
        plan_ms = median_ms(partial(plan_book, book, alloc, min_trade_notional=50.0))
        explain_ms = median_ms(partial(explain_book, book, alloc, min_trade_notional=50.0))
        print(
            f"| {n:,} | {n_symbols:,} | core | {plan_ms:.0f} | {explain_ms:.0f} | "
            f"{explain_ms / plan_ms:.2f}× |"
        )
        request = MultiWorldRebalanceRequest.model_validate(
            seeded_request(n, n_symbols=n_symbols, min_trade_notional=50.0)
        )
        plan_ms = median_ms(partial(plan_rebalance, request))
        explain_ms = median_ms(partial(explain_rebalance, request))
        print(
            f"| {n:,} | {n_symbols:,} | wire | {plan_ms:.0f} | {explain_ms:.0f} | "
            f"{explain_ms / plan_ms:.2f}× |"
        )


if __name__ == "__main__":
    main()

"""Benchmark explain against plan (issue 12 target: explain ≤ 2× a plan at 100k positions).

Three levels, medians of 7 interleaved runs each on the same seeded book (10 worlds ×
50 strategies):

* core: ``explain_book`` vs ``plan_book`` on a columnar ``PositionBook``;
* wire: ``explain_rebalance`` vs ``plan_rebalance`` from a validated request (objects in,
  document model out);
* service: ``compute_explanation`` (``explain_document`` encoded) vs ``compute_plan`` (v1),
  the JSON bytes the WorldService sends.

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
from qmtl.worldservice.explain import compute_explanation
from qmtl.worldservice.planning import compute_plan

RUNS = 7


def medians_ms(plan: Callable[[], Any], explain: Callable[[], Any]) -> tuple[float, float]:
    """Median ms of each, runs interleaved so that a shared machine's load hits both alike."""
    plan()  # warm-up
    explain()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(RUNS):
        for fn, out in ((plan, times[0]), (explain, times[1])):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


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
        plan_ms, explain_ms = medians_ms(
            partial(plan_book, book, alloc, min_trade_notional=50.0),
            partial(explain_book, book, alloc, min_trade_notional=50.0),
        )
        print(
            f"| {n:,} | {n_symbols:,} | core | {plan_ms:.0f} | {explain_ms:.0f} | "
            f"{explain_ms / plan_ms:.2f}× |"
        )
        request = MultiWorldRebalanceRequest.model_validate(
            seeded_request(n, n_symbols=n_symbols, min_trade_notional=50.0)
        )
        plan_ms, explain_ms = medians_ms(
            partial(plan_rebalance, request), partial(explain_rebalance, request)
        )
        print(
            f"| {n:,} | {n_symbols:,} | wire | {plan_ms:.0f} | {explain_ms:.0f} | "
            f"{explain_ms / plan_ms:.2f}× |"
        )
        # What the WorldService computes per request: the JSON bytes it sends.
        plan_ms, explain_ms = medians_ms(
            partial(compute_plan, request, version=1, periods_per_year=252, with_body=False),
            partial(compute_explanation, request),
        )
        print(
            f"| {n:,} | {n_symbols:,} | service (JSON) | {plan_ms:.0f} | {explain_ms:.0f} | "
            f"{explain_ms / plan_ms:.2f}× |"
        )


if __name__ == "__main__":
    main()

"""Benchmark the planning engine (SPEC 7: its core plans 1,000,000 positions in <= 0.3 s).

Seeded positions (10 worlds x 50 strategies) are built directly as a PositionBook, then
``plan_book`` (columnar core) and ``to_response`` (wire objects) are timed separately;
peak memory of one core + wire run is measured with tracemalloc (numpy reports its buffers
to it; the input book itself, 40 bytes per position, is allocated before and not counted).
``PositionBook.from_positions`` over PositionSlice objects is measured at 100,000 positions.

    uv run python bench/engine.py            # 10k, 100k, 1M x (100, 10,000 symbols)
    uv run python bench/engine.py --quick    # 10k, 100k only
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
from _common import SEED, STRATEGIES, WORLDS, cpu_model

from qmtl.contracts import (
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    PositionSlice,
    RebalanceMode,
)
from qmtl.engine import AllocationInputs, BookPlan, PositionBook, plan_book, plan_rebalance
from qmtl.engine.planning import to_response

_T = TypeVar("_T")



def make_book(n: int, n_symbols: int, *, seed: int = SEED) -> PositionBook:
    rng = np.random.default_rng(seed)
    venues = (None, "binance", "cme")
    keys = sorted(
        ((venues[i % 3], f"SYM{i:05d}") for i in range(n_symbols)),
        key=lambda k: (k[0] is not None, k[0] or "", k[1]),
    )
    key = rng.integers(0, n_symbols, n)
    return PositionBook(
        worlds=tuple(f"world{w:02d}" for w in range(WORLDS)),
        strategies=tuple(f"strat{s:03d}" for s in range(STRATEGIES)),
        keys=tuple(keys),
        world=rng.integers(0, WORLDS, n),
        strategy=rng.integers(0, STRATEGIES, n),
        key=key,
        qty=np.round(rng.normal(5, 20, n), 3),
        mark=np.round(rng.uniform(1, 5000, n_symbols)[key], 2),
    )


def make_inputs() -> AllocationInputs:
    """Nine worlds rescaled (0.09 -> 0.05..0.114), the tenth liquidated."""
    worlds = [f"world{w:02d}" for w in range(WORLDS)]
    return AllocationInputs(
        total_equity=1e9,
        world_alloc_before={w: 0.09 for w in worlds},
        world_alloc_after={w: 0.05 + 0.008 * i for i, w in enumerate(worlds[:-1])},
    )


def lots_for(n_symbols: int) -> dict[str, float]:
    return {f"SYM{i:05d}": 0.001 for i in range(0, n_symbols, 2)}


def timed(func: Callable[[], _T], *, repeat: int) -> tuple[float, _T]:
    """Median wall time of ``repeat`` runs after one untimed warm-up run."""
    samples = []
    result = func()
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def peak_mib(func: Callable[[], Any]) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def bench_core(sizes: list[int], universes: list[int], *, repeat: int) -> list[list[str]]:
    inputs = make_inputs()
    table = []
    for n in sizes:
        for n_symbols in universes:
            book = make_book(n, n_symbols)
            lots = lots_for(n_symbols)

            def core(book: PositionBook = book, lots: dict[str, float] = lots) -> BookPlan:
                return plan_book(book, inputs, min_trade_notional=10.0, lot_size_by_symbol=lots)

            def wire(plan: BookPlan) -> MultiWorldRebalanceResponse:
                return to_response(plan)

            core_s, plan = timed(core, repeat=repeat)
            wire_s, response = timed(partial(wire, plan), repeat=repeat)
            memory = peak_mib(lambda: to_response(core()))
            deltas = sum(len(p.deltas) for p in response.per_world.values())
            table.append(
                [
                    f"{n:,}",
                    f"{n_symbols:,}",
                    f"{core_s * 1000:,.0f}",
                    f"{wire_s * 1000:,.0f}",
                    f"{(core_s + wire_s) * 1000:,.0f}",
                    f"{memory:,.0f}",
                    f"{deltas:,}",
                    f"{len(response.global_deltas):,}",
                ]
            )
    return table


def slices(n: int, n_symbols: int) -> list[PositionSlice]:
    book = make_book(n, n_symbols)
    return [
        PositionSlice.model_construct(
            world_id=book.worlds[w],
            strategy_id=book.strategies[s],
            symbol=book.keys[k][1],
            venue=book.keys[k][0],
            qty=q,
            mark=m,
        )
        for w, s, k, q, m in zip(
            book.world.tolist(),
            book.strategy.tolist(),
            book.key.tolist(),
            book.qty.tolist(),
            book.mark.tolist(),
            strict=True,
        )
    ]


def bench_wire(n: int, n_symbols: int, *, repeat: int) -> list[list[str]]:
    positions = slices(n, n_symbols)
    factorise_s, _ = timed(lambda: PositionBook.from_positions(positions), repeat=repeat)
    request = MultiWorldRebalanceRequest.model_construct(
        total_equity=1e9,
        world_alloc_before={f"world{w:02d}": 0.09 for w in range(WORLDS)},
        world_alloc_after={f"world{w:02d}": 0.05 for w in range(WORLDS)},
        positions=positions,
        strategy_alloc_before_total=None,
        strategy_alloc_after_total=None,
        min_trade_notional=10.0,
        lot_size_by_symbol=lots_for(n_symbols),
        mode=RebalanceMode.SCALING,
        overlay=None,
    )
    plan_s, _ = timed(lambda: plan_rebalance(request), repeat=repeat)
    return [
        [f"PositionBook.from_positions ({n:,} PositionSlice)", f"{factorise_s * 1000:,.0f}"],
        [f"plan_rebalance ({n:,} PositionSlice -> response)", f"{plan_s * 1000:,.0f}"],
    ]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k positions only")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    print(
        f"qmtl engine benchmark  cpu={cpu_model()!r} nproc={os.cpu_count()} "
        f"numpy={np.__version__} python={platform.python_version()}"
    )
    print(
        f"{WORLDS} worlds x {STRATEGIES} strategies, lots on half the symbols, "
        f"min_trade_notional=10; times are medians of {args.repeat} runs\n"
    )
    print_table(
        [
            "positions",
            "symbols",
            "core ms",
            "wire ms",
            "total ms",
            "peak MiB",
            "world deltas",
            "global deltas",
        ],
        bench_core(sizes, [100, 10_000], repeat=args.repeat),
    )
    print()
    print_table(["step", "ms"], bench_wire(100_000, 10_000, repeat=max(1, args.repeat // 2)))


if __name__ == "__main__":
    main()

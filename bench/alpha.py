"""Benchmark the alpha metrics (SPEC 7: a 1,000,000-point series in <= 30 ms).

    uv run python bench/alpha.py [--repeat 7] [--seed 7]

Prints one row per case: input form, length, median and best wall time over ``--repeat``
runs (after one warm-up call). The SPEC target applies to the numpy float64 row at 1e6.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from qmtl.contracts import MultiWorldRebalanceRequest, MultiWorldRebalanceResponse, RebalancePlan
from qmtl.engine.alpha import alpha_envelope, alpha_performance

TARGET_MS = 30.0
TARGET_POINTS = 1_000_000


def _time(call: Callable[[], Any], *, repeat: int) -> tuple[float, float]:
    call()  # warm-up: page in the arrays, import-time costs
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), min(samples)


def _series_cases(rng: np.random.Generator) -> list[tuple[str, int, Callable[[], Any]]]:
    cases: list[tuple[str, int, Callable[[], Any]]] = []
    for n in (1_000, 10_000, 100_000, 1_000_000):
        returns = rng.normal(0.0003, 0.01, n)
        returns.setflags(write=False)
        cases.append(("numpy float64", n, functools.partial(alpha_performance, returns)))
    big = rng.normal(0.0003, 0.01, TARGET_POINTS)
    with_costs = big.copy()
    cases.append(
        (
            "numpy, rf + tc",
            TARGET_POINTS,
            lambda: alpha_performance(with_costs, risk_free=1e-4, transaction_cost=2e-4),
        )
    )
    gappy = big.copy()
    gappy[rng.random(TARGET_POINTS) < 0.05] = np.nan
    cases.append(("numpy, 5% NaN", TARGET_POINTS, lambda: alpha_performance(gappy)))
    as_list = big.tolist()
    cases.append(("python list of float", TARGET_POINTS, lambda: alpha_performance(as_list)))
    return cases


def _envelope_case(rng: np.random.Generator) -> tuple[str, int, Callable[[], Any]]:
    # 10 worlds x 50 strategies, one year of daily returns each (+ one series per world)
    worlds = [f"w{i}" for i in range(10)]
    strategies = [f"s{j}" for j in range(50)]
    per_strategy = {
        s: {w: {"returns": rng.normal(0.0003, 0.01, 252).tolist()} for w in worlds}
        for s in strategies
    }
    request = MultiWorldRebalanceRequest.model_validate(
        {
            "total_equity": 1e6,
            "world_alloc_before": dict.fromkeys(worlds, 0.1),
            "world_alloc_after": dict.fromkeys(worlds, 0.1),
            "alpha_series": {
                "per_world": {w: {"returns": rng.normal(0, 0.01, 252).tolist()} for w in worlds},
                "per_strategy": per_strategy,
            },
        }
    )
    response = MultiWorldRebalanceResponse(
        schema_version=2,
        per_world={
            w: RebalancePlan(
                world_id=w, scale_world=1.0, scale_by_strategy=dict.fromkeys(strategies, 1.0)
            )
            for w in worlds
        },
    )
    points = 252 * (len(worlds) + len(worlds) * len(strategies))
    return ("envelope 10 w x 50 s x 252", points, lambda: alpha_envelope(request, response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    header = f"{'case':<28} {'points':>10} {'median ms':>10} {'best ms':>9}  note"
    print(header)
    print("-" * len(header))
    for label, points, call in [*_series_cases(rng), _envelope_case(rng)]:
        median, best = _time(call, repeat=args.repeat)
        note = ""
        if label == "numpy float64" and points == TARGET_POINTS:
            verdict = "meets" if median <= TARGET_MS else "MISSES"
            note = f"{verdict} SPEC target <= {TARGET_MS:.0f} ms"
        print(f"{label:<28} {points:>10,} {median:>10.2f} {best:>9.2f}  {note}")


if __name__ == "__main__":
    main()

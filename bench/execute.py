"""Benchmark per-strategy vs per-world execute dry runs (SPEC 3/4, issue 10 item 1).

Target: a per-strategy dry run of 100,000 positions costs at most 1.5x a per-world one.

1. Whole path over real HTTP: ``POST /rebalancing/execute`` (dry run) through
   ``qmtl gateway serve`` to ``qmtl worldservice serve`` (separate processes, the
   deployment of ``bench/gateway.py``), bytes in -> plan -> orders -> bytes out, response
   decoded by the client. Median of the runs, interleaved (per world, per strategy, ...).
2. The gateway's own part, in process: ``build_execution`` (book, per-world orders,
   per-strategy orders) plus encoding the response, on the plan of the same request.

Requests are ``_common.seeded_request`` (10 worlds x 50 strategies; every seventh symbol
has a 0.001 lot; min_trade_notional 10).

    uv run python bench/execute.py            # 10k and 100k positions
    uv run python bench/execute.py --quick    # 10k only, fewer runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _common import machine_line, seeded_request
from pydantic_core import to_json

from gateway import deployment
from qmtl.contracts import ExecuteResponse, MultiWorldRebalanceRequest
from qmtl.engine import VenuePolicy, plan_rebalance
from qmtl.gateway.config import SharedAccountPolicy
from qmtl.gateway.execution import OrderPolicies, build_execution, response_body

SIZES = [(10_000, 2_000), (100_000, 10_000)]


async def http_times(client: httpx.AsyncClient, gw: str, body: bytes, *, runs: int
                     ) -> dict[bool, list[float]]:
    times: dict[bool, list[float]] = {False: [], True: []}
    headers = {"content-type": "application/json"}
    for i in range(runs + 1):  # the first round warms both paths up
        for per_strategy in (False, True):
            started = time.perf_counter()
            response = await client.post(f"{gw}/rebalancing/execute", content=body,
                                         headers=headers,
                                         params={"per_strategy": str(per_strategy).lower()})
            response.raise_for_status()
            response.json()
            if i:
                times[per_strategy].append(time.perf_counter() - started)
    return times


def in_process_times(raw: dict[str, object], *, runs: int) -> dict[bool, tuple[float, int]]:
    request = MultiWorldRebalanceRequest.model_validate(raw)
    plan = plan_rebalance(request)
    policies = OrderPolicies(venues={}, default=VenuePolicy())
    out: dict[bool, tuple[float, int]] = {}
    for per_strategy in (False, True):
        times = []
        orders = 0
        for _ in range(runs):
            started = time.perf_counter()
            execution = build_execution(request, plan, per_strategy=per_strategy,
                                        shared_account=False, policies=policies,
                                        shared_policy=SharedAccountPolicy(), id_base="bench")
            head = ExecuteResponse(orders_per_world={}, submitted=False,
                                   rebalance_schema_version=2, alpha_metrics_capable=False)
            to_json(response_body(head, execution))
            times.append(time.perf_counter() - started)
            orders = sum(len(o) for o in execution.per_world.values()) + sum(
                len(o) for by_s in (execution.per_strategy or {}).values()
                for o in by_s.values())
        out[per_strategy] = (statistics.median(times), orders)
    return out


async def main(args: argparse.Namespace) -> None:
    sizes = SIZES[:1] if args.quick else SIZES
    runs = 3 if args.quick else args.runs
    bodies = {n: seeded_request(n, n_symbols=k, schema_version=2) for n, k in sizes}
    machine = machine_line()
    folder = Path(tempfile.mkdtemp(prefix="qmtl-bench-execute-"))
    try:
        with deployment(folder) as (_, gw, _bus):
            async with httpx.AsyncClient(timeout=600) as client:
                http = {n: await http_times(client, gw, json.dumps(body).encode(), runs=runs)
                        for n, body in bodies.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    local = {n: in_process_times(body, runs=runs) for n, body in bodies.items()}

    print(f"# execute dry run, per world vs per strategy — {machine}")
    print()
    print("POST /rebalancing/execute (dry run) over HTTP, gateway + WorldService processes "
          f"(median of {runs})")
    print(f"{'positions':>10} {'per world s':>12} {'per strategy s':>15} {'ratio':>6}")
    for n in bodies:
        world, strategy = (statistics.median(http[n][flag]) for flag in (False, True))
        print(f"{n:>10,} {world:>12.3f} {strategy:>15.3f} {strategy / world:>6.2f}")
    print()
    print("in process: build_execution + response encoding on the served plan "
          f"(median of {runs})")
    print(f"{'positions':>10} {'per world s':>12} {'orders':>8} {'per strategy s':>15} "
          f"{'orders':>8} {'ratio':>6}")
    for n in bodies:
        (world, w_orders), (strategy, s_orders) = local[n][False], local[n][True]
        print(f"{n:>10,} {world:>12.3f} {w_orders:>8,} {strategy:>15.3f} {s_orders:>8,} "
              f"{strategy / world:>6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k positions only, 3 runs")
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args()))

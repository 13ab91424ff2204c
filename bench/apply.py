"""Benchmark ``POST /rebalancing/apply`` over HTTP, straight to ``qmtl worldservice serve``.

Seeded requests (10 worlds × 50 strategies, 10,000 symbols × 3 venues, schema v2) at 10k /
100k / 1M positions. For each size and run, a fresh ``run_id``: the plan of the same body
(for scale), then the apply (plan + digest + one SQLite transaction with the run record,
audit, outbox events and allocation state), then a replay of that run_id (the digest and a
store lookup), each after a pause that lets the outbox relay publish the events of the
previous apply. Medians; the processes are those of ``bench/gateway.py``'s ``deployment``
(Redis bus, SQLite store; the outbox relay publishes in the background, as in production).

    uv run python bench/apply.py                 # 10k, 100k, 1M
    uv run python bench/apply.py --quick         # 10k, 100k
    uv run python bench/apply.py --label f4cf00e # name the code measured in the table

Another release's code is measured by putting its ``src`` first on the path (the servers
inherit it): ``git archive f4cf00e | tar -x -C /tmp/base`` then
``PYTHONPATH=/tmp/base/src uv run python bench/apply.py --label f4cf00e``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
from _common import machine_line, seeded_request

from gateway import deployment

N_SYMBOLS = 10_000
HEADERS = {"content-type": "application/json"}


async def post(client: httpx.AsyncClient, url: str, body: bytes) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = await client.post(url, content=body, headers=HEADERS)
    response.read()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed, response


async def measure(ws: str, sizes: list[tuple[int, int]]) -> list[dict[str, float]]:
    rows = []
    async with httpx.AsyncClient(timeout=600) as client:
        warm = orjson.dumps(seeded_request(100, n_symbols=100, schema_version=2))
        for name in ("plan", "apply"):
            await post(client, f"{ws}/rebalancing/{name}", warm)
        for n, runs in sizes:
            base = seeded_request(n, n_symbols=N_SYMBOLS, schema_version=2)
            times: dict[str, list[float]] = {"plan": [], "apply": [], "replay": []}
            settle = 1.0 + n / 200_000
            size = 0
            for _ in range(runs):
                body = orjson.dumps({**base, "run_id": f"bench-{uuid.uuid4()}"})
                size = len(body)
                # The pauses let the relay publish an apply's events before the next request.
                await asyncio.sleep(settle)
                times["plan"].append((await post(client, f"{ws}/rebalancing/plan", body))[0])
                elapsed, applied = await post(client, f"{ws}/rebalancing/apply", body)
                times["apply"].append(elapsed)
                await asyncio.sleep(settle)
                elapsed, replayed = await post(client, f"{ws}/rebalancing/apply", body)
                if replayed.headers.get("idempotent-replayed") != "true":
                    raise SystemExit("the second apply of a run_id was not a replay")
                if replayed.content != applied.content:
                    raise SystemExit("the replay differs from the apply")
                times["replay"].append(elapsed)
            rows.append({"n": n, "mb": size / 1e6,
                         **{k: statistics.median(v) for k, v in times.items()}})
            print(f"  measured {n:,}", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10k and 100k only")
    parser.add_argument("--runs", type=int, default=5, help="runs per size (1M: at most 3)")
    parser.add_argument("--label", default="this checkout", help="the code measured")
    args = parser.parse_args()
    sizes = [(10_000, args.runs), (100_000, args.runs)]
    if not args.quick:
        sizes.append((1_000_000, min(args.runs, 3)))
    with tempfile.TemporaryDirectory() as folder, deployment(Path(folder)) as (ws, _gw, _bus):
        rows = asyncio.run(measure(ws, sizes))
        # Printed before the processes stop: a slow shutdown cannot lose the table.
        print(machine_line())
        print()
        print(f"| positions ({args.label}) | request MB | plan | apply | apply / plan | replay |")
        print("|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            print(f"| {row['n']:,} | {row['mb']:.1f} | {row['plan']:.3f} s "
                  f"| {row['apply']:.3f} s | {row['apply'] / row['plan']:.2f}× "
                  f"| {row['replay']:.3f} s |", flush=True)


if __name__ == "__main__":
    main()

"""Benchmark the WorldService over real HTTP (SPEC 7).

1. ``POST /rebalancing/plan`` end to end — pre-encoded JSON body sent over loopback HTTP,
   response read and parsed — at 1k / 10k / 100k positions (10 worlds × 50 strategies,
   seeded). Target: 100k ≤ 2 s.
2. apply → event: the time from sending ``POST /rebalancing/apply`` to a subscriber
   receiving each world's ``rebalancing_planned`` event from the ControlBus (p50/p99), next
   to the apply round trip itself.

The server is uvicorn on a free loopback port in this process's event loop (the plan is
computed in a worker thread, as in production); the store is a SQLite file in a temporary
folder (WAL, synchronous=FULL). The bus is Redis Streams when ``redis-server`` is installed
(a throw-away instance is started) or ``--bus memory``.

    uv run python bench/worldservice.py            # full run
    uv run python bench/worldservice.py --quick    # fewer repetitions, no 100k
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from _common import cpu_model, free_port, seeded_request

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING, decode_event
from qmtl.controlbus import ControlBus, create_controlbus
from qmtl.worldservice.app import create_app
from qmtl.worldservice.config import WorldServiceSettings


def request_body(n: int, *, n_symbols: int, **extra: Any) -> bytes:
    """The seeded plan request (``_common.seeded_request``) as JSON bytes."""
    return json.dumps(seeded_request(n, n_symbols=n_symbols, **extra)).encode()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


@asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; use --bus memory")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="qmtl-bench-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "",
         "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def worldservice(bus_url: str, folder: Path) -> AsyncIterator[tuple[str, ControlBus]]:
    """uvicorn serving the WorldService in this event loop; yields (base URL, reader bus)."""
    settings = WorldServiceSettings.model_validate({
        "dsn": f"sqlite:///{folder}/ws.db", "controlbus": bus_url,
        "compat_rebalance_v2": True,
        "relay": {"poll_interval": 1.0},
    })
    reader = create_controlbus(bus_url)
    await reader.start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", reader
    finally:
        server.should_exit = True
        await task
        await reader.close()


async def bench_plan(client: httpx.AsyncClient, sizes: list[tuple[int, int, int]]
                     ) -> list[dict[str, Any]]:
    rows = []
    for n, n_symbols, repeats in sizes:
        body = request_body(n, n_symbols=n_symbols, schema_version=2)
        headers = {"content-type": "application/json"}
        await client.post("/rebalancing/plan", content=body, headers=headers)  # warm-up
        times: list[float] = []
        size = 0
        for _ in range(repeats):
            started = time.perf_counter()
            response = await client.post("/rebalancing/plan", content=body, headers=headers)
            served = response.json()
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            size = len(response.content)
        deltas = sum(len(p["deltas"]) for p in served["per_world"].values())
        rows.append({"positions": n, "symbols": n_symbols, "runs": repeats,
                     "request_mb": len(body) / 1e6, "response_mb": size / 1e6,
                     "deltas": deltas, "median_s": statistics.median(times),
                     "max_s": max(times), "min_s": min(times)})
    return rows


async def bench_apply(client: httpx.AsyncClient, reader: ControlBus, *,
                      applies: int) -> dict[str, list[float]]:
    subscription = await reader.subscribe(CONTROLBUS_TOPIC_REBALANCING)
    round_trip: list[float] = []
    first_event: list[float] = []
    last_event: list[float] = []
    small = json.loads(request_body(40, n_symbols=20))
    small["positions"] = [p for p in small["positions"] if p["world_id"] in ("w0", "w1")]
    small["world_alloc_before"] = {"w0": 0.1, "w1": 0.1}
    small["world_alloc_after"] = {"w0": 0.08, "w1": 0.12}
    try:
        for i in range(applies):
            body = json.dumps({**small, "run_id": f"bench-{i}"}).encode()
            started = time.perf_counter()
            response = await client.post("/rebalancing/apply", content=body,
                                         headers={"content-type": "application/json"})
            round_trip.append(time.perf_counter() - started)
            response.raise_for_status()
            seen = 0
            while seen < 2:
                message = await asyncio.wait_for(subscription.__anext__(), timeout=30)
                event = decode_event(message.payload)
                if event.data.get("run_id") != f"bench-{i}":
                    continue
                seen += 1
                (first_event if seen == 1 else last_event).append(
                    time.perf_counter() - started)
    finally:
        await subscription.aclose()
    return {"apply round trip": round_trip, "apply -> 1st world event": first_event,
            "apply -> 2nd world event": last_event}


async def main(args: argparse.Namespace) -> None:
    sizes = [(1_000, 500, 20), (10_000, 2_000, 10), (100_000, 10_000, 5)]
    applies = 300
    if args.quick:
        sizes = [(1_000, 500, 5), (10_000, 2_000, 3)]
        applies = 50
    folder = Path(tempfile.mkdtemp(prefix="qmtl-bench-ws-"))
    try:
        if args.bus == "redis":
            async with redis_server() as url:
                await run(url, folder, sizes, applies)
        else:
            await run("memory://bench", folder, sizes, applies)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def run(bus_url: str, folder: Path, sizes: list[tuple[int, int, int]],
              applies: int) -> None:
    async with worldservice(bus_url, folder) as (base_url, reader), \
            httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        plan_rows = await bench_plan(client, sizes)
        latencies = await bench_apply(client, reader, applies=applies)
    print(f"# WorldService benchmark — {cpu_model()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, bus {bus_url.split('://')[0]}, store SQLite")
    print()
    print("POST /rebalancing/plan (v2, real HTTP, JSON in -> JSON out)")
    print(f"{'positions':>10} {'symbols':>8} {'runs':>5} {'req MB':>7} {'resp MB':>8} "
          f"{'deltas':>7} {'median s':>9} {'min s':>7} {'max s':>7}")
    for r in plan_rows:
        print(f"{r['positions']:>10,} {r['symbols']:>8,} {r['runs']:>5} {r['request_mb']:>7.2f} "
              f"{r['response_mb']:>8.2f} {r['deltas']:>7,} {r['median_s']:>9.3f} "
              f"{r['min_s']:>7.3f} {r['max_s']:>7.3f}")
    print()
    print(f"apply -> rebalancing_planned received ({applies} applies, 2 worlds each)")
    print(f"{'measure':<26} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in latencies.items():
        print(f"{name:<26} {percentile(values, 50) * 1e3:>8.1f} "
              f"{percentile(values, 99) * 1e3:>8.1f} {max(values) * 1e3:>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 100k")
    parser.add_argument("--bus", choices=("redis", "memory"),
                        default="redis" if shutil.which("redis-server") else "memory")
    asyncio.run(main(parser.parse_args()))

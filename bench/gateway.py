"""Benchmark the gateway over real HTTP and real WebSockets (SPEC 7, issue #4).

1. Proxy overhead on ``POST /rebalancing/plan``: the same pre-encoded body sent directly to
   the WorldService and through the gateway (v2 negotiated, capabilities known, one send).
2. ``POST /rebalancing/execute`` latency at 10k positions: dry run per world; per strategy
   + shared account; and a submit that writes the batches to the SQLite commit log.
3. Event relay: 100 WebSocket subscribers on the gateway; the time from sending
   ``POST /rebalancing/apply`` (2 worlds → 2 events; ``--worlds``) to each subscriber
   receiving each event, p50/p99 over every (subscriber, event), and the gateway's own
   part: from the event reaching the ControlBus (a bus reader in this process) to each
   subscriber receiving it. Target p99 ≤ 50 ms on loopback.

Deployment as in production: ``qmtl worldservice serve`` and ``qmtl gateway serve`` are
separate processes; the ControlBus is a throw-away ``redis-server`` (Redis Streams);
stores are SQLite files in a temporary folder. The clients run in this process.

    uv run python bench/gateway.py            # full run
    uv run python bench/gateway.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import cpu_model, free_port, seeded_request
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING, decode_event
from qmtl.controlbus import create_controlbus


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not start")


@contextlib.contextmanager
def deployment(folder: Path) -> Iterator[tuple[str, str, str]]:
    """redis-server + ``qmtl worldservice serve`` + ``qmtl gateway serve``:
    (WorldService URL, gateway URL, bus URL)."""
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is not installed (the processes share a Redis bus)")
    redis_port, ws_port, gw_port = free_port(), free_port(), free_port()
    bus = f"redis://127.0.0.1:{redis_port}/0"
    config = folder / "qmtl.yml"
    config.write_text(json.dumps({
        "worldservice": {"server": {
            "dsn": f"sqlite:///{folder}/ws.db", "controlbus": bus, "compat_rebalance_v2": True,
            "bind": {"host": "127.0.0.1", "port": ws_port}, "relay": {"poll_interval": 1.0}}},
        "gateway": {
            "worldservice_url": f"http://127.0.0.1:{ws_port}", "rebalance_schema_version": 2,
            "alpha_metrics_capable": True, "controlbus": bus,
            "commit_log": f"sqlite:///{folder}/commitlog.db",
            "shared_account_policy": {"enabled": True},
            "timeouts": {"read": 120.0, "write": 120.0},
            "bind": {"host": "127.0.0.1", "port": gw_port},
            "ws": {"client_queue_size": 10_000}},
    }))  # JSON is YAML
    qmtl = str(Path(sys.executable).parent / "qmtl")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(subprocess.Popen(
            [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(folder),
             "--save", "", "--appendonly", "no", "--protected-mode", "no",
             "--loglevel", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for_port(redis_port, processes[-1], "redis-server")
        for part, port in (("worldservice", ws_port), ("gateway", gw_port)):
            processes.append(subprocess.Popen(
                [qmtl, part, "serve", "--config", str(config), "--log-level", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for_port(port, processes[-1], part)
        yield f"http://127.0.0.1:{ws_port}", f"http://127.0.0.1:{gw_port}", bus
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


async def timed_post(client: httpx.AsyncClient, url: str, body: bytes, *, runs: int,
                     headers: dict[str, str] | None = None) -> list[float]:
    headers = {"content-type": "application/json", **(headers or {})}
    (await client.post(url, content=body, headers=headers)).raise_for_status()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.post(url, content=body, headers=headers)
        response.json()
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


async def bench_proxy(client: httpx.AsyncClient, ws: str, gw: str,
                      sizes: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """Direct and proxied runs interleaved (a change of load weighs on both); medians."""
    rows = []
    for n, n_symbols, runs in sizes:
        body = encode(seeded_request(n, n_symbols=n_symbols, schema_version=2))
        direct: list[float] = []
        proxied: list[float] = []
        for _ in range(runs):
            direct += await timed_post(client, f"{ws}/rebalancing/plan", body, runs=1)
            proxied += await timed_post(client, f"{gw}/rebalancing/plan", body, runs=1)
        rows.append({"positions": n, "runs": runs, "request_mb": len(body) / 1e6,
                     "direct": statistics.median(direct), "gateway": statistics.median(proxied)})
    return rows


async def bench_execute(client: httpx.AsyncClient, gw: str, *, runs: int
                        ) -> list[tuple[str, list[float]]]:
    base = seeded_request(10_000, n_symbols=2_000, schema_version=2)
    cases = [
        ("dry run, per world", "", base, None),
        ("dry run, per strategy + shared account", "?per_strategy=true&shared_account=true",
         base, None),
    ]
    rows = [(name, await timed_post(client, f"{gw}/rebalancing/execute{query}", encode(body),
                                    runs=runs, headers=headers))
            for name, query, body, headers in cases]
    submit_times = []
    for i in range(runs + 1):  # a new run_id each time: every submit writes its batches
        body = encode({**base, "run_id": f"bench-submit-{i}"})
        started = time.perf_counter()
        response = await client.post(f"{gw}/rebalancing/execute?submit=true", content=body,
                                     headers={"content-type": "application/json",
                                              "x-allow-live": "true"})
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        if i:
            submit_times.append(elapsed)
    rows.append(("submit per world (SQLite commit log)", submit_times))
    return rows


async def subscriber(url: str) -> ClientConnection:
    # Compression off: the gateway serves without per-message deflate (see qmtl gateway serve).
    ws = await connect(url, open_timeout=30, max_queue=None, compression=None)
    await ws.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"]}))
    json.loads(await ws.recv())
    return ws


async def reader(ws: ClientConnection, received: dict[str, list[float]]) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            now = time.perf_counter()
            received.setdefault(json.loads(message)["id"], []).append(now)


async def bus_watcher(bus_url: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    """When each event reached the ControlBus, as seen by a reader in this process."""
    bus = create_controlbus(bus_url)
    await bus.start()
    try:
        subscription = await bus.subscribe(CONTROLBUS_TOPIC_REBALANCING)
        ready.set()
        async for message in subscription:
            seen[decode_event(message.payload).id] = time.perf_counter()
    finally:
        await bus.close()


async def bench_relay(client: httpx.AsyncClient, gw: str, bus_url: str, *, subscribers: int,
                      applies: int, worlds: int) -> dict[str, list[float]]:
    ws_url = gw.replace("http://", "ws://") + "/ws"
    connections = list(await asyncio.gather(*(subscriber(ws_url) for _ in range(subscribers))))
    received: dict[str, list[float]] = {}
    on_bus: dict[str, float] = {}
    watching = asyncio.Event()
    tasks = [asyncio.create_task(reader(ws, received)) for ws in connections]
    tasks.append(asyncio.create_task(bus_watcher(bus_url, on_bus, watching)))
    await watching.wait()
    small = seeded_request(40 * worlds, n_symbols=20)
    names = [f"w{i}" for i in range(worlds)]
    small["positions"] = [p for p in small["positions"] if p["world_id"] in names]
    small["world_alloc_before"] = dict.fromkeys(names, 0.1)
    small["world_alloc_after"] = {w: 0.08 if i % 2 else 0.12 for i, w in enumerate(names)}
    results: dict[str, list[float]] = {"apply round trip": [], "apply -> first subscriber": [],
                                       "apply -> every (subscriber, event)": [],
                                       "bus -> every (subscriber, event)": []}
    try:
        for i in range(applies):
            body = encode({**small, "run_id": f"relay-{i}"})
            started = time.perf_counter()
            response = await client.post(f"{gw}/rebalancing/apply", content=body,
                                         headers={"content-type": "application/json"})
            results["apply round trip"].append(time.perf_counter() - started)
            response.raise_for_status()
            ids: list[str] = []
            for _ in range(3000):
                ids = [e for e in on_bus if e not in received or len(received[e]) < subscribers]
                mine = [e for e in received if len(received[e]) >= subscribers
                        and on_bus.get(e, 0) >= started]
                if len(mine) >= worlds and not ids:
                    break
                await asyncio.sleep(0.005)
            events = [e for e, t in on_bus.items() if t >= started]
            if len(events) != worlds or any(len(received.get(e, [])) < subscribers
                                            for e in events):
                raise SystemExit(f"apply {i}: not every event reached every subscriber")
            times = [t for e in events for t in received[e]]
            results["apply -> every (subscriber, event)"] += [t - started for t in times]
            results["apply -> first subscriber"].append(min(times) - started)
            results["bus -> every (subscriber, event)"] += [
                t - on_bus[e] for e in events for t in received[e]]
            for e in events:
                del received[e]
                del on_bus[e]
    finally:
        for ws in connections:
            await ws.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results


async def main(args: argparse.Namespace) -> None:
    sizes = [(1_000, 500, 20), (10_000, 2_000, 10), (100_000, 10_000, 3)]
    execute_runs, applies = 10, 50
    if args.quick:
        sizes = [(1_000, 500, 9), (10_000, 2_000, 9)]
        execute_runs, applies = 3, 10
    folder = Path(tempfile.mkdtemp(prefix="qmtl-bench-gw-"))
    try:
        with deployment(folder) as (ws, gw, bus):
            async with httpx.AsyncClient(timeout=300) as client:
                proxy = await bench_proxy(client, ws, gw, sizes)
                execute = await bench_execute(client, gw, runs=execute_runs)
                relay = await bench_relay(client, gw, bus, subscribers=args.subscribers,
                                          applies=applies, worlds=args.worlds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"# Gateway benchmark — {cpu_model()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; WorldService and gateway in separate "
          "processes, Redis Streams bus, SQLite stores")
    print()
    print("POST /rebalancing/plan, v2: direct to the WorldService vs through the gateway "
          "(median)")
    print(f"{'positions':>10} {'runs':>5} {'req MB':>7} {'direct s':>9} {'gateway s':>10} "
          f"{'overhead s':>11} {'overhead':>9}")
    for r in proxy:
        extra = r["gateway"] - r["direct"]
        print(f"{r['positions']:>10,} {r['runs']:>5} {r['request_mb']:>7.2f} {r['direct']:>9.3f} "
              f"{r['gateway']:>10.3f} {extra:>11.3f} {extra / r['direct']:>8.0%}")
    print()
    print("POST /rebalancing/execute, 10,000 positions, 2,000 symbols")
    print(f"{'case':<42} {'runs':>5} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, times in execute:
        print(f"{name:<42} {len(times):>5} {statistics.median(times):>9.3f} "
              f"{min(times):>7.3f} {max(times):>7.3f}")
    print()
    print(f"apply -> rebalancing.planned on the gateway WebSocket ({args.subscribers} "
          f"subscribers, {applies} applies x {args.worlds} worlds)")
    print(f"{'measure':<36} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in relay.items():
        print(f"{name:<36} {len(values):>8,} {percentile(values, 50) * 1e3:>8.1f} "
              f"{percentile(values, 99) * 1e3:>8.1f} {max(values) * 1e3:>8.1f}")
    for name in ("apply -> every (subscriber, event)", "bus -> every (subscriber, event)"):
        p99 = percentile(relay[name], 99) * 1e3
        print(f"target p99 <= 50 ms, {name}: {'met' if p99 <= 50 else 'NOT met'} "
              f"({p99:.1f} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 100k")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--worlds", type=int, default=2, help="worlds (events) per apply")
    asyncio.run(main(parser.parse_args()))

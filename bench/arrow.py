"""Benchmark Arrow IPC against JSON on ``POST /rebalancing/plan`` over real HTTP (SPEC 7).

The issue's book: 10 worlds × 50 strategies (500 strategy ids), 10,000 symbols × 3 venues,
seeded (``_common.seeded_request``), v2 with alpha metrics. Each row is the whole path a
caller pays: a pre-encoded body sent over loopback HTTP to a WorldService (``qmtl
worldservice serve`` in its own process; ``--in-process``: uvicorn in this process's event
loop; the plan runs in a worker thread), the answer read and decoded — ``json.loads`` for
JSON, ``pyarrow.ipc`` for Arrow. Target: Arrow 1M ≤ 0.6 s.

    uv run python bench/arrow.py              # 100k and 1M (JSON at 1M: one run)
    uv run python bench/arrow.py --quick      # 100k only
    uv run python bench/arrow.py --no-json-1m # skip the slow JSON 1M row
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import uvicorn
from _common import free_port, machine_line, seeded_request

from qmtl.contracts import ARROW_STREAM_MEDIA_TYPE, decode_arrow_plan, encode_arrow_request
from qmtl.worldservice.app import create_app
from qmtl.worldservice.config import WorldServiceSettings

N_SYMBOLS = 10_000
ARROW = ARROW_STREAM_MEDIA_TYPE


SERVER = {
    "controlbus": "memory://bench-arrow",
    "compat_rebalance_v2": True,
    "max_positions": 2_000_000,
    "max_body_bytes": 1 << 30,
}


@asynccontextmanager
async def worldservice_process(folder: Path) -> AsyncIterator[str]:
    """``qmtl worldservice serve`` in its own process (as deployed: the client does not
    share its interpreter)."""
    config = folder / "qmtl.yaml"
    config.write_text(
        json.dumps({"worldservice": {"server": {**SERVER, "dsn": f"sqlite:///{folder}/ws.db"}}})
    )
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qmtl",
            "worldservice",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe:
            for _ in range(600):
                try:
                    if (await probe.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    raise SystemExit("the WorldService did not start")
                await asyncio.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@asynccontextmanager
async def worldservice(folder: Path) -> AsyncIterator[str]:
    """uvicorn serving the WorldService in this process's event loop."""
    settings = WorldServiceSettings.model_validate({**SERVER, "dsn": f"sqlite:///{folder}/ws.db"})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def bodies(n: int) -> tuple[bytes, bytes, bytes]:
    """The same seeded request as JSON bytes, as an Arrow stream with dictionary-encoded
    ids (what the SDK sends) and with plain string ids (the server hashes them)."""
    request = seeded_request(n, n_symbols=N_SYMBOLS, schema_version=2)
    positions = request.pop("positions")
    plain = pa.table(
        {
            name: [p[name] for p in positions]
            for name in ("world_id", "strategy_id", "symbol", "qty", "mark", "venue")
        }
    )
    ids = ("world_id", "strategy_id", "symbol", "venue")
    dictionary = pa.table(
        {
            name: (
                plain.column(name).combine_chunks().dictionary_encode()
                if name in ids
                else plain.column(name)
            )
            for name in plain.column_names
        }
    )
    as_json = json.dumps({**request, "positions": positions}).encode()
    return (
        as_json,
        encode_arrow_request(dictionary, request),
        encode_arrow_request(plain, request),
    )


async def timed(
    client: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    decode: Callable[[bytes], Any],
    runs: int,
) -> tuple[list[float], int]:
    times: list[float] = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.post("/rebalancing/plan", content=body, headers=headers)
        response.raise_for_status()
        decode(response.content)
        times.append(time.perf_counter() - started)
        size = len(response.content)
    return times, size


async def run(sizes: list[int], *, json_1m: bool, in_process: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    folder = Path(tempfile.mkdtemp(prefix="qmtl-bench-arrow-"))
    server = worldservice if in_process else worldservice_process
    try:
        async with server(folder) as url, httpx.AsyncClient(base_url=url, timeout=600) as client:
            for n in sizes:
                as_json, as_arrow, plain_arrow = bodies(n)
                cases = [
                    (
                        "Arrow -> Arrow",
                        as_arrow,
                        {"content-type": ARROW, "accept": ARROW},
                        decode_arrow_plan,
                        5,
                    ),
                    (
                        "Arrow* -> Arrow",
                        plain_arrow,
                        {"content-type": ARROW, "accept": ARROW},
                        decode_arrow_plan,
                        3,
                    ),
                    ("Arrow -> JSON", as_arrow, {"content-type": ARROW}, json.loads, 3),
                    (
                        "JSON -> JSON",
                        as_json,
                        {"content-type": "application/json"},
                        json.loads,
                        3 if n < 1_000_000 else 1,
                    ),
                ]
                for name, body, headers, decode, runs in cases:
                    if n >= 1_000_000 and name == "JSON -> JSON" and not json_1m:
                        continue
                    await timed(client, body, headers, decode, 1)  # warm-up
                    times, size = await timed(client, body, headers, decode, runs)
                    rows.append(
                        {
                            "positions": n,
                            "path": name,
                            "runs": runs,
                            "request_mb": len(body) / 1e6,
                            "response_mb": size / 1e6,
                            "median_s": statistics.median(times),
                            "min_s": min(times),
                        }
                    )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k only")
    parser.add_argument("--no-json-1m", action="store_true", help="skip JSON at 1M")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="serve from this process's event loop instead of a subprocess",
    )
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    rows = asyncio.run(run(sizes, json_1m=not args.no_json_1m, in_process=args.in_process))
    print(f"# Arrow IPC vs JSON — {machine_line()}")
    print()
    where = "in this process" if args.in_process else "its own process"
    print(
        f"POST /rebalancing/plan straight to the WorldService ({where}; v2, real HTTP, "
        "10 worlds x 50 strategies, 10,000 symbols x 3 venues)"
    )
    print(
        f"{'positions':>10} {'path (in -> out)':<16} {'runs':>4} {'req MB':>7} "
        f"{'resp MB':>8} {'median s':>9} {'min s':>7}"
    )
    for r in rows:
        print(
            f"{r['positions']:>10,} {r['path']:<16} {r['runs']:>4} {r['request_mb']:>7.1f} "
            f"{r['response_mb']:>8.2f} {r['median_s']:>9.3f} {r['min_s']:>7.3f}"
        )
    print()
    print(
        "Arrow: ids dictionary-encoded by the caller (the SDK does this); Arrow*: plain "
        "string ids, hashed by the server. Times include sending, planning, reading and "
        "decoding the answer."
    )


if __name__ == "__main__":
    main()

"""Benchmark the whole wire path of a plan (SPEC 7): bytes in → plan → bytes out.

Seeded requests (10 worlds × 50 strategies = 500 strategies, 10,000 symbols × 3 venues) at
10k / 100k / 1M positions. In one run, for each size:

* **floor** — the fastest measured library's decode of the request bytes plus its encode of
  the decoded document (msgspec and orjson are both timed; the faster pair is the floor);
* **pydantic path** (before issue 11) — ``model_validate_json`` + ``compute_plan``, in process;
* **columnar path** — ``engine.columns.decode_request`` + ``compute_plan_columns``, in process;
* **Python from dicts** — ``engine.columns.plan_rebalance_data`` on ``json.loads`` output;
* **HTTP direct** — ``POST /rebalancing/plan`` to ``qmtl worldservice serve`` (uvicorn, own
  process), response read; **through the gateway** (``qmtl gateway serve``); and through a
  **bare proxy** (``bench/bare_proxy.py``: uvicorn + httpx streaming, no checks — the cost
  of a second Python process on the path). The three are interleaved run by run; medians,
  the median and quartiles of the per-run ratios to direct, and each proxy's CPU time per
  request (the gateway's is what its guarantees cost beyond the bare proxy's);
* **peak RSS** of the WorldService process while serving the plan, over its idle RSS
  (``VmHWM`` reset through ``/proc/<pid>/clear_refs`` before each size).

    uv run python bench/wire.py            # 10k, 100k, 1M
    uv run python bench/wire.py --quick    # 10k, 100k
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import psutil
from _common import free_port, machine_line, seeded_request

from gateway import deployment, wait_for_port
from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.engine.columns import decode_request, plan_rebalance_data
from qmtl.worldservice.planning import compute_plan, compute_plan_columns

N_SYMBOLS = 10_000


def best(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def floor(raw: bytes, runs: int) -> tuple[float, str]:
    candidates = {
        "msgspec": (msgspec.json.decode, msgspec.json.encode),
        "orjson": (orjson.loads, orjson.dumps),
    }
    results = []
    for name, (decode, encode) in candidates.items():
        document = decode(raw)
        results.append((best(lambda d=decode: d(raw), runs)
                        + best(lambda e=encode, doc=document: e(doc), runs), name))
    return min(results)


def pydantic_path(raw: bytes) -> bytes:
    request = MultiWorldRebalanceRequest.model_validate_json(raw)
    return compute_plan(request, version=2, periods_per_year=252, with_body=False)[1]


def columnar_path(raw: bytes) -> bytes:
    fast = decode_request(raw)
    assert fast is not None
    return compute_plan_columns(fast.request, fast.book, version=2, periods_per_year=252)


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


async def post_time(client: httpx.AsyncClient, url: str, body: bytes) -> float:
    started = time.perf_counter()
    response = await client.post(url, content=body, headers={"content-type": "application/json"})
    response.read()
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


async def over_http(sizes: list[tuple[int, bytes, int]]) -> dict[int, dict[str, float]]:
    """Direct, through the gateway and through a bare proxy, interleaved run by run (so
    that a change of load on the shared machine weighs on all alike): medians, the median
    and quartiles of the per-run ratios, and the CPU each proxy process spent per request."""
    out: dict[int, dict[str, float]] = {}
    with (tempfile.TemporaryDirectory() as folder, deployment(Path(folder)) as (ws, gw, _bus),
          bare_proxy_process(ws) as (bare, bare_pid)):
        pid = server_pid(ws, "worldservice")
        cpu_of = {"gateway": psutil.Process(server_pid(gw, "gateway")),
                  "bare": psutil.Process(bare_pid)}
        urls = {"direct": ws, "gateway": gw, "bare": bare}
        async with httpx.AsyncClient(timeout=600) as client:
            small = orjson.dumps(seeded_request(100, n_symbols=100, schema_version=2))
            for url in list(urls.values()) * 3:
                await post_time(client, f"{url}/rebalancing/plan", small)
            for n, body, runs in sizes:
                await asyncio.sleep(1.0)
                idle = vm_kib(pid, "VmRSS")
                Path(f"/proc/{pid}/clear_refs").write_text("5")
                times: dict[str, list[float]] = {name: [] for name in urls}
                cpu = {name: cpu_seconds(process) for name, process in cpu_of.items()}
                for _ in range(runs):
                    for name, url in urls.items():
                        times[name].append(
                            await post_time(client, f"{url}/rebalancing/plan", body))
                peak = vm_kib(pid, "VmHWM")
                row = {name: statistics.median(values) for name, values in times.items()}
                for name, process in cpu_of.items():
                    row[f"{name}_cpu"] = (cpu_seconds(process) - cpu[name]) / runs
                    ratios = [a / b for a, b in zip(times[name], times["direct"], strict=True)]
                    q1, q2, q3 = statistics.quantiles(ratios, n=4)
                    row.update({f"{name}_ratio": q2, f"{name}_q1": q1, f"{name}_q3": q3})
                row["peak_over_idle_mb"] = (peak - idle) * 1024 / 1e6
                out[n] = row
    return out


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@contextlib.contextmanager
def bare_proxy_process(upstream: str) -> Iterator[tuple[str, int]]:
    """``bench/bare_proxy.py`` in its own process: (URL, pid)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("bare_proxy.py")), str(port), upstream])
    try:
        wait_for_port(port, process, "bare proxy")
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def server_pid(url: str, part: str) -> int:
    """The pid of the ``qmtl <part> serve`` process listening on ``url``'s port."""
    port = int(url.rsplit(":", 1)[1])
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if part in cmd and "serve" in cmd:
            for conn in proc.net_connections(kind="tcp"):
                if conn.laddr and conn.laddr.port == port:
                    return int(proc.info["pid"])
    raise SystemExit(f"{part} process not found")


def decoders(n: int) -> None:
    """The candidate readers of the positions, timed on the same bytes (best of 3)."""
    import io

    from qmtl.contracts._fast import FastPositionRow, SplitRequest, split_request
    from qmtl.engine.columns import book_from_chunks

    raw = orjson.dumps(seeded_request(n, n_symbols=N_SYMBOLS))
    split = split_request(raw)
    assert split is not None
    top = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    rows = msgspec.json.Decoder(list[FastPositionRow])
    candidates: list[tuple[str, Callable[[], Any]]] = [
        ("json.loads (dicts)", lambda: json.loads(raw)),
        ("orjson.loads (dicts)", lambda: orjson.loads(raw)),
        ("msgspec untyped (dicts)", lambda: msgspec.json.decode(raw)),
        ("msgspec top level only (Raw values)",
         lambda: msgspec.json.decode(raw, type=dict[str, msgspec.Raw])),
        ("msgspec top level + one Raw per position (split_request)",
         lambda: split_request(raw)),
        ("msgspec typed rows, all at once", lambda: rows.decode(top["positions"])),
        ("Raw positions -> typed rows -> PositionBook, 65,536-row chunks",
         lambda: book_from_chunks(len(split), SplitRequest(split.request,
                                                           list(split.items)).chunks())),
        ("pydantic model_validate_json",
         lambda: MultiWorldRebalanceRequest.model_validate_json(raw)),
    ]
    try:
        import polars as pl
    except ImportError:
        pl = None
    if pl is not None:
        positions = bytes(top["positions"])
        schema = {"world_id": pl.String, "strategy_id": pl.String, "symbol": pl.String,
                  "qty": pl.Float64, "mark": pl.Float64, "venue": pl.String}
        candidates.append(("polars read_json (positions only)",
                           lambda: pl.read_json(io.BytesIO(positions), schema=schema)))
    print()
    print(f"| reader, {n:,} positions ({len(raw) / 1e6:.0f} MB) | best of 3 |")
    print("|---|---:|")
    for name, fn in candidates:
        print(f"| {name} | {best(fn, 3):.3f} s |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--decoders", type=int, default=0, metavar="N",
                        help="only time the candidate readers at N positions")
    args = parser.parse_args()
    if args.decoders:
        print(machine_line())
        decoders(args.decoders)
        return
    plan = [(10_000, 41), (100_000, 21)] + ([] if args.quick else [(1_000_000, 5)])
    print(machine_line())
    rows = []
    sizes = []
    for n, runs in plan:
        data = seeded_request(n, n_symbols=N_SYMBOLS, schema_version=2)
        raw = orjson.dumps(data)
        sizes.append((n, raw, runs))
        assert json.loads(columnar_path(raw)) == json.loads(pydantic_path(raw))
        floor_s, floor_lib = floor(raw, min(runs, 5))
        rows.append({
            "n": n, "mb": len(raw) / 1e6, "floor": floor_s, "floor_lib": floor_lib,
            "pydantic": best(lambda raw=raw: pydantic_path(raw), 2),
            "columnar": best(lambda raw=raw: columnar_path(raw), min(runs, 5)),
            "dicts": best(lambda data=data: plan_rebalance_data(data), min(runs, 5)),
        })
        print(f"  measured {n:,} in process", file=sys.stderr)
    http = asyncio.run(over_http(sizes))
    print()
    print("| positions | request MB | floor (lib) | pydantic path | columnar path | ratio to floor "
          "| from dicts | HTTP direct | via gateway | gateway / direct (quartiles) "
          "| bare proxy / direct | CPU per request: gateway, bare proxy | peak RSS over idle |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        h = http[row["n"]]
        print(f"| {row['n']:,} | {row['mb']:.1f} | {row['floor']:.3f} s ({row['floor_lib']}) "
              f"| {row['pydantic']:.3f} s | {row['columnar']:.3f} s "
              f"| {row['columnar'] / row['floor']:.2f}× | {row['dicts']:.3f} s "
              f"| {h['direct']:.3f} s | {h['gateway']:.3f} s "
              f"| {h['gateway_ratio']:.2f}× ({h['gateway_q1']:.2f}–{h['gateway_q3']:.2f}) "
              f"| {h['bare_ratio']:.2f}× ({h['bare_q1']:.2f}–{h['bare_q3']:.2f}) "
              f"| {h['gateway_cpu'] * 1e3:.1f} ms, {h['bare_cpu'] * 1e3:.1f} ms "
              f"| {h['peak_over_idle_mb']:.0f} MB ({h['peak_over_idle_mb'] / row['mb']:.2f}× "
              "the request) |")

if __name__ == "__main__":
    main()

"""Bounded loopback load test on plan and execute (issue #6 item 6).

A ``qmtl up``-like deployment of real processes — the settings ``qmtl up`` embeds (plan
schema v2 end to end, alpha metrics on, SQLite store and SQLite commit log in a data folder)
— then a fixed number of concurrent clients send requests for a fixed time:

1. warm-up (not recorded): plan and execute, so imports and caches are loaded;
2. ``POST /rebalancing/plan`` for ``--plan-seconds``;
3. ``POST /rebalancing/execute?submit=true`` (a new ``run_id`` per request, so every
   execute writes its batches to the commit log) for ``--execute-seconds``.

Each phase reports requests, errors (any answer other than 200, or a transport failure),
throughput and p50/p99 latency. The RSS of every service process (psutil) is sampled when
the deployment is up, after the warm-up, every 0.5 s while loaded (peak) and at the end:
"memory flat" means end ≈ warm.

Topologies (``--topology``):

* ``split`` (default): ``qmtl worldservice serve`` + ``qmtl gateway serve`` + a throw-away
  ``redis-server`` for the ControlBus (separate processes cannot share ``memory://``);
* ``up``: the real ``qmtl up`` (both services in one process, in-process bus).

The whole run (start-up included) stays under 60 s with the defaults::

    uv run python bench/load.py                       # split, 8 clients, 12 s + 12 s
    uv run python bench/load.py --topology up
    uv run python bench/load.py --concurrency 16 --json load.json

The clients run in this process and share the machine's cores with the services: on a
2-core machine the numbers are a floor for the services, not their ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from _common import cpu_model, free_port

WORLDS = 10
STRATEGIES = 5
SYMBOLS = 20
SEED = 20_240_611
MIB = 1024 * 1024
MAX_TOTAL_SECONDS = 60.0
STARTUP_ALLOWANCE = 20.0
"""Seconds kept for starting the processes inside the 60 s bound."""


@dataclass(frozen=True)
class LoadConfig:
    """What to run: topology, concurrent clients, phase lengths (seconds), request size."""

    topology: str = "split"
    concurrency: int = 8
    warmup_seconds: float = 2.0
    plan_seconds: float = 12.0
    execute_seconds: float = 12.0
    positions_per_world_strategy: int = SYMBOLS

    def __post_init__(self) -> None:
        if self.topology not in ("split", "up"):
            raise ValueError(f"topology must be 'split' or 'up', got {self.topology!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        loaded = self.warmup_seconds + self.plan_seconds + self.execute_seconds
        if min(self.warmup_seconds, self.plan_seconds, self.execute_seconds) <= 0:
            raise ValueError("warmup_seconds, plan_seconds and execute_seconds must be > 0")
        if loaded + STARTUP_ALLOWANCE > MAX_TOTAL_SECONDS:
            raise ValueError(
                f"warm-up + plan + execute = {loaded:.0f}s; with {STARTUP_ALLOWANCE:.0f}s "
                f"for start-up that exceeds the {MAX_TOTAL_SECONDS:.0f}s bound")

    @property
    def positions(self) -> int:
        return WORLDS * STRATEGIES * self.positions_per_world_strategy


@dataclass
class PhaseResult:
    """One phase: every latency (seconds) and every error message."""

    operation: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)

    @property
    def throughput(self) -> float:
        """Successful requests per second of wall time."""
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        return float(np.percentile(np.asarray(self.latencies), q)) * 1e3


@dataclass
class ProcessMemory:
    """RSS of one service process, in bytes, at the sampling points."""

    name: str
    pid: int
    idle: int = 0
    warm: int = 0
    peak: int = 0
    end: int = 0

    @property
    def growth(self) -> int:
        """``end − warm``: what the measured load added after the warm-up."""
        return self.end - self.warm


@dataclass
class LoadReport:
    config: LoadConfig
    machine: dict[str, Any]
    phases: list[PhaseResult]
    memory: list[ProcessMemory]
    wall_seconds: float

    @property
    def errors(self) -> int:
        return sum(len(p.errors) for p in self.phases)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "machine": self.machine,
            "wall_seconds": round(self.wall_seconds, 1),
            "phases": [{"operation": p.operation, "requests": p.requests,
                        "errors": len(p.errors), "seconds": round(p.seconds, 2),
                        "throughput_rps": round(p.throughput, 1),
                        "p50_ms": round(p.percentile_ms(50), 1),
                        "p99_ms": round(p.percentile_ms(99), 1),
                        "error_samples": p.errors[:5]} for p in self.phases],
            "memory_mib": [{"process": m.name, "pid": m.pid, "idle": m.idle / MIB,
                            "warm": m.warm / MIB, "peak": m.peak / MIB, "end": m.end / MIB,
                            "growth": m.growth / MIB} for m in self.memory],
        }


# -- machine -----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    """nproc, CPU model, load average (1/5/15 min) now, memory, Python."""
    return {"nproc": os.cpu_count(), "cpu": cpu_model(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "memory_gib": round(psutil.virtual_memory().total / 1024 ** 3, 1),
            "python": platform.python_version()}


# -- deployment --------------------------------------------------------------------------------

@dataclass
class Deployment:
    gateway_url: str
    processes: dict[str, int]


def wait_healthy(url: str, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not become healthy in 60s:\n{log.read_text()}")


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} during start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not open port {port}")


@contextlib.contextmanager
def deployment(topology: str) -> Iterator[Deployment]:
    """Start the services of ``topology`` in a temporary folder; stop them (SIGTERM) after."""
    folder = Path(tempfile.mkdtemp(prefix="qmtl-load-"))
    qmtl = shutil.which("qmtl") or str(Path(sys.executable).with_name("qmtl"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QMTL__")}
    started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with (folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=folder)
        started.append((name, process))
        return process

    try:
        ws_port, gw_port = free_port(), free_port()
        gw_url = f"http://127.0.0.1:{gw_port}"
        if topology == "up":
            process = spawn("qmtl-up", [qmtl, "up", "--data-dir", str(folder / "data"),
                                        "--gateway-port", str(gw_port),
                                        "--worldservice-port", str(ws_port),
                                        "--log-level", "warning"])
            wait_healthy(gw_url, process, "qmtl up", folder / "qmtl-up.log")
        else:
            redis_bin = shutil.which("redis-server")
            if redis_bin is None:
                raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
            redis_port = free_port()
            bus = f"redis://127.0.0.1:{redis_port}/0"
            redis = spawn("redis-server", [
                redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--dir",
                str(folder), "--save", "", "--appendonly", "no", "--protected-mode", "no",
                "--loglevel", "warning"])
            wait_for_port(redis_port, redis, "redis-server")
            config = folder / "qmtl.yml"
            config.write_text(json.dumps({  # JSON is YAML
                "worldservice": {"server": {
                    "dsn": f"sqlite:///{folder}/worldservice.db", "controlbus": bus,
                    "compat_rebalance_v2": True}},
                "gateway": {
                    "worldservice_url": f"http://127.0.0.1:{ws_port}",
                    "rebalance_schema_version": 2, "alpha_metrics_capable": True,
                    "controlbus": bus, "commit_log": f"sqlite:///{folder}/commitlog.db"},
            }))
            ws = spawn("worldservice", [qmtl, "worldservice", "serve", "--config", str(config),
                                        "--port", str(ws_port), "--log-level", "warning"])
            wait_healthy(f"http://127.0.0.1:{ws_port}", ws, "worldservice",
                         folder / "worldservice.log")
            gw = spawn("gateway", [qmtl, "gateway", "serve", "--config", str(config),
                                   "--port", str(gw_port), "--log-level", "warning"])
            wait_healthy(gw_url, gw, "gateway", folder / "gateway.log")
        yield Deployment(gateway_url=gw_url,
                         processes={name: process.pid for name, process in started})
    finally:
        for _name, process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


# -- load --------------------------------------------------------------------------------------

def build_request(config: LoadConfig) -> dict[str, Any]:
    """A seeded request: 10 worlds × 5 strategies × N symbols, every world rescaled
    (after = 0.12 / 0.08 alternately), so plan and execute have real deltas and orders."""
    rng = np.random.default_rng(SEED)
    positions = []
    for w in range(WORLDS):
        for s in range(STRATEGIES):
            for k in range(config.positions_per_world_strategy):
                positions.append({
                    "world_id": f"w{w}", "strategy_id": f"w{w}-s{s}", "symbol": f"SYM{k:04d}",
                    "qty": round(float(rng.normal(0, 10)), 3) or 1.0,
                    "mark": round(float(rng.uniform(1, 1000)), 2),
                    "venue": ("binance", "cme", None)[k % 3],
                })
    return {
        "total_equity": 10_000_000.0,
        "world_alloc_before": {f"w{w}": 0.1 for w in range(WORLDS)},
        "world_alloc_after": {f"w{w}": (0.12 if w % 2 else 0.08) for w in range(WORLDS)},
        "positions": positions,
        "min_trade_notional": 10.0,
        "schema_version": 2,
    }


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 once the process is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


async def _phase(client: httpx.AsyncClient, operation: str, *, seconds: float,
                 concurrency: int, body: dict[str, Any], execute: bool) -> PhaseResult:
    """``concurrency`` workers send back-to-back requests until ``seconds`` have passed."""
    result = PhaseResult(operation=operation, seconds=seconds)
    template = json.dumps(body)
    counter = iter(range(10 ** 9))
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        while time.perf_counter() < stop_at:
            if execute:
                run_id = f"load-{os.getpid()}-{index}-{next(counter)}"
                content = template[:-1] + f', "run_id": "{run_id}"}}'
                url, params = "/rebalancing/execute", {"submit": "true"}
                headers = {"content-type": "application/json", "x-allow-live": "true"}
            else:
                content, url, params = template, "/rebalancing/plan", {}
                headers = {"content-type": "application/json"}
            started = time.perf_counter()
            try:
                response = await client.post(url, content=content, params=params,
                                             headers=headers)
                response.json()
            except (httpx.HTTPError, ValueError) as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                result.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            else:
                result.latencies.append(elapsed)

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    result.seconds = time.perf_counter() - began
    return result


async def drive(gateway_url: str, config: LoadConfig, memory: list[ProcessMemory]
                ) -> list[PhaseResult]:
    """Warm up, then the plan and execute phases; samples RSS into ``memory``."""
    body = build_request(config)
    limits = httpx.Limits(max_connections=config.concurrency,
                          max_keepalive_connections=config.concurrency)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60, limits=limits) as client:
        half = config.warmup_seconds / 2
        for operation, execute in (("warm-up plan", False), ("warm-up execute", True)):
            warm = await _phase(client, operation, seconds=half,
                                concurrency=config.concurrency, body=body, execute=execute)
            if warm.errors:
                raise RuntimeError(f"{operation} failed: {warm.errors[:3]}")
        for m in memory:
            m.warm = m.peak = rss(m.pid)

        async def sample() -> None:
            while True:
                await asyncio.sleep(0.5)
                for m in memory:
                    m.peak = max(m.peak, rss(m.pid))

        sampler = asyncio.create_task(sample())
        try:
            phases = [
                await _phase(client, "plan", seconds=config.plan_seconds,
                             concurrency=config.concurrency, body=body, execute=False),
                await _phase(client, "execute (submit)", seconds=config.execute_seconds,
                             concurrency=config.concurrency, body=body, execute=True),
            ]
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
    for m in memory:
        m.end = rss(m.pid)
        m.peak = max(m.peak, m.end)
    return phases


def run(config: LoadConfig) -> LoadReport:
    """Start the deployment, run the load, stop the deployment; returns the numbers."""
    began = time.perf_counter()
    described = machine()
    with deployment(config.topology) as deployed:
        memory = [ProcessMemory(name=name, pid=pid, idle=rss(pid))
                  for name, pid in deployed.processes.items()]
        phases = asyncio.run(drive(deployed.gateway_url, config, memory))
    return LoadReport(config=config, machine=described, phases=phases, memory=memory,
                      wall_seconds=time.perf_counter() - began)


def format_report(report: LoadReport) -> str:
    c, m = report.config, report.machine
    lines = [
        f"QMTL load test — topology {c.topology}, {c.concurrency} concurrent clients, "
        f"{c.positions:,} positions per request, wall time {report.wall_seconds:.1f}s",
        f"machine: nproc {m['nproc']}, {m['cpu']}, {m['memory_gib']} GiB, load average "
        f"{' '.join(str(x) for x in m['load_average'])} (at start), Python {m['python']}",
        "",
        f"{'operation':<18} {'requests':>8} {'errors':>6} {'seconds':>7} {'req/s':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7}",
    ]
    for p in report.phases:
        lines.append(f"{p.operation:<18} {p.requests:>8} {len(p.errors):>6} {p.seconds:>7.1f} "
                     f"{p.throughput:>7.1f} {p.percentile_ms(50):>7.1f} "
                     f"{p.percentile_ms(99):>7.1f}")
    lines += ["", f"{'process':<14} {'pid':>7} {'RSS idle':>9} {'warm':>7} {'peak':>7} "
                  f"{'end':>7} {'end-warm':>9}  (MiB)"]
    for mem in report.memory:
        lines.append(f"{mem.name:<14} {mem.pid:>7} {mem.idle / MIB:>9.1f} {mem.warm / MIB:>7.1f} "
                     f"{mem.peak / MIB:>7.1f} {mem.end / MIB:>7.1f} {mem.growth / MIB:>+9.1f}")
    for p in report.phases:
        for error in p.errors[:3]:
            lines.append(f"error sample ({p.operation}): {error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--topology", choices=("split", "up"), default="split")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--plan-seconds", type=float, default=12.0)
    parser.add_argument("--execute-seconds", type=float, default=12.0)
    parser.add_argument("--symbols", type=int, default=SYMBOLS,
                        help="positions per (world, strategy); 10 worlds x 5 strategies")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    try:
        config = LoadConfig(topology=args.topology, concurrency=args.concurrency,
                            warmup_seconds=args.warmup_seconds, plan_seconds=args.plan_seconds,
                            execute_seconds=args.execute_seconds,
                            positions_per_world_strategy=args.symbols)
    except ValueError as exc:
        parser.error(str(exc))
    report = run(config)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())

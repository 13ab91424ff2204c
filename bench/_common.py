"""Helpers shared by the benchmark scripts: the machine description, free ports, and the
seeded request every service benchmark plans (10 worlds x 50 strategies)."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from typing import Any

import numpy as np

__all__ = ["SEED", "STRATEGIES", "WORLDS", "cpu_model", "free_port", "machine_line",
           "seeded_request"]

WORLDS = 10
STRATEGIES = 50
SEED = 20_240_601


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_line() -> str:
    """One line for a benchmark table's header: CPU, cores, load average, Python."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu_model()}, {os.cpu_count()} CPUs, load average {load}, "
            f"Python {platform.python_version()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seeded_request(n: int, *, n_symbols: int, seed: int = SEED, **extra: Any) -> dict[str, Any]:
    """A plan request with ``n`` positions over ``n_symbols`` symbols (seeded, reproducible).

    Worlds move 0.10 -> 0.12 / 0.08 alternately; every seventh symbol has a 0.001 lot.
    """
    rng = np.random.default_rng(seed)
    world = rng.integers(0, WORLDS, n)
    strategy = rng.integers(0, STRATEGIES, n)
    symbol = rng.integers(0, n_symbols, n)
    qty = np.round(rng.normal(0, 10, n), 3)
    mark = np.round(rng.uniform(1, 1000, n), 2)
    venues = ("binance", "cme", None)
    positions = [
        {"world_id": f"w{w}", "strategy_id": f"w{w}-s{s}", "symbol": f"SYM{k:05d}",
         "qty": float(q), "mark": float(m), "venue": venues[k % 3]}
        for w, s, k, q, m in zip(world.tolist(), strategy.tolist(), symbol.tolist(),
                                 qty.tolist(), mark.tolist(), strict=True)
    ]
    before = {f"w{i}": 0.1 for i in range(WORLDS)}
    after = {f"w{i}": (0.12 if i % 2 else 0.08) for i in range(WORLDS)}
    return {"total_equity": 50_000_000.0, "world_alloc_before": before,
            "world_alloc_after": after, "positions": positions,
            "lot_size_by_symbol": {f"SYM{k:05d}": 0.001 for k in range(0, n_symbols, 7)},
            "min_trade_notional": 10.0, **extra}

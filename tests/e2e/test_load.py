"""A short run of the load test in ``bench/load.py`` (issue #6 item 6): zero errors and no
unbounded memory growth, with real processes. Speed is not asserted — the numbers are
printed; ``docs/benchmarks.md`` records a full run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

MIB = 1024 * 1024
GROWTH_BOUND = 64 * MIB
"""Generous bound on RSS growth from after the warm-up to the end of ~10 s of load. A
service at this load answers some hundreds of requests (each 1,000 positions); leaking even
~200 KiB per request would cross it, while allocator noise stays within a few MiB."""


def _bench_load() -> ModuleType:
    bench = Path(__file__).resolve().parents[2] / "bench"
    if str(bench) not in sys.path:
        sys.path.insert(0, str(bench))  # the script imports its sibling ``_common``
    path = bench / "load.py"
    spec = importlib.util.spec_from_file_location("qmtl_bench_load", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_short_load_has_no_errors_and_flat_memory(capsys: pytest.CaptureFixture[str]) -> None:
    load = _bench_load()
    config = load.LoadConfig(topology="split", concurrency=4, warmup_seconds=2.0,
                             plan_seconds=5.0, execute_seconds=5.0)
    report = load.run(config)
    with capsys.disabled():
        print("\n" + load.format_report(report))

    assert [p.operation for p in report.phases] == ["plan", "execute (submit)"]
    for phase in report.phases:
        assert phase.errors == [], phase.errors[:5]
        assert len(phase.latencies) > 0, f"{phase.operation}: no request completed"
    assert {m.name for m in report.memory} == {"redis-server", "worldservice", "gateway"}
    for memory in report.memory:
        assert memory.warm > 0 and memory.end > 0, f"{memory.name} was not sampled"
        assert memory.growth < GROWTH_BOUND, (
            f"{memory.name} grew {memory.growth / MIB:.1f} MiB under load "
            f"(warm {memory.warm / MIB:.1f} MiB, end {memory.end / MIB:.1f} MiB)")

"""Shared pieces of the compatibility-matrix and rolling-upgrade tests.

* the request both tests send (two worlds, hand-checked deltas);
* the returns the SDK records, and :func:`classify_alpha`, which reads an ``alpha_metrics``
  envelope (or an event's alpha slice) and says ``zeros`` / ``computed`` — "computed" only
  when the values equal empyrical's / a hand count for those returns (an independent library,
  not the code under test; its numbers come from the committed fixture of ``tests/_parity.py``);
* :func:`document_problems`, the version-gated shape rules of SPEC 2.3 (a v1 document has no
  v2-only key, a v2 document has both) and the plan's hand-calculated deltas;
* :func:`start_all`, which starts several QMTL processes in parallel (each start is mostly
  imports, so two cores overlap them well).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tests._books import TWO_WORLD_BOOK, two_world_book
from tests._parity import RECORDED_RETURNS, reference_for
from tests.e2e._procs import QmtlProcess

__all__ = [
    "BASE_REQUEST",
    "EXPECTED_DELTAS",
    "RECORDED_RETURNS",
    "classify_alpha",
    "document_problems",
    "START_TIMEOUT",
    "request",
    "start_all",
]

BASE_REQUEST: dict[str, Any] = TWO_WORLD_BOOK
"""Two worlds; the explicit "before" keeps the plan independent of the stored state."""

EXPECTED_DELTAS: dict[str, list[tuple[str | None, str, float]]] = {
    # w1: scale 0.2 / 0.3 = 2/3; BTCUSDT moves (0.6 + 0.9) x (2/3 - 1) = -0.5
    "w1": [("binance", "BTCUSDT", -0.5)],
    # w2: scale 0.3 / 0.2 = 1.5; ETHUSDT moves 10 x (1.5 - 1) = +5
    "w2": [("binance", "ETHUSDT", 5.0)],
}

PREFIX = "alpha_performance."
REL_TOL = 1e-9


def request(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`BASE_REQUEST` with top-level ``changes``."""
    return two_world_book(**changes)


def _independent_metrics(returns: list[float]) -> dict[str, float]:
    """The metrics of ``returns`` from empyrical (sharpe, max drawdown, calmar) and by hand.

    win_ratio = #(r > 0) / #(r != 0); profit_factor = sum(r > 0) / |sum(r < 0)| (SPEC 2.4).
    """
    r = np.asarray(returns, dtype=float)
    wins, losses = r[r > 0], r[r < 0]
    lib = reference_for(returns)
    return {
        "sharpe": lib["sharpe"],
        "max_drawdown": lib["max_drawdown"],
        "car_mdd": lib["car_mdd"],
        "win_ratio": len(wins) / np.count_nonzero(r),
        "profit_factor": float(wins.sum() / abs(losses.sum())),
    }


def _all_zero(values: Mapping[str, Any]) -> bool:
    return bool(values) and all(v == 0.0 for v in values.values())


def _matches(values: Mapping[str, Any], returns: list[float]) -> str | None:
    expected = _independent_metrics(returns)
    for name, want in expected.items():
        got = values.get(PREFIX + name)
        if not isinstance(got, int | float) or not math.isclose(got, want, rel_tol=REL_TOL,
                                                                 abs_tol=1e-12):
            return f"{name}={got!r}, independent value {want!r}"
    return None


def classify_alpha(envelope: Any, *, recorded: Mapping[tuple[str, str], list[float]]) -> str:
    """``zeros``, ``computed``, or ``unexpected: …`` for an envelope or an event's slice.

    ``computed`` means: every (strategy, world) entry whose returns were recorded equals the
    independent metrics of those returns, and every other entry (worlds, other strategies) is
    all zeros. ``zeros`` means every entry is all zeros. An entry with missing keys, or a
    recorded strategy of a listed world missing from the envelope, is unexpected.
    """
    if not isinstance(envelope, Mapping):
        return f"unexpected: not an object: {envelope!r:.80}"
    per_world = envelope.get("per_world") or {}
    per_strategy = envelope.get("per_strategy") or {}
    entries: list[tuple[str | None, str, Mapping[str, Any]]] = [
        (None, w, v) for w, v in per_world.items()]
    entries += [(s, w, v) for s, by_world in per_strategy.items() for w, v in by_world.items()]
    if not entries:
        return "unexpected: empty envelope"
    for _s, w, values in entries:
        if len(values) != 6:
            return f"unexpected: entry for {w} has {len(values)} keys"
    if all(_all_zero(v) for _s, _w, v in entries):
        return "zeros"
    seen = set()
    for strategy, world, values in entries:
        returns = recorded.get((world, strategy)) if strategy is not None else None
        if returns is None:
            if not _all_zero(values):
                return f"unexpected: non-zero metrics without data for {strategy or '-'}/{world}"
            continue
        problem = _matches(values, returns)
        if problem is not None:
            return f"unexpected: {strategy}/{world}: {problem}"
        seen.add((world, strategy))
    worlds = set(per_world)
    missing = {k for k in recorded if k[0] in worlds} - seen
    if missing:
        return f"unexpected: no metrics for recorded {sorted(missing)}"
    return "computed"


def document_problems(document: Mapping[str, Any], *, kind: str) -> list[str]:
    """Shape violations of a plan/apply (``kind``) document at the version it claims."""
    problems = []
    version = document.get("schema_version", 1)
    v2_keys = {"alpha_metrics", "rebalance_intent"} & set(document)
    if version == 1 and v2_keys:
        problems.append(f"{kind}: v1 document carries {sorted(v2_keys)}")
    if version == 2 and len(v2_keys) != 2:
        missing = sorted({"alpha_metrics", "rebalance_intent"} - v2_keys)
        problems.append(f"{kind}: v2 document lacks {missing}")
    if kind == "apply" and not (document.get("run_id") and document.get("etag")):
        problems.append("apply: no run_id/etag")
    per_world = document.get("per_world", {})
    for world, deltas in EXPECTED_DELTAS.items():
        got = [(d.get("venue"), d["symbol"], d["delta_qty"])
               for d in per_world.get(world, {}).get("deltas", [])]
        if len(got) != len(deltas) or any(
                g[:2] != e[:2] or not math.isclose(g[2], e[2], rel_tol=1e-9)
                for g, e in zip(got, deltas, strict=False)):
            problems.append(f"{kind}: {world} deltas {got}, expected {deltas}")
    return problems


START_TIMEOUT = 180.0
"""Seconds a process may take to answer ``/health``: generous, because parallel starts on a
loaded 2-core machine are slow (imports), and a slow start is not what these tests measure."""


def start_all(processes: Iterable[QmtlProcess]) -> None:
    """Start ``processes`` concurrently; raise the first start-up failure."""
    procs = list(processes)
    with ThreadPoolExecutor(max_workers=max(1, len(procs))) as pool:
        for future in [pool.submit(p.start, timeout=START_TIMEOUT) for p in procs]:
            future.result()

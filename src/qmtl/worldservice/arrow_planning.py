"""Serving a plan from columns: Arrow request bodies, and Arrow responses (docs/arrow.md).

Same checks, "before" filling, engine and v2 envelope as :mod:`.planning`; the positions
stay a :class:`~qmtl.engine.book.PositionBook` from the wire to the engine, and with
``Accept: application/vnd.apache.arrow.stream`` the deltas go back as an Arrow table built
from the engine's arrays (no object per delta). A JSON answer to an Arrow request is the
same document a JSON request gets.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio.to_thread
import numpy as np

from qmtl.contracts import (
    ARROW_RESPONSE_KEY,
    MultiWorldRebalanceRequest,
    MultiWorldRebalanceResponse,
    render_response,
    require_pyarrow,
)
from qmtl.engine import PositionBook
from qmtl.engine.arrow_columns import ColumnPlan, plan_columns
from qmtl.engine.planning import BookPlan
from qmtl.web.gcpause import gc_paused

from .planning import OFFLOAD_POSITIONS, PlanningService, render_json, with_v2

__all__ = ["arrow_envelope", "compute_columns", "encode_arrow_plan", "serve_columns"]


def arrow_envelope(skeleton: MultiWorldRebalanceResponse, version: int) -> dict[str, Any]:
    """The JSON response at ``version`` without its delta lists (they are the table)."""
    body = render_response(skeleton, version)
    body.pop("global_deltas", None)
    for world in body["per_world"].values():
        world.pop("deltas", None)
    return body


def encode_arrow_plan(plan: BookPlan, envelope: dict[str, Any]) -> bytes:
    """One Arrow IPC stream: the world rows (world, then key order), then the global rows
    (``world_id`` null), with ``envelope`` as JSON under ``qmtl.response``."""
    pa = require_pyarrow()
    n_world, n_global = plan.delta_world.size, plan.global_key.size
    worlds = pa.array(list(plan.scales.worlds), type=pa.string())
    world_index = pa.array(
        np.concatenate([plan.delta_world, np.zeros(n_global, dtype=np.int64)]),
        mask=np.concatenate([np.zeros(n_world, dtype=bool), np.ones(n_global, dtype=bool)]),
    )
    key_index = pa.array(np.concatenate([plan.delta_key, plan.global_key]))
    venues = pa.array([venue for venue, _ in plan.keys], type=pa.string())
    symbols = pa.array([symbol for _, symbol in plan.keys], type=pa.string())
    table = pa.table(
        {
            "world_id": worlds.take(world_index),
            "venue": venues.take(key_index),
            "symbol": symbols.take(key_index),
            "delta_qty": pa.array(
                np.concatenate([plan.delta_qty, plan.global_qty]), type=pa.float64()
            ),
        },
        metadata={
            ARROW_RESPONSE_KEY: json.dumps(
                envelope, separators=(",", ":"), allow_nan=False
            ).encode()
        },
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def compute_columns(
    request: MultiWorldRebalanceRequest,
    book: PositionBook,
    *,
    version: int,
    periods_per_year: float,
    arrow: bool,
) -> bytes:
    """Plan ``book`` under ``request`` and encode: Arrow (``arrow``) or the JSON document.

    Raises:
        The errors of :func:`~qmtl.engine.arrow_columns.plan_columns`, and the 422 of an
        unusable ``alpha_series`` (v2).
    """
    with gc_paused(len(book) > OFFLOAD_POSITIONS):
        planned: ColumnPlan = plan_columns(request, book)
        if arrow:
            skeleton = with_v2(
                request, planned.skeleton, version=version, periods_per_year=periods_per_year
            )
            return encode_arrow_plan(planned.plan, arrow_envelope(skeleton, version))
        response = with_v2(
            request, planned.response(), version=version, periods_per_year=periods_per_year
        )
        return render_json(response, version)


async def serve_columns(
    planning: PlanningService,
    request: MultiWorldRebalanceRequest,
    book: PositionBook,
    *,
    arrow: bool,
) -> bytes:
    """``POST /rebalancing/plan`` for a columnar body (``request.positions`` is ignored).

    Raises:
        RebalanceModeUnsupported, SchemaVersionRequired, OverlayConfigRequired: the
        pre-engine checks, in SPEC order; StoreUnavailable; the engine's errors.
    """
    version = planning.check(request)
    effective, _ = await planning.effective_request(request)
    started = time.perf_counter()
    periods = planning.settings.periods_per_year
    if len(book) > OFFLOAD_POSITIONS:
        encoded = await anyio.to_thread.run_sync(
            lambda: compute_columns(
                effective, book, version=version, periods_per_year=periods, arrow=arrow
            )
        )
    else:
        encoded = compute_columns(
            effective, book, version=version, periods_per_year=periods, arrow=arrow
        )
    planning.metrics.plan_served(
        version=version, mode=effective.mode.value, seconds=time.perf_counter() - started
    )
    return encoded

"""Apply: record an approved plan durably, in ONE transaction.

The transaction (after the plan is computed, outside it):

1. lock the allocation state (``allocation_meta`` row lock / SQLite ``BEGIN IMMEDIATE``);
2. look the run_id up again — a concurrent apply of the same run may have committed while
   this one was planning — and replay or refuse (409) if it did;
3. check ``If-Match`` against the state's etag (412), and, when "before" was filled from
   the store, that the state did not change while planning (412);
4. insert the run record (the full served response incl. run_id and etag, and the
   request digest of :mod:`.digests`), increment each world's ``seq``, insert one audit
   entry and one outbox row (the encoded CloudEvent) per world, and write the allocation
   state: every planned world gets its ``world_alloc_after`` ratio (0 when absent), other
   stored worlds are untouched and the resulting sum must stay <= 1 (422). Bulk writes are split
   under the driver's bind-parameter limit (``store.dialects.chunks``), so thousands of
   worlds fit in the same one transaction.

A failure anywhere rolls everything back (503 ``E_STORE_UNAVAILABLE`` for store failures).
A replay is answered before ``If-Match`` is looked at: the state has moved on since the
original apply, and the stored response already carries the etag it produced.
After commit the outbox relay is woken. The run_id unique key is the last line of defence
against two replicas: an ``IntegrityError`` there is answered by reading the winner back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from sqlalchemy.exc import IntegrityError

from qmtl.contracts import CONTROLBUS_TOPIC_REBALANCING, ratio_total_over_one
from qmtl.contracts.errors import EtagMismatch, RunIdConflict, StoreUnavailable
from qmtl.engine.columns import ColumnRequest

from .bodies import validation_error
from .config import WorldServiceSettings
from .digests import digest_matches, legacy_digest, request_digest
from .etags import if_match_allows
from .events import WorldEvent, build_world_events, encode_world_event
from .metrics import WorldServiceMetrics
from .planning import OFFLOAD_POSITIONS, PlanningService, ServedPlan, encode_json
from .store import allocations as alloc_store
from .store import outbox as outbox_store
from .store import runs as run_store
from .store.allocations import StoredAllocation
from .store.database import Database

__all__ = ["ApplyOutcome", "ApplyService", "with_fields"]

logger = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """The apply response body (JSON bytes) and whether it was replayed from the store."""

    run_id: str
    etag: str
    body: bytes
    replayed: bool
    version: int


def with_fields(encoded_object: bytes, fields: Mapping[str, Any]) -> bytes:
    """Append ``fields`` to an encoded JSON object without re-encoding it."""
    extra = encode_json(dict(fields))[1:-1]
    if encoded_object.strip() == b"{}":
        return b"{" + extra + b"}"
    return encoded_object.rstrip()[:-1] + b"," + extra + b"}"


class _Replay(Exception):
    """Internal: a stored run with this run_id exists (raised inside the transaction)."""

    def __init__(self, run: run_store.StoredRun) -> None:
        super().__init__(run.run_id)
        self.run = run


class ApplyService:
    def __init__(self, *, settings: WorldServiceSettings, db: Database,
                 planning: PlanningService, metrics: WorldServiceMetrics,
                 on_commit: Callable[[], None]) -> None:
        self.settings = settings
        self.db = db
        self.planning = planning
        self.metrics = metrics
        self.on_commit = on_commit

    async def apply(self, body: ColumnRequest, *, if_match: str | None = None) -> ApplyOutcome:
        """Check, plan and record ``body``; replay a stored run with the same request.

        Raises:
            RebalanceModeUnsupported, SchemaVersionRequired, OverlayConfigRequired,
            OverlayConfigInvalid, PlanInputInvalid: as for plan.
            RunIdConflict: the run_id was applied with a different body (409).
            EtagMismatch: ``If-Match`` is stale, or the state changed while planning (412).
            StoreUnavailable: the store failed; nothing was written (503).
        """
        request, book = body.request, body.book
        version = self.planning.check(request)
        run_id = request.run_id or str(uuid.uuid4())
        large = len(book) > OFFLOAD_POSITIONS
        digest_of = legacy_digest if self.settings.legacy_request_digest else request_digest
        if large:
            digest = await anyio.to_thread.run_sync(digest_of, request, book)
        else:
            digest = digest_of(request, book)
        if request.run_id is not None and large:
            # Spare a large replay the planning; small ones are caught in the transaction.
            async with self.db.read("runs.read") as conn:
                stored = await run_store.get_run(conn, run_id)
            if stored is not None:
                return await self._replay(stored, body, digest)
        served = await self.planning.serve_columns(request, book, version=version)
        try:
            outcome = await self._record(served, run_id=run_id, digest=digest,
                                         if_match=if_match)
        except _Replay as replay:
            return await self._replay(replay.run, body, digest)
        except IntegrityError as exc:
            async with self.db.read("runs.read") as conn:
                stored = await run_store.get_run(conn, run_id)
            if stored is None:
                logger.error("apply of run %s violated a store constraint: %s", run_id, exc,
                             extra={"run_id": run_id})
                self.metrics.store_failed("apply")
                raise StoreUnavailable(f"the store refused the apply: {exc.orig!r}",
                                       operation="apply") from exc
            return await self._replay(stored, body, digest)
        self.metrics.apply_answered(version=version, replayed=False)
        self.on_commit()
        return outcome

    async def _replay(self, stored: run_store.StoredRun, body: ColumnRequest,
                      digest: str) -> ApplyOutcome:
        """The stored run when its digest is this request's (a run stored by an older
        release holds the legacy digest: see :mod:`.digests`)."""
        args = (stored.request_hash, digest, body.request, body.book)
        if len(body) > OFFLOAD_POSITIONS and stored.request_hash != digest:
            same = await anyio.to_thread.run_sync(digest_matches, *args)
        else:
            same = digest_matches(*args)
        if not same:
            raise RunIdConflict(run_id=stored.run_id)
        logger.info("apply replayed from the store", extra={"run_id": stored.run_id})
        self.metrics.apply_answered(version=stored.schema_version, replayed=True)
        return ApplyOutcome(run_id=stored.run_id, etag=stored.etag,
                            version=stored.schema_version,
                            body=stored.response.encode(), replayed=True)

    async def _record(self, served: ServedPlan, *, run_id: str, digest: str,
                      if_match: str | None) -> ApplyOutcome:
        request = served.request
        assert served.body is not None  # serve_columns(..., with_body=True)
        events = build_world_events(served.body, version=served.version,
                                    compat_rebalance_v2=self.settings.compat_rebalance_v2,
                                    run_id=run_id)
        dialect = self.db.dialect
        async with self.db.write("apply") as conn:
            now = datetime.now(UTC)
            await alloc_store.lock_state(conn, dialect=dialect, now=now)
            existing = await run_store.get_run(conn, run_id)
            if existing is not None:
                raise _Replay(existing)
            state = await alloc_store.read_state(conn)
            current = alloc_store.state_etag(state)
            if not if_match_allows(if_match, current):
                raise EtagMismatch(if_match=if_match, etag=current)
            if served.state_etag is not None and served.state_etag != current:
                raise EtagMismatch(
                    "the allocation state changed while the plan was computed; plan again",
                    etag=current,
                )
            changed = _after_state(state, served, run_id=run_id, now=now)
            new_state = {**state, **changed}
            etag = alloc_store.state_etag(new_state)
            body = with_fields(served.encoded, {"run_id": run_id, "etag": etag})
            await run_store.insert_run(
                conn,
                run_store.StoredRun(run_id=run_id, request_hash=digest,
                                    schema_version=served.version, etag=etag,
                                    response=body.decode(), created_at=now),
                mode=request.mode.value, world_count=len(events),
            )
            seqs = await run_store.next_seqs(conn, dialect=dialect,
                                             world_ids=[e.world_id for e in events])
            await run_store.insert_audit(conn, _audit_rows(served, events, seqs,
                                                           run_id=run_id, now=now))
            await outbox_store.insert_events(conn, [
                outbox_store.OutboxRow(
                    id=0, event_id=e.event_id, world_id=e.world_id, seq=seqs[e.world_id],
                    run_id=run_id, topic=CONTROLBUS_TOPIC_REBALANCING,
                    payload=encode_world_event(e, seq=seqs[e.world_id],
                                               source=self.settings.source),
                    created_at=now,
                )
                for e in events
            ])
            await alloc_store.write_state(conn, dialect=dialect, changed=changed, etag=etag,
                                          run_id=run_id, now=now)
        logger.info("applied run %s: %d world(s), schema v%d", run_id, len(events),
                    served.version,
                    extra={"run_id": run_id, "worlds": [e.world_id for e in events]})
        return ApplyOutcome(run_id=run_id, etag=etag, body=body, replayed=False,
                            version=served.version)


def _after_state(state: Mapping[str, StoredAllocation], served: ServedPlan, *, run_id: str,
                 now: datetime) -> dict[str, StoredAllocation]:
    """The planned worlds' new allocations; refuses a resulting state that sums over 1.

    Ratio = ``world_alloc_after[w]`` (0 when absent: the plan liquidates w). Strategy ratios
    = ``strategy_alloc_after_total[w]`` when given; else the "before" strategy ratios scaled
    by the plan's ``scale_by_strategy`` (the engine's derived after); else none (they are
    derived from positions and there is nothing to keep).
    """
    request = served.request
    assert served.body is not None
    after = request.world_alloc_after
    strategy_after = request.strategy_alloc_after_total or {}
    strategy_before = request.strategy_alloc_before_total or {}
    changed: dict[str, StoredAllocation] = {}
    for world_id, plan in served.body["per_world"].items():
        strategies: dict[str, float] | None
        if world_id in strategy_after:
            strategies = dict(strategy_after[world_id])
        elif world_id in strategy_before:
            scales = plan["scale_by_strategy"]
            strategies = {s: ratio * scales.get(s, plan["scale_world"])
                          for s, ratio in strategy_before[world_id].items()}
        else:
            strategies = None
        changed[world_id] = StoredAllocation(world_id=world_id, ratio=after.get(world_id, 0.0),
                                             strategy_alloc_total=strategies, run_id=run_id,
                                             updated_at=now)
    total = ratio_total_over_one(a.ratio for a in {**state, **changed}.values())
    if total is not None:
        outside = {w: a.ratio for w, a in state.items() if w not in changed}
        raise validation_error(
            ("body", "world_alloc_after"),
            f"the stored allocations of worlds outside this plan ({outside}) plus "
            f"world_alloc_after sum to {total:.12g}, more than 1",
        )
    return changed


def _audit_rows(served: ServedPlan, events: list[WorldEvent], seqs: Mapping[str, int], *,
                run_id: str, now: datetime) -> list[run_store.AuditRow]:
    request = served.request
    assert served.body is not None
    before = request.world_alloc_before or {}
    overlay = served.body.get("overlay_deltas") or []
    rows = []
    for event in events:
        plan = served.body["per_world"][event.world_id]
        overlay_count = sum(1 for d in overlay if d.get("world_id") == event.world_id)
        rows.append(run_store.AuditRow(
            world_id=event.world_id, seq=seqs[event.world_id], run_id=run_id,
            event_id=event.event_id, action="apply", schema_version=served.version,
            mode=request.mode.value, ratio_before=before.get(event.world_id),
            ratio_after=request.world_alloc_after.get(event.world_id, 0.0),
            scale_world=plan["scale_world"], delta_count=len(plan["deltas"]) + overlay_count,
            created_at=now,
        ))
    return rows

"""Allocation state: ``GET /allocations`` and the merge-upsert of ``POST /allocations``.

An upsert merges the given worlds into the stored state in one transaction: a given
world's ratio replaces the stored one, its strategy ratios replace the stored ones when
given (and are kept otherwise); worlds not named are untouched. The resulting world ratios
must sum to <= 1 (422). ``If-Match`` must equal the current etag (412); a ``run_id`` makes
the call idempotent (same body → stored response, replayed; another body → 409).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from qmtl.contracts import AllocationState, AllocationUpsert, ratio_total_over_one, sha256_hex
from qmtl.contracts.errors import EtagMismatch, NotFound, RunIdConflict

from .bodies import validation_error
from .etags import if_match_allows
from .planning import encode_json
from .store import allocations as alloc_store
from .store.allocations import StoredAllocation
from .store.database import Database

__all__ = ["AllocationOutcome", "AllocationService"]

logger = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class AllocationOutcome:
    body: bytes
    etag: str
    replayed: bool


class _Replay(Exception):
    def __init__(self, run: alloc_store.StoredAllocationRun) -> None:
        super().__init__(run.run_id)
        self.run = run


class AllocationService:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    async def get(self, *, world_id: str | None = None) -> AllocationState:
        """The stored state (optionally one world's entry) with the whole state's etag.

        Raises:
            NotFound: ``world_id`` has no stored allocation (404).
        """
        async with self.db.read("allocations.read") as conn:
            state = await alloc_store.read_state(conn)
        etag = alloc_store.state_etag(state)
        if world_id is not None:
            if world_id not in state:
                raise NotFound(f"world {world_id!r} has no stored allocation", world_id=world_id)
            state = {world_id: state[world_id]}
        return alloc_store.to_contract(state, etag=etag)

    async def upsert(self, upsert: AllocationUpsert, *,
                     if_match: str | None = None) -> AllocationOutcome:
        """Merge ``upsert`` into the stored state.

        Raises:
            RequestValidationError: strategy ratios for a world not in ``world_alloc``, or
                a resulting state whose ratios sum to more than 1 (422).
            EtagMismatch: stale ``If-Match`` (412).
            RunIdConflict: the run_id was used with another body (409).
            StoreUnavailable: nothing was written (503).
        """
        for world_id in upsert.strategy_alloc_total or {}:
            if world_id not in upsert.world_alloc:
                raise validation_error(
                    ("body", "strategy_alloc_total", world_id),
                    f"world {world_id!r} has strategy ratios but no ratio in world_alloc",
                )
        digest = sha256_hex(upsert.model_dump(mode="json", exclude={"run_id"}))
        try:
            async with self.db.write("allocations.upsert") as conn:
                now = datetime.now(UTC)
                await alloc_store.lock_state(conn, dialect=self.db.dialect, now=now)
                if upsert.run_id is not None:
                    stored = await alloc_store.get_allocation_run(conn, upsert.run_id)
                    if stored is not None:
                        raise _Replay(stored)
                state = await alloc_store.read_state(conn)
                current = alloc_store.state_etag(state)
                if not if_match_allows(if_match, current):
                    raise EtagMismatch(if_match=if_match, etag=current)
                changed = _merge(state, upsert, now=now)
                new_state = dict(sorted({**state, **changed}.items()))
                etag = alloc_store.state_etag(new_state)
                await alloc_store.write_state(conn, dialect=self.db.dialect, changed=changed,
                                              etag=etag, run_id=upsert.run_id, now=now)
                body = encode_json(
                    alloc_store.to_contract(new_state, etag=etag, run_id=upsert.run_id)
                    .model_dump(mode="json")
                )
                if upsert.run_id is not None:
                    await alloc_store.insert_allocation_run(
                        conn, run_id=upsert.run_id, request_hash=digest,
                        response=body.decode(), now=now,
                    )
        except _Replay as replay:
            if replay.run.request_hash != digest:
                raise RunIdConflict(run_id=replay.run.run_id) from None
            stored_etag = json.loads(replay.run.response)["etag"]
            return AllocationOutcome(body=replay.run.response.encode(), etag=stored_etag,
                                     replayed=True)
        logger.info("allocations updated: %s", sorted(changed),
                    extra={"run_id": upsert.run_id, "etag": etag})
        return AllocationOutcome(body=body, etag=etag, replayed=False)


def _merge(state: dict[str, StoredAllocation], upsert: AllocationUpsert, *,
           now: datetime) -> dict[str, StoredAllocation]:
    strategies = upsert.strategy_alloc_total or {}
    changed = {
        world_id: StoredAllocation(
            world_id=world_id,
            ratio=ratio,
            strategy_alloc_total=(
                dict(strategies[world_id]) if world_id in strategies
                else (state[world_id].strategy_alloc_total if world_id in state else None)
            ),
            run_id=upsert.run_id,
            updated_at=now,
        )
        for world_id, ratio in upsert.world_alloc.items()
    }
    total = ratio_total_over_one(a.ratio for a in {**state, **changed}.values())
    if total is not None:
        raise validation_error(
            ("body", "world_alloc"),
            f"the resulting allocation state sums to {total:.12g}, more than 1 "
            "(stored worlds not named here keep their ratios)",
        )
    return changed

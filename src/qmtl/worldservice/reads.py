"""Read-only views of what apply recorded: runs and the per-world audit trail."""

from __future__ import annotations

from qmtl.contracts import WorldAudit
from qmtl.contracts.errors import NotFound

from .store import runs as run_store
from .store.database import Database

__all__ = ["DEFAULT_AUDIT_LIMIT", "ReadService"]

DEFAULT_AUDIT_LIMIT = 100


class ReadService:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    async def run(self, run_id: str) -> bytes:
        """The stored apply response of ``run_id`` (JSON bytes, exactly as served).

        Raises:
            NotFound: no run with this id (404).
        """
        async with self.db.read("runs.read") as conn:
            stored = await run_store.get_run(conn, run_id)
        if stored is None:
            raise NotFound(f"no applied run with run_id {run_id!r}", run_id=run_id)
        return stored.response.encode()

    async def audit(self, world_id: str, *, limit: int = DEFAULT_AUDIT_LIMIT) -> WorldAudit:
        """The newest ``limit`` audit entries of ``world_id``, newest first.

        Raises:
            NotFound: the store has never heard of ``world_id`` (404).
        """
        async with self.db.read("audit.read") as conn:
            entries = await run_store.list_audit(conn, world_id, limit=limit)
            known = bool(entries) or await run_store.world_is_known(conn, world_id)
        if not known:
            raise NotFound(f"unknown world {world_id!r}", world_id=world_id)
        return WorldAudit(world_id=world_id, entries=entries)

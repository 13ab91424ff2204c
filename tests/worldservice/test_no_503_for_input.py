"""503 means "retry later will help" (SPEC 6), never "your input": an id too long for a
database index is a 422 naming the field, and a value the database refuses is a coded 422
(``E_INPUT_NOT_STORABLE``), not ``E_STORE_UNAVAILABLE``."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import DataError, DBAPIError, OperationalError

from qmtl.contracts import MAX_IDENTIFIER_LENGTH
from qmtl.contracts.errors import InputNotStorable, StoreUnavailable
from qmtl.worldservice.config import normalize_dsn
from qmtl.worldservice.store import allocations as alloc_store
from qmtl.worldservice.store.database import Database, store_errors

from .conftest import body, make_settings, running


def _incompressible(length: int) -> str:
    # Random letters: PostgreSQL cannot compress them below its btree row limit.
    rng = random.Random(length)
    return "".join(rng.choice(string.ascii_letters) for _ in range(length))


class _DriverError(Exception):
    """Stands in for a driver exception carrying a SQLSTATE, as asyncpg's do."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("error", "refused"), [
    (DataError("INSERT", {}, Exception("value too long")), True),
    (DBAPIError("INSERT", {}, _DriverError("54000")), True),  # program limit exceeded
    (DBAPIError("INSERT", {}, _DriverError("22003")), True),  # numeric value out of range
    (DBAPIError("INSERT", {}, _DriverError("57P01")), False),  # admin shutdown
    (DBAPIError("INSERT", {}, _DriverError("53300")), False),  # too many connections
    (OperationalError("BEGIN", {}, Exception("database is locked")), False),
])
def test_refused_values_are_422_and_outages_503(error: DBAPIError, refused: bool) -> None:
    # Unit test of the translation alone, with real SQLAlchemy exception objects.
    expected = InputNotStorable if refused else StoreUnavailable
    with pytest.raises(expected) as caught, store_errors("apply"):
        raise error
    assert caught.value.status_code == (422 if refused else 503)
    assert caught.value.context["operation"] == "apply"


@pytest.mark.postgres
async def test_postgresql_refusing_an_index_row_is_422_not_503(postgres_dsn: str) -> None:
    # Past the contract's length rule (a caller of the store module): the real btree error.
    db = Database.create(normalize_dsn(postgres_dsn))
    async with running(make_settings(postgres_dsn)):
        pass  # migrations
    world = _incompressible(3_000)
    now = datetime.now(UTC)
    changed = {world: alloc_store.StoredAllocation(world_id=world, ratio=0.1,
                                                   strategy_alloc_total=None, run_id=None,
                                                   updated_at=now)}
    try:
        with pytest.raises(InputNotStorable) as caught:
            async with db.write("allocations.upsert") as conn:
                await alloc_store.write_state(conn, dialect=db.dialect, changed=changed,
                                              etag="e", run_id=None, now=now)
    finally:
        await db.dispose()
    assert caught.value.code == "E_INPUT_NOT_STORABLE"


@pytest.mark.postgres
async def test_long_ids_are_422_naming_the_field_on_postgresql(postgres_dsn: str) -> None:
    # Before: a 3,000-character world id or run id was a 503 every time (btree row limit).
    too_long = _incompressible(MAX_IDENTIFIER_LENGTH + 1)
    longest = _incompressible(MAX_IDENTIFIER_LENGTH)
    world = body()
    world["positions"][0]["world_id"] = too_long
    async with running(make_settings(postgres_dsn)) as ws:
        refused_world = await ws.client.post("/rebalancing/apply", json=world)
        refused_run = await ws.client.post("/rebalancing/apply", json=body(run_id=too_long))
        refused_alloc = await ws.client.post("/allocations",
                                             json={"world_alloc": {too_long: 0.1}})
        refused_path = await ws.client.get(f"/worlds/{too_long}/audit")
        world["positions"][0]["world_id"] = longest
        accepted = await ws.client.post("/rebalancing/apply", json=world | {"run_id": longest})
    assert refused_world.status_code == 422, refused_world.text
    assert ["body", "positions", 0, "world_id"] in [e["loc"] for e in
                                                    refused_world.json()["detail"]]
    assert refused_run.status_code == 422
    assert ["body", "run_id"] in [e["loc"] for e in refused_run.json()["detail"]]
    assert refused_alloc.status_code == 422
    assert refused_path.status_code == 422
    assert accepted.status_code == 200, accepted.text
    assert longest in accepted.json()["per_world"]

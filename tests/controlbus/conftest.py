"""The ControlBus contract suite runs every test against each backend.

``make_bus()`` returns a bus of the backend under test: for memory, the same named
in-process bus every time (that is how an embedded WorldService and Gateway share it); for
Redis, a new client on the same real redis-server, as separate processes would have.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from qmtl.controlbus import ControlBus, RedisStreamsControlBus, create_controlbus

MakeBus = Callable[[], ControlBus]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    created: list[ControlBus] = []
    if request.param == "memory":
        url = f"memory://test-{uuid.uuid4().hex}"
    else:
        url = request.getfixturevalue("redis_url")

    def make() -> ControlBus:
        if request.param == "memory":
            bus = create_controlbus(url)
        else:
            # Short backoff keeps the outage tests quick; behaviour is the same.
            bus = RedisStreamsControlBus(url, backoff_initial=0.05, backoff_max=0.4)
        created.append(bus)
        return bus

    yield make
    for bus in reversed(created):
        await bus.close()


@pytest.fixture
async def bus(make_bus: MakeBus) -> ControlBus:
    bus = make_bus()
    await bus.start()
    return bus

"""Rolling upgrade (issue #6 item 2): a v1-only and a v2 WorldService behind one gateway.

Deployment (all real processes and sockets)::

    SDK / httpx --> gateway (schema 2, alpha capable) --> round-robin proxy --> ws-v1 (compat off)
                                                                          \\-> ws-v2 (compat on)
    both WorldServices: one PostgreSQL database, one Redis ControlBus; the gateway consumes it.

The proxy is written here: each HTTP request (plans, applies, the gateway's ``/health`` probes)
goes to the next upstream in turn, and the proxy records which replica answered, the version
it was asked for and the version it served. The gateway's view of the WorldService therefore
flips between "serves [1]" and "serves [1, 2]" from one probe to the next — the worst case of
a rolling upgrade. For every response the test checks that

* it parses (contract models, the version-gated shape, the hand-checked deltas);
* its version is the version the answering replica served, and that replica served what its
  configuration says (v1-only: 1; v2: min(asked, 2));
* execute's ``rebalance_schema_version`` equals it and ``alpha_metrics_capable`` is true only
  for a v2 plan;
* the SDK's ``RebalanceResult.alpha_metrics`` is None whenever the document was v1 — also when
  the Runner's alpha feature was on and it had sent ``alpha_series`` — and equals the
  independent metrics of its recorded returns when it was v2;
* every applied plan's events reach WebSocket subscribers once per world, at the apply's
  version.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import connect

from qmtl.contracts import ApplyResponse, ExecuteResponse, MultiWorldRebalanceResponse
from qmtl.sdk import GatewayClient, RebalanceResult, RebalancingEvent, Runner
from qmtl.web.server import ServerThread
from tests._servers import PostgresServer, RedisServer
from tests.e2e._matrix_support import (
    RECORDED_RETURNS,
    START_TIMEOUT,
    classify_alpha,
    document_problems,
    request,
)
from tests.e2e._procs import QmtlProcess, gateway_process, worldservice_process

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

REDIS_DB = 14
HANG_GUARD = 120.0
"""Seconds before a stuck phase fails the test (a hang guard, not a timing assertion)."""
UPSTREAM_SERVES = {"ws-v1": (1,), "ws-v2": (1, 2)}
WORLDS = ("w1", "w2")
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


# --- the round-robin proxy -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hop:
    """One request the proxy forwarded and what came back."""

    upstream: str
    method: str
    path: str
    run_id: str | None
    asked_version: int | None
    status: int
    served_version: int | None


@dataclass
class RoundRobinProxy:
    """Forwards each request to the next upstream; records a :class:`Hop` per request."""

    upstreams: list[tuple[str, str]]
    hops: list[Hop] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(self.upstreams)
        self._http: httpx.AsyncClient | None = None

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            self._http = httpx.AsyncClient(timeout=60)
            try:
                yield
            finally:
                await self._http.aclose()

        methods = ["GET", "POST", "PUT", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self.forward, methods=methods)],
                         lifespan=lifespan)

    async def forward(self, incoming: Request) -> Response:
        assert self._http is not None
        with self.lock:
            name, base = next(self._turn)
        content = await incoming.body()
        headers = {k: v for k, v in incoming.headers.items() if k.lower() not in _HOP_HEADERS}
        url = base + incoming.url.path + (f"?{incoming.url.query}" if incoming.url.query else "")
        upstream = await self._http.request(incoming.method, url, content=content,
                                            headers=headers)
        sent = _json(content)
        answered = _json(upstream.content)
        hop = Hop(upstream=name, method=incoming.method, path=incoming.url.path,
                  run_id=sent.get("run_id") if isinstance(sent, dict) else None,
                  asked_version=sent.get("schema_version") if isinstance(sent, dict) else None,
                  status=upstream.status_code,
                  served_version=(answered.get("schema_version", 1)
                                  if isinstance(answered, dict) and incoming.method == "POST"
                                  and upstream.status_code == 200 else None))
        with self.lock:
            self.hops.append(hop)
        out_headers = {k: v for k, v in upstream.headers.items()
                       if k.lower() not in _HOP_HEADERS | {"content-encoding"}}
        return Response(upstream.content, status_code=upstream.status_code, headers=out_headers)

    def answer_for(self, run_id: str, path: str) -> Hop:
        """The hop whose answer the gateway used for ``run_id`` (the last one on ``path``)."""
        with self.lock:
            hops = [h for h in self.hops if h.run_id == run_id and h.path == path]
        assert hops, f"no upstream request for run_id {run_id} on {path}"
        return hops[-1]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


# --- deployment ------------------------------------------------------------------------------


@dataclass
class Rolling:
    proxy: RoundRobinProxy
    gateway: QmtlProcess
    replicas: dict[str, QmtlProcess]

    def logs(self) -> str:
        parts = [f"--- {name} ---\n{p.log()[-2000:]}" for name, p in self.replicas.items()]
        return "\n".join([*parts, f"--- gateway ---\n{self.gateway.log()[-2000:]}"])


@pytest.fixture(scope="module")
def rolling(redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[Rolling]:
    redis_server.start()
    with redis.Redis(port=redis_server.port, db=REDIS_DB) as conn:
        conn.flushdb()
    dsn = postgres_server.create_database()
    bus = f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB}"
    processes: list[QmtlProcess] = []
    proxy_server: ServerThread | None = None
    try:
        replicas = {}
        # One after the other: the first start migrates the shared database.
        for name, compat in (("ws-v1", False), ("ws-v2", True)):
            replicas[name] = worldservice_process(dsn=dsn, controlbus=bus,
                                                  compat_rebalance_v2=compat, name=name,
                                                  relay={"poll_interval": 0.2})
            processes.append(replicas[name])
            replicas[name].start(timeout=START_TIMEOUT)
        proxy = RoundRobinProxy([(name, p.url) for name, p in replicas.items()])
        proxy_server = ServerThread(proxy.app())
        proxy_server.start()
        gateway = gateway_process(worldservice_url=proxy_server.url, controlbus=bus,
                                  rebalance_schema_version=2, alpha_metrics_capable=True,
                                  capability_refresh_seconds=3600)
        processes.append(gateway)
        gateway.start(timeout=START_TIMEOUT)
        yield Rolling(proxy, gateway, replicas)
    finally:
        for proc in processes:
            proc.close()
        if proxy_server is not None:
            proxy_server.stop()


# --- checking one answer ---------------------------------------------------------------------


@dataclass
class Ledger:
    """What the test saw, for the coverage checks at the end."""

    problems: list[str] = field(default_factory=list)
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    """(client kind, upstream, served version)."""
    feature_on_but_v1: int = 0
    v2_computed: int = 0
    applies: dict[str, int] = field(default_factory=dict)
    """apply run_id -> served version."""


def _expected_from(hop: Hop) -> int:
    asked = hop.asked_version or 1
    return min(asked, max(UPSTREAM_SERVES[hop.upstream]))


def _check(ledger: Ledger, rolling: Rolling, *, kind: str, op: str, run_id: str,
           document: dict[str, Any], sdk: RebalanceResult | None = None,
           feature_on: bool = False) -> None:
    where = f"{kind} {op} {run_id}"
    path = "/rebalancing/apply" if op == "apply" else "/rebalancing/plan"
    hop = rolling.proxy.answer_for(run_id, path)
    if hop.served_version != _expected_from(hop):
        ledger.problems.append(f"{where}: {hop.upstream} asked v{hop.asked_version} served "
                               f"v{hop.served_version}, its configuration serves "
                               f"v{_expected_from(hop)}")
    if op == "execute":
        parsed = ExecuteResponse.model_validate(document)
        served = parsed.rebalance_schema_version
        if parsed.alpha_metrics_capable != (served == 2):
            ledger.problems.append(f"{where}: alpha_metrics_capable={parsed.alpha_metrics_capable}"
                                   f" for a v{served} plan")
    else:
        model = ApplyResponse if op == "apply" else MultiWorldRebalanceResponse
        model.model_validate(document)
        ledger.problems.extend(f"{where}: {p}" for p in document_problems(document, kind=op))
        served = document.get("schema_version", 1)
        if op == "apply":
            ledger.applies[run_id] = served
        expected_alpha = ("absent" if served == 1
                          else "computed" if sdk is not None and feature_on else "zeros")
        alpha = ("absent" if "alpha_metrics" not in document
                 else classify_alpha(document["alpha_metrics"], recorded=RECORDED_RETURNS))
        if alpha != expected_alpha:
            ledger.problems.append(f"{where}: alpha {alpha}, expected {expected_alpha}")
    if served != hop.served_version:
        ledger.problems.append(f"{where}: gateway reports v{served} but {hop.upstream} served "
                               f"v{hop.served_version}")
    if sdk is not None:
        if sdk.schema_version != served:
            ledger.problems.append(f"{where}: SDK read v{sdk.schema_version} of a v{served} doc")
        if served == 1 and sdk.alpha_metrics is not None:
            ledger.problems.append(f"{where}: SDK claims alpha metrics of a v1 document")
        if served == 1 and feature_on:
            ledger.feature_on_but_v1 += 1
        if op != "execute" and served == 2:
            if sdk.alpha_metrics is None:
                ledger.problems.append(f"{where}: SDK dropped the metrics of a v2 document")
            elif feature_on:
                ledger.v2_computed += 1
    ledger.seen.add((kind, hop.upstream, served))


async def _legacy(ledger: Ledger, rolling: Rolling, http: httpx.AsyncClient, op: str) -> None:
    run_id = f"legacy-{op}-{uuid.uuid4().hex[:10]}"
    response = await http.post(f"/rebalancing/{op}", json=request(run_id=run_id))
    if response.status_code != 200:
        ledger.problems.append(f"legacy {op}: HTTP {response.status_code} {response.text}")
        return
    _check(ledger, rolling, kind="legacy", op=op, run_id=run_id, document=response.json())


async def _sdk(ledger: Ledger, rolling: Rolling, runner: Runner, kind: str, op: str) -> None:
    run_id = f"{kind}-{op}-{uuid.uuid4().hex[:10]}"
    if op == "plan":
        result = await runner.plan(request(run_id=run_id))
    elif op == "apply":
        result = await runner.apply(request(), run_id=run_id)
    else:
        result = await runner.execute(request(run_id=run_id))
    # The features the request was built with (the Runner refreshes them before each call).
    feature_on = runner.features.alpha_metrics
    _check(ledger, rolling, kind=kind, op=op, run_id=run_id, document=result.document,
           sdk=result, feature_on=feature_on)


def _runner(client: GatewayClient) -> Runner:
    runner = Runner(client)
    for (world, strategy), returns in RECORDED_RETURNS.items():
        for r in returns:
            runner.record_return(world, strategy, r)
    return runner


# --- the tests -------------------------------------------------------------------------------


async def test_every_plan_and_execute_is_parsed_and_honest(rolling: Rolling) -> None:
    ledger = Ledger()
    async with httpx.AsyncClient(base_url=rolling.gateway.url, timeout=60) as http, \
            GatewayClient(rolling.gateway.url, timeout=60,
                          capabilities_ttl=3600) as cached_client, \
            GatewayClient(rolling.gateway.url, timeout=60, capabilities_ttl=0) as probing_client:
        cached = _runner(cached_client)
        probing = _runner(probing_client)

        async def run() -> None:
            # Each forced refresh is one gateway probe, and probes alternate between the
            # replicas: within two refreshes the gateway says "effective 2" and the feature
            # turns on (then stays cached for this client).
            for _ in range(4):
                if (await cached.refresh(force=True)).alpha_metrics:
                    break
            assert cached.features.alpha_metrics, cached.features.reason
            # Phase 1: the cached Runner (feature on) alternates between the replicas.
            for op in ("plan", "execute", "plan", "plan", "execute", "execute", "plan", "plan"):
                await _sdk(ledger, rolling, cached, "sdk-cached", op)
            # Phase 2: a Runner that re-reads /health before every call, interleaved with a
            # legacy client so that the probe lands on either replica.
            for op in ("plan", "execute") * 4:
                await _sdk(ledger, rolling, probing, "sdk-probing", op)
                await _legacy(ledger, rolling, http, op)

        await asyncio.wait_for(run(), HANG_GUARD)

    assert ledger.problems == [], "\n".join(ledger.problems) + "\n" + rolling.logs()
    # The mix really happened: both replicas answered, both versions were served, the SDK's
    # feature was on while a v1 replica answered, and a v2 replica computed its metrics.
    upstreams = {(upstream, version) for _k, upstream, version in ledger.seen}
    assert {("ws-v1", 1), ("ws-v2", 2)} <= upstreams, ledger.seen
    assert ledger.feature_on_but_v1 > 0
    assert ledger.v2_computed > 0


async def test_applies_are_honest_and_their_events_arrive_at_their_version(
        rolling: Rolling) -> None:
    ledger = Ledger()
    sdk_events: list[RebalancingEvent] = []
    raw_events: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=rolling.gateway.url, timeout=60) as http, \
            GatewayClient(rolling.gateway.url, timeout=60, capabilities_ttl=0) as client, \
            connect(rolling.gateway.ws_url, open_timeout=10) as socket:
        runner = _runner(client)
        stream = client.events()
        await stream.subscribed()
        await socket.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"]}))
        assert json.loads(await socket.recv())["type"] == "subscribed"

        async def run() -> None:
            # An SDK apply is a probe plus an apply (two upstream requests), a legacy apply is
            # one: each round shifts which replica the probe reaches, so the gateway's view
            # (and the version it asks for) changes from round to round.
            for _ in range(4):
                await _sdk(ledger, rolling, runner, "sdk", "apply")
                await _legacy(ledger, rolling, http, "apply")
            wanted = {(run_id, w) for run_id in ledger.applies for w in WORLDS}

            async def collect_sdk() -> None:
                async for event in stream:
                    sdk_events.append(event)
                    if wanted <= {(e.run_id, e.world_id) for e in sdk_events}:
                        return

            async def collect_raw() -> None:
                while not wanted <= {(d["run_id"], d["world_id"]) for d in raw_events}:
                    message = json.loads(await socket.recv())
                    if "specversion" in message:
                        raw_events.append(message["data"])

            await asyncio.gather(collect_sdk(), collect_raw())

        await asyncio.wait_for(run(), HANG_GUARD)
        await stream.aclose()

    assert ledger.problems == [], "\n".join(ledger.problems) + "\n" + rolling.logs()
    # Both replicas recorded applies into the shared database, and both versions were served.
    assert {upstream for _k, upstream, _v in ledger.seen} == {"ws-v1", "ws-v2"}, ledger.seen
    assert set(ledger.applies.values()) == {1, 2}, ledger.applies
    for data in raw_events:
        version = ledger.applies.get(data["run_id"])
        if version is None:
            continue
        assert data["schema_version"] == version, data
        assert ("alpha_metrics" in data) == (version == 2), data
    for event in sdk_events:
        version = ledger.applies.get(event.run_id)
        if version is None:
            continue
        assert event.schema_version == version, event
        assert (event.alpha_metrics is None) == (version == 1), event
    # Exactly once per subscriber (the gateway de-duplicates by event id).
    for label, keys in (
            ("raw", [(d["run_id"], d["world_id"]) for d in raw_events]),
            ("sdk", [(e.run_id, e.world_id) for e in sdk_events])):
        ours = [k for k in keys if k[0] in ledger.applies]
        assert sorted(ours) == sorted(set(ours)), f"{label} subscriber got duplicates: {ours}"

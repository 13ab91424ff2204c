"""The compatibility matrix (issue #6 item 1) against real processes.

Three ``qmtl worldservice serve`` processes (v1-only, v2, v2-required) and six
``qmtl gateway serve`` processes (schema-1 and schema-2-alpha in front of each WorldService)
run for the whole module; each WorldService and its two gateways share one Redis database as
the ControlBus. For each (WorldService, Gateway, client) the scenario subscribes to the
gateway's WebSocket, then plans, applies and executes through the gateway, and records what
it observed as :class:`Outcome` values; every cell is then compared with the declarative
table in ``compat_expectations.py`` (written from SPEC).

Proving that a refused apply relays *no* event needs no timeout: after the apply, a sentinel
apply goes straight to the WorldService; events of one world are published and relayed in
order, so once the sentinel's events have arrived every earlier event has too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import ValidationError
from websockets.asyncio.client import connect

from qmtl.contracts import ApplyResponseV1, RebalanceResponseV1
from qmtl.sdk import (
    GatewayClient,
    GatewayHTTPError,
    RebalanceResult,
    RebalancingEvent,
    Runner,
    check_gateway_health,
)
from tests._servers import RedisServer
from tests.e2e._matrix_support import (
    RECORDED_RETURNS,
    classify_alpha,
    document_problems,
    request,
    start_all,
)
from tests.e2e._procs import QmtlProcess, gateway_process, worldservice_process
from tests.e2e.compat_expectations import (
    CLIENTS,
    EXPECTED,
    GATEWAY_CONFIGS,
    OPERATIONS,
    PAIR_EXPECTED,
    WORLDSERVICE_CONFIGS,
    Cell,
    Outcome,
    PairOutcome,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = {"v1-only": 11, "v2": 12, "v2-required": 13}
"""One Redis database per WorldService: its gateways relay only its events."""
SCENARIO_TIMEOUT = 120.0
"""Seconds a scenario may hang before the test fails (a hang guard, not a timing assertion)."""
REQUIRED_PHRASE = "schema_version>=2"
WORLDS = ("w1", "w2")

Group = tuple[str, str, str]
"""(worldservice, gateway, client)."""


@dataclass
class Deployment:
    redis_port: int
    worldservices: dict[str, QmtlProcess]
    gateways: dict[tuple[str, str], QmtlProcess]

    def logs(self, ws: str, gw: str) -> str:
        tail = 3000
        return (f"--- worldservice {ws} log ---\n{self.worldservices[ws].log()[-tail:]}\n"
                f"--- gateway {gw} (-> {ws}) log ---\n{self.gateways[(ws, gw)].log()[-tail:]}")


@dataclass
class Observation:
    cells: dict[Cell, Outcome] = field(default_factory=dict)
    pairs: dict[tuple[str, str], PairOutcome] = field(default_factory=dict)
    problems: dict[Group, list[str]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def deployment(redis_server: RedisServer) -> Iterator[Deployment]:
    redis_server.start()
    for db in REDIS_DB.values():
        with redis.Redis(port=redis_server.port, db=db) as conn:
            conn.flushdb()
    processes: list[QmtlProcess] = []
    try:
        worldservices = {}
        for name, config in WORLDSERVICE_CONFIGS.items():
            worldservices[name] = worldservice_process(
                controlbus=f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB[name]}",
                compat_rebalance_v2=config.compat_rebalance_v2,
                alpha_metrics_required=config.alpha_metrics_required,
                name=f"ws-{name}", relay={"poll_interval": 0.2})
            processes.append(worldservices[name])
        start_all(worldservices.values())
        gateways = {}
        for ws_name, ws in worldservices.items():
            for gw_name, gw_config in GATEWAY_CONFIGS.items():
                gateways[(ws_name, gw_name)] = gateway_process(
                    worldservice_url=ws.url,
                    controlbus=f"redis://127.0.0.1:{redis_server.port}/{REDIS_DB[ws_name]}",
                    rebalance_schema_version=gw_config.rebalance_schema_version,
                    alpha_metrics_capable=gw_config.alpha_metrics_capable,
                    name=f"gw-{gw_name}-{ws_name}")
                processes.append(gateways[(ws_name, gw_name)])
        start_all(gateways.values())
        yield Deployment(redis_server.port, worldservices, gateways)
    finally:
        for proc in processes:
            proc.close()


# --- observing one document / error ---------------------------------------------------------


def _error_outcome(status: int, detail: Any) -> Outcome:
    code = detail.get("code") if isinstance(detail, dict) else None
    message = str(detail.get("message", "")) if isinstance(detail, dict) else str(detail)
    mentions = REQUIRED_PHRASE if REQUIRED_PHRASE in message else f"(message: {message!r})"
    return Outcome(status=status, error_code=code if isinstance(code, str) else f"{detail!r}",
                   error_mentions=mentions)


def _plan_outcome(document: dict[str, Any], *, recorded: dict[tuple[str, str], list[float]],
                  kind: str, problems: list[str]) -> Outcome:
    problems.extend(document_problems(document, kind=kind))
    alpha = ("absent" if "alpha_metrics" not in document
             else classify_alpha(document["alpha_metrics"], recorded=recorded))
    return Outcome(status=200, schema_version=document.get("schema_version", 1), alpha=alpha)


def _execute_outcome(document: dict[str, Any], problems: list[str]) -> Outcome:
    orders = {w: [(o["side"], o["symbol"], o["quantity"]) for o in document["orders_per_world"][w]]
              for w in WORLDS}
    # The hand-checked deltas of the request become one order each (no lot sizes configured).
    if orders != {"w1": [("sell", "BTCUSDT", -0.5)], "w2": [("buy", "ETHUSDT", 5.0)]}:
        problems.append(f"execute: orders {orders}")
    return Outcome(status=200, schema_version=document["rebalance_schema_version"],
                   alpha_metrics_capable=document["alpha_metrics_capable"])


def _events_outcome(events: list[dict[str, Any]], *,
                    recorded: dict[tuple[str, str], list[float]]) -> Outcome:
    """``events``: the ``data`` of every relayed event of the apply."""
    if not events:
        return Outcome(events=0)
    versions = {e["schema_version"] for e in events}
    alphas = {"absent" if "alpha_metrics" not in e
              else classify_alpha(e["alpha_metrics"], recorded=recorded) for e in events}
    return Outcome(events=len(events),
                   schema_version=versions.pop() if len(versions) == 1 else None,
                   alpha=alphas.pop() if len(alphas) == 1 else f"mixed {sorted(alphas)}")


# --- the two clients ------------------------------------------------------------------------


async def _sentinel_apply(ws_url: str) -> str:
    """Apply straight to the WorldService; returns the run id whose events close the wait."""
    run_id = f"sentinel-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{ws_url}/rebalancing/apply",
                                   json=request(run_id=run_id, schema_version=2))
    assert response.status_code == 200, response.text
    return run_id


async def _legacy_scenario(dep: Deployment, ws: str, gw: str, obs: Observation) -> None:
    """Plain httpx + a raw WebSocket; no schema_version sent; unknown keys ignored."""
    gateway = dep.gateways[(ws, gw)]
    problems = obs.problems.setdefault((ws, gw, "legacy"), [])
    run_id = f"legacy-{ws}-{gw}-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http, \
            connect(gateway.ws_url, open_timeout=10) as socket:
        await socket.send(json.dumps({"type": "subscribe", "topics": ["rebalancing"]}))
        reply = json.loads(await socket.recv())
        assert reply.get("type") == "subscribed", reply

        for op in ("plan", "apply"):
            body = request(run_id=run_id) if op == "apply" else request()
            response = await http.post(f"/rebalancing/{op}", json=body)
            if response.status_code != 200:
                obs.cells[(ws, gw, "legacy", op)] = _error_outcome(
                    response.status_code, response.json().get("detail"))
                continue
            # A v1 reader (unknown keys ignored) must read any served document.
            v1_model = ApplyResponseV1 if op == "apply" else RebalanceResponseV1
            try:
                v1_model.model_validate(response.json())
            except ValidationError as exc:
                problems.append(f"{op}: a v1 reader cannot read the document: {exc}")
            obs.cells[(ws, gw, "legacy", op)] = _plan_outcome(
                response.json(), recorded={}, kind=op, problems=problems)

        sentinel = await _sentinel_apply(dep.worldservices[ws].url)
        relayed: list[dict[str, Any]] = []
        sentinel_worlds: set[str] = set()
        while sentinel_worlds != set(WORLDS):
            message = json.loads(await socket.recv())
            if "specversion" not in message:
                continue
            data = message["data"]
            if data["run_id"] == run_id:
                relayed.append(data)
            elif data["run_id"] == sentinel:
                sentinel_worlds.add(data["world_id"])
        obs.cells[(ws, gw, "legacy", "events")] = _events_outcome(relayed, recorded={})

        response = await http.post("/rebalancing/execute", json=request())
        obs.cells[(ws, gw, "legacy", "execute")] = (
            _execute_outcome(response.json(), problems) if response.status_code == 200
            else _error_outcome(response.status_code, response.json().get("detail")))

        health = (await http.get("/health")).json()
        obs.pairs[(ws, gw)] = PairOutcome(
            effective_schema_version=health["effective_rebalance_schema_version"],
            worldservice_status=health["worldservice"]["status"],
            sdk_alpha_feature=False, v2_rollout_check=False)  # filled by the SDK scenario


def _sdk_plan_outcome(result: RebalanceResult, *, kind: str,
                      problems: list[str]) -> Outcome:
    document = result.document
    problems.extend(document_problems(document, kind=kind))
    if result.schema_version != document.get("schema_version", 1):
        problems.append(f"{kind}: SDK read v{result.schema_version} from "
                        f"v{document.get('schema_version')}")
    if result.alpha_metrics is None:
        if "alpha_metrics" in document:
            problems.append(f"{kind}: SDK dropped the alpha_metrics of a v{result.schema_version}"
                            " document")
        alpha = "absent"
    else:
        alpha = classify_alpha(result.alpha_metrics.model_dump(), recorded=RECORDED_RETURNS)
    return Outcome(status=200, schema_version=result.schema_version, alpha=alpha)


def _sdk_event_data(event: RebalancingEvent) -> dict[str, Any]:
    data = dict(event.raw["data"])
    if (event.alpha_metrics is None) != ("alpha_metrics" not in data):
        data["alpha_metrics"] = "SDK view disagrees with the relayed data"
    elif event.alpha_metrics is not None:
        data["alpha_metrics"] = event.alpha_metrics.model_dump()
    data["schema_version"] = event.schema_version
    return data


async def _sdk_scenario(dep: Deployment, ws: str, gw: str, obs: Observation) -> None:
    """``qmtl.sdk`` Runner + GatewayClient: v2 and alpha_series only when the feature is on."""
    gateway = dep.gateways[(ws, gw)]
    problems = obs.problems.setdefault((ws, gw, "sdk-v2"), [])
    run_id = f"sdk-{ws}-{gw}-{uuid.uuid4().hex[:8]}"
    async with GatewayClient(gateway.url, timeout=30) as client:
        runner = Runner(client)
        for (world, strategy), returns in RECORDED_RETURNS.items():
            for r in returns:
                runner.record_return(world, strategy, r)
        stream = client.events()
        await stream.subscribed()

        async def call(op: str) -> None:
            try:
                if op == "plan":
                    result = await runner.plan(request())
                elif op == "apply":
                    result = await runner.apply(request(), run_id=run_id)
                else:
                    result = await runner.execute(request())
            except GatewayHTTPError as exc:
                obs.cells[(ws, gw, "sdk-v2", op)] = _error_outcome(exc.status_code, exc.detail)
                return
            obs.cells[(ws, gw, "sdk-v2", op)] = (
                _execute_outcome(result.document, problems) if op == "execute"
                else _sdk_plan_outcome(result, kind=op, problems=problems))
            if op == "execute" and result.alpha_metrics is not None:
                problems.append("execute: SDK claims alpha metrics on an execute document")

        await call("plan")
        await call("apply")
        sentinel = await _sentinel_apply(dep.worldservices[ws].url)
        relayed: list[dict[str, Any]] = []
        sentinel_worlds: set[str] = set()
        async for event in stream:
            if event.run_id == run_id:
                relayed.append(_sdk_event_data(event))
            elif event.run_id == sentinel:
                sentinel_worlds.add(event.world_id)
            if sentinel_worlds == set(WORLDS):
                break
        await stream.aclose()
        if stream.skipped:
            problems.append(f"events: the SDK skipped {stream.skipped} relayed message(s)")
        obs.cells[(ws, gw, "sdk-v2", "events")] = _events_outcome(relayed,
                                                                  recorded=RECORDED_RETURNS)
        await call("execute")
        feature = runner.features.alpha_metrics
        check = await check_gateway_health(client, expect_schema_version=2,
                                           expect_alpha_metrics=True)
    pair = obs.pairs.get((ws, gw))
    assert pair is not None  # the legacy scenario of the pair ran first
    obs.pairs[(ws, gw)] = PairOutcome(pair.effective_schema_version, pair.worldservice_status,
                                      sdk_alpha_feature=feature, v2_rollout_check=check.ok)


async def _observe(dep: Deployment) -> Observation:
    obs = Observation()

    async def pair(ws: str, gw: str) -> None:
        await asyncio.wait_for(_legacy_scenario(dep, ws, gw, obs), SCENARIO_TIMEOUT)
        await asyncio.wait_for(_sdk_scenario(dep, ws, gw, obs), SCENARIO_TIMEOUT)

    await asyncio.gather(*(pair(ws, gw) for ws in WORLDSERVICE_CONFIGS for gw in GATEWAY_CONFIGS))
    return obs


@pytest.fixture(scope="module")
def observed(deployment: Deployment) -> Observation:
    return asyncio.run(_observe(deployment))


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.parametrize("cell", list(EXPECTED), ids=lambda c: "|".join(c))
def test_cell_matches_expectation(cell: Cell, observed: Observation,
                                  deployment: Deployment) -> None:
    ws, gw, _client, _op = cell
    assert observed.cells.get(cell) == EXPECTED[cell], (
        f"cell {cell}: observed {observed.cells.get(cell)}, expected {EXPECTED[cell]}\n"
        + deployment.logs(ws, gw))


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.parametrize("pair", list(PAIR_EXPECTED), ids=lambda p: "|".join(p))
def test_gateway_health_and_sdk_feature(pair: tuple[str, str], observed: Observation,
                                        deployment: Deployment) -> None:
    assert observed.pairs.get(pair) == PAIR_EXPECTED[pair], deployment.logs(*pair)


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.parametrize("group", [(ws, gw, c) for ws in WORLDSERVICE_CONFIGS
                                   for gw in GATEWAY_CONFIGS for c in CLIENTS],
                         ids=lambda g: "|".join(g))
def test_documents_parse_and_carry_the_right_plan(group: Group, observed: Observation) -> None:
    """Every document has the shape of its version and the hand-checked deltas/orders."""
    assert observed.problems.get(group) == [], observed.problems.get(group)


def _spec_derivation(ws: str, gw: str, client: str, op: str) -> Outcome:
    """The cell derived mechanically from the SPEC rules (cross-checks the literal table)."""
    wsc, gwc = WORLDSERVICE_CONFIGS[ws], GATEWAY_CONFIGS[gw]
    effective = max(v for v in wsc.schema_versions if v <= gwc.rebalance_schema_version)
    feature = client == "sdk-v2" and gwc.alpha_metrics_capable and effective >= 2
    asked = min(2 if feature else gwc.rebalance_schema_version, gwc.rebalance_schema_version)
    sent = max(v for v in wsc.schema_versions if v <= asked)
    if wsc.alpha_metrics_required and sent < 2:
        if op == "events":
            return Outcome(events=0)
        return Outcome(status=400, error_code="E_SCHEMA_VERSION_REQUIRED",
                       error_mentions=REQUIRED_PHRASE)
    version = min(sent, 2 if wsc.compat_rebalance_v2 else 1)
    alpha = "absent" if version < 2 else ("computed" if feature else "zeros")
    if op == "execute":
        return Outcome(status=200, schema_version=version,
                       alpha_metrics_capable=gwc.alpha_metrics_capable and version >= 2)
    if op == "events":
        return Outcome(events=2, schema_version=version, alpha=alpha)
    return Outcome(status=200, schema_version=version, alpha=alpha)


def test_expectation_table_agrees_with_the_spec_rules() -> None:
    cells = [(ws, gw, c, op) for ws in WORLDSERVICE_CONFIGS for gw in GATEWAY_CONFIGS
             for c in CLIENTS for op in OPERATIONS]
    assert sorted(EXPECTED) == sorted(cells)
    assert {cell: _spec_derivation(*cell) for cell in cells} == EXPECTED


def test_compatibility_page_is_the_rendered_table() -> None:
    page = ROOT / "docs" / "compatibility.md"
    assert page.read_text() == render_markdown(), (
        "docs/compatibility.md is stale: run `uv run python scripts/gen_compat_matrix.py`")

"""``POST /rebalancing/execute`` over real HTTP against a real WorldService (SPEC 4, 8).

Every status code and error body of SPEC 4, the order of the checks, dry run vs submit,
per-strategy attribution with dust, shared-account figures, overlay orders, and run_id
replay/conflict. Commit-log contents are read back from the gateway's SQLite file.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qmtl.gateway.commitlog import CommitRecord, create_commit_log

from ._support import scaling_request
from .conftest import RunningGateway, RunningWorldService, Stack

LIVE = {"X-Allow-Live": "true"}


def records(gw: RunningGateway) -> list[CommitRecord]:
    async def read() -> list[CommitRecord]:
        log = create_commit_log(gw.settings.commit_log)
        await log.start()
        try:
            return await log.tail(limit=1000)
        finally:
            await log.close()

    return asyncio.run(read())


def execute(gw: RunningGateway, body: dict[str, Any], *, headers: dict[str, str] | None = None,
            **flags: bool) -> httpx.Response:
    params = {k: str(v).lower() for k, v in flags.items()}
    return httpx.post(f"{gw.url}/rebalancing/execute", json=body, params=params,
                      headers=headers, timeout=30)


@pytest.fixture
def ws(stack: Stack) -> RunningWorldService:
    return stack.worldservice(compat=True)


@pytest.fixture
def gw(stack: Stack, ws: RunningWorldService) -> RunningGateway:
    return stack.gateway(ws.url, rebalance_schema_version=2, alpha_metrics_capable=True,
                         shared_account_policy={"enabled": False})


def overlay_request(**overrides: Any) -> dict[str, Any]:
    """w1 0.5 -> 0.75 holding 1 XYZ @ 100; overlay instrument IDX @ 10.

    Hand calculation: scale 1.5, overlay qty = (1.5 - 1) * (1 * 100) / 10 = +5 IDX.
    """
    body: dict[str, Any] = {
        "total_equity": 1000.0,
        "world_alloc_before": {"w1": 0.5},
        "world_alloc_after": {"w1": 0.75},
        "positions": [{"world_id": "w1", "strategy_id": "s1", "symbol": "XYZ", "qty": 1.0,
                       "mark": 100.0}],
        "mode": "overlay",
        "overlay": {"instrument_by_world": {"w1": "IDX"}, "price_by_symbol": {"IDX": 10.0}},
    }
    body.update(overrides)
    return body


# -- validation and the order of the checks ---------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda b: b.pop("world_alloc_after"), ["body", "world_alloc_after"]),
        (lambda b: b["positions"][0].update(mark=0), ["body", "positions", 0, "mark"]),
        (lambda b: b.update(mode="sideways"), ["body", "mode"]),
        (lambda b: b.update(schema_version="2"), ["body", "schema_version"]),
        (lambda b: b["world_alloc_after"].update(w1=1.5), ["body", "world_alloc_after", "w1"]),
    ],
)
def test_validation_errors_keep_the_list_form(gw: RunningGateway, ws: RunningWorldService,
                                              mutate: Any, loc: list[Any]) -> None:
    body = scaling_request()
    mutate(body)
    response = execute(gw, body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert loc in [err["loc"] for err in detail]
    assert ws.requests.to("/rebalancing/plan") == []


def test_nan_is_a_422_not_a_500(gw: RunningGateway) -> None:
    raw = str(scaling_request()).replace("'", '"').replace("1000000.0", "NaN").encode()
    response = httpx.post(f"{gw.url}/rebalancing/execute", content=raw,
                          headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert ["body", "total_equity"] in [e["loc"] for e in response.json()["detail"]]


CHECK_ORDER = [
    # (body overrides, flags, headers, status, code) — each row also breaks every later check
    ({"mode": "HYBRID"}, {"shared_account": True, "submit": True}, None, 501,
     "E_REBALANCE_MODE_UNSUPPORTED"),
    ({"mode": "overlay"}, {"shared_account": True, "submit": True}, None, 422,
     "E_OVERLAY_CONFIG_REQUIRED"),
    ({"mode": "overlay", "overlay": {"instrument_by_world": {"w1": "IDX", "w2": "IDX"},
                                     "price_by_symbol": {"IDX": 10.0}}},
     {"shared_account": True, "submit": True}, None, 422, "E_OVERLAY_EXECUTION_AMBIGUOUS"),
    ({}, {"shared_account": True, "submit": True}, None, 403, "E_SHARED_ACCOUNT_DISABLED"),
    ({}, {"submit": True}, None, 403, "E_PERMISSION_DENIED"),
    ({}, {"submit": True}, {"X-Allow-Live": "false"}, 403, "E_PERMISSION_DENIED"),
    ({}, {"submit": True}, {"X-Allow-Live": "yes"}, 403, "E_PERMISSION_DENIED"),
]


@pytest.mark.parametrize(("overrides", "flags", "headers", "status", "code"), CHECK_ORDER)
def test_checks_run_in_spec_order_before_the_worldservice(
    gw: RunningGateway, ws: RunningWorldService, overrides: dict[str, Any],
    flags: dict[str, bool], headers: dict[str, str] | None, status: int, code: str,
) -> None:
    response = execute(gw, scaling_request(**overrides), headers=headers, **flags)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert detail["code"] == code
    assert detail["message"]
    assert ws.requests.to("/rebalancing/plan") == []
    assert records(gw) == []


def test_ambiguous_overlay_names_the_symbol_and_worlds(gw: RunningGateway) -> None:
    body = overlay_request(overlay={"instrument_by_world": {"w1": "IDX", "w2": "IDX"},
                                    "price_by_symbol": {"IDX": 10.0}})
    detail = execute(gw, body).json()["detail"]
    assert detail["symbol"] == "IDX" and detail["world_ids"] == ["w1", "w2"]


# -- dry run and submit ------------------------------------------------------------------


def test_dry_run_builds_orders_and_writes_nothing(gw: RunningGateway) -> None:
    response = execute(gw, scaling_request(run_id="dry-1"))
    assert response.status_code == 200
    body = response.json()
    assert body["submitted"] is False and body["batch_ids"] == []
    assert body["rebalance_schema_version"] == 2 and body["alpha_metrics_capable"] is True
    [order] = body["orders_per_world"]["w1"]
    # w1 holds 1.5 BTC long; selling 0.5 only reduces it -> reduce_only.
    assert order["symbol"] == "BTCUSDT" and order["quantity"] == -0.5
    assert order["side"] == "sell" and order["reduce_only"] is True
    assert order["time_in_force"] == "GTC" and order["venue"] == "binance"
    assert body["orders_per_world"]["w2"] == []
    assert "orders_global" not in body and "orders_per_strategy" not in body
    assert records(gw) == []
    assert gw.metric("rebalance_batches_submitted_total", world_id="w1", scope="per_world") == 0
    # Deterministic ids: the same dry run gives the same client_order_id.
    again = execute(gw, scaling_request(run_id="dry-1")).json()
    assert again["orders_per_world"]["w1"][0]["client_order_id"] == order["client_order_id"]


def test_submit_writes_one_batch_per_world_with_the_spec_payload(gw: RunningGateway) -> None:
    response = execute(gw, scaling_request(run_id="run-1"), headers=LIVE, submit=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["submitted"] is True and body["run_id"] == "run-1"
    [record] = records(gw)  # w2 has no orders: no empty batch is written
    assert body["batch_ids"] == [record.batch_id]
    wire = record.to_wire()
    assert wire[0] == "gateway.rebalance" and isinstance(wire[1], int)
    payload = wire[3]
    assert payload["event"] == "gateway.rebalance" and payload["version"] == 1
    assert payload["world_id"] == "w1" and payload["scope"] == "per_world"
    assert payload["orders"] == body["orders_per_world"]["w1"]
    assert payload["counts"] == {"orders": 1, "buy": 0, "sell": 1, "reduce_only": 1}
    assert payload["reduce_only_ratio"] == 1.0
    assert payload["submitted_at"].endswith("+00:00")
    assert payload["rebalance_schema_version"] == 2
    assert gw.metric("rebalance_batches_submitted_total", world_id="w1", scope="per_world") == 1
    assert gw.metric("rebalance_last_batch_size", world_id="w1", scope="per_world") == 1
    assert gw.metric("rebalance_reduce_only_ratio", world_id="w1", scope="per_world") == 1.0


def test_live_guard_off_allows_submit_without_the_header(stack: Stack,
                                                         ws: RunningWorldService) -> None:
    gw = stack.gateway(ws.url, enforce_live_guard=False)
    response = execute(gw, scaling_request(), submit=True)
    assert response.status_code == 200 and response.json()["submitted"] is True
    assert len(records(gw)) == 1


def test_run_id_replay_returns_the_stored_response_and_writes_once(gw: RunningGateway) -> None:
    first = execute(gw, scaling_request(run_id="run-7"), headers=LIVE, submit=True)
    second = execute(gw, scaling_request(run_id="run-7"), headers=LIVE, submit=True)
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.json() == first.json()
    assert len(records(gw)) == 1
    assert gw.metric("rebalance_batches_submitted_total", world_id="w1", scope="per_world") == 1


def test_a_submitted_run_replays_from_the_commit_log_while_the_worldservice_is_down(
        stack: Stack, ws: RunningWorldService, gw: RunningGateway) -> None:
    first = execute(gw, scaling_request(run_id="run-9"), headers=LIVE, submit=True)
    assert first.status_code == 200
    stack.stop(ws)

    replay = execute(gw, scaling_request(run_id="run-9"), headers=LIVE, submit=True)
    conflict = execute(gw, scaling_request(run_id="run-9", min_trade_notional=1.0),
                       headers=LIVE, submit=True)
    fresh = execute(gw, scaling_request(run_id="run-10"), headers=LIVE, submit=True)

    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert conflict.status_code == 409
    assert conflict.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"
    # A run the log has not seen still needs the WorldService's plan.
    assert fresh.status_code == 503
    assert fresh.json()["detail"]["code"] == "E_WORLDSERVICE_UNAVAILABLE"
    assert len(records(gw)) == 1


@pytest.mark.parametrize(
    ("body", "flags"),
    [
        (scaling_request(run_id="run-8", min_trade_notional=1.0), {}),
        (scaling_request(run_id="run-8"), {"per_strategy": True}),
    ],
)
def test_run_id_with_another_body_or_scope_is_409(gw: RunningGateway, body: dict[str, Any],
                                                 flags: dict[str, bool]) -> None:
    assert execute(gw, scaling_request(run_id="run-8"), headers=LIVE,
                   submit=True).status_code == 200
    response = execute(gw, body, headers=LIVE, submit=True, **flags)
    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "E_RUN_ID_CONFLICT"
    assert len(records(gw)) == 1


# -- per strategy ------------------------------------------------------------------------


def test_per_strategy_attribution_survives_a_dust_split(gw: RunningGateway) -> None:
    """w1 holds s1 0.6, s2 0.9 and s3 0.001 BTC @ 60000 and scales by 2/3.

    World delta D = (2/3 - 1) * 1.501 = -0.500333… BTC. Each strategy trades its own move:
    s1 = 0.6 * (2/3 - 1) = -0.2, s2 = 0.9 * (-1/3) = -0.3, s3 = 0.001 * (-1/3) = -0.000333…
    (notional 20 < min_trade_notional 50: dust, dropped). s1 and s2 keep their own moves.
    """
    body = scaling_request(min_trade_notional=50.0)
    body["positions"].append({"world_id": "w1", "strategy_id": "s3", "symbol": "BTCUSDT",
                              "qty": 0.001, "mark": 60000.0, "venue": "binance"})
    response = execute(gw, body, headers=LIVE, submit=True, per_strategy=True)
    assert response.status_code == 200, response.text
    result = response.json()
    per_strategy = result["orders_per_strategy"]["w1"]
    quantities = {s: [o["quantity"] for o in orders] for s, orders in per_strategy.items()}
    assert quantities["s1"] == [pytest.approx(-0.2, abs=1e-12)]
    assert quantities["s2"] == [pytest.approx(-0.3, abs=1e-12)]
    assert quantities.get("s3", []) == []
    assert result["orders_per_world"]["w1"][0]["quantity"] == pytest.approx(-1.501 / 3)
    # Submitted scope is per_strategy: one batch per (world, strategy) with orders.
    batches = {(r.payload["world_id"], r.payload["strategy_id"]): r.payload for r in records(gw)}
    assert set(batches) == {("w1", "s1"), ("w1", "s2")}
    assert all(p["scope"] == "per_strategy" for p in batches.values())
    assert batches[("w1", "s1")]["orders"] == per_strategy["s1"]
    ids = [o["client_order_id"] for orders in per_strategy.values() for o in orders]
    ids += [o["client_order_id"] for o in result["orders_per_world"]["w1"]]
    assert len(ids) == len(set(ids))


def test_per_strategy_orders_go_to_the_strategy_that_moved(gw: RunningGateway) -> None:
    """Two strategies hold 10 BTC each @ 50000 (0.05 of 10M equity each); s1 doubles
    (0.05 -> 0.10), s2 stays (0.05 -> 0.05): gs = 2 and 1. World delta = +10 BTC.
    s1 buys its own +10; s2 gets nothing (a pro-rata split would have given +5 / +5);
    crossed_qty = (10 + 0 - 10) / 2 = 0."""
    body = {
        "total_equity": 10_000_000.0,
        "world_alloc_before": {"w1": 0.1}, "world_alloc_after": {"w1": 0.15},
        "strategy_alloc_before_total": {"w1": {"s1": 0.05, "s2": 0.05}},
        "strategy_alloc_after_total": {"w1": {"s1": 0.10, "s2": 0.05}},
        "positions": [
            {"world_id": "w1", "strategy_id": s, "symbol": "BTCUSDT", "qty": 10.0,
             "mark": 50_000.0, "venue": "binance"} for s in ("s1", "s2")
        ],
    }
    response = execute(gw, body, per_strategy=True)
    assert response.status_code == 200, response.text
    result = response.json()
    [world_order] = result["orders_per_world"]["w1"]
    assert (world_order["side"], world_order["quantity"]) == ("buy", 10.0)
    per_strategy = result["orders_per_strategy"]["w1"]
    assert set(per_strategy) == {"s1", "s2"}
    [s1_order] = per_strategy["s1"]
    assert (s1_order["symbol"], s1_order["side"], s1_order["quantity"]) == ("BTCUSDT", "buy", 10.0)
    assert "reduce_only" not in s1_order  # a buy within a long opens
    assert per_strategy["s2"] == []
    assert result["crossed_qty"] == {
        "w1": [{"symbol": "BTCUSDT", "venue": "binance", "crossed_qty": 0.0}]
    }
    # Without per_strategy the response has neither key.
    plain = execute(gw, body).json()
    assert "orders_per_strategy" not in plain and "crossed_qty" not in plain


# -- shared account ----------------------------------------------------------------------


def shared_gateway(stack: Stack, ws: RunningWorldService, **limits: float) -> RunningGateway:
    return stack.gateway(ws.url, shared_account_policy={"enabled": True, **limits})


def test_shared_account_nets_globally_and_reports_figures(stack: Stack,
                                                         ws: RunningWorldService) -> None:
    """Figures by hand: global delta -0.5 BTC @ 60000 -> gross 30000, net -30000.
    Post-trade gross = |1.0 * 60000| + |10 * 3000| = 90000 -> headroom 1 - 90000/1e6 = 0.91."""
    gw = shared_gateway(stack, ws, max_gross_notional=30000.0, max_net_notional=30000.0,
                        min_margin_headroom=0.91)
    response = execute(gw, scaling_request(), headers=LIVE, shared_account=True, submit=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(o["symbol"], o["quantity"]) for o in body["orders_global"]] == [("BTCUSDT", -0.5)]
    assert body["shared_account"] == pytest.approx(
        {"gross_notional": 30000.0, "net_notional": -30000.0, "margin_headroom": 0.91})
    [record] = records(gw)
    assert record.payload["scope"] == "global" and record.payload["world_id"] == "*"
    assert gw.metric("rebalance_batches_submitted_total", world_id="*", scope="global") == 1


@pytest.mark.parametrize(
    ("limits", "violations"),
    [
        ({"max_gross_notional": 29999.0}, ["max_gross_notional"]),
        ({"max_net_notional": 10000.0}, ["max_net_notional"]),
        ({"min_margin_headroom": 0.95}, ["min_margin_headroom"]),
        ({"max_gross_notional": 1.0, "min_margin_headroom": 0.95},
         ["max_gross_notional", "min_margin_headroom"]),
    ],
)
def test_shared_account_limits_give_422_with_figures_under_context(
    stack: Stack, ws: RunningWorldService, limits: dict[str, float], violations: list[str],
) -> None:
    gw = shared_gateway(stack, ws, **limits)
    response = execute(gw, scaling_request(), headers=LIVE, shared_account=True, submit=True)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "E_SHARED_ACCOUNT_POLICY"
    context = detail["context"]
    assert context["violations"] == violations
    assert context["figures"] == pytest.approx(
        {"gross_notional": 30000.0, "net_notional": -30000.0, "margin_headroom": 0.91})
    for key, value in limits.items():
        assert context["limits"][key] == value
    assert records(gw) == []


# -- overlay -----------------------------------------------------------------------------


def test_overlay_orders_come_from_overlay_deltas(gw: RunningGateway) -> None:
    response = execute(gw, overlay_request())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["overlay_deltas"] == [{"symbol": "IDX", "delta_qty": 5.0, "world_id": "w1"}]
    [order] = body["orders_per_world"]["w1"]
    assert (order["symbol"], order["quantity"], order["side"]) == ("IDX", 5.0, "buy")
    assert "reduce_only" not in order  # buying an instrument nobody holds reduces nothing


def test_overlay_with_per_strategy_and_shared_account(stack: Stack,
                                                      ws: RunningWorldService) -> None:
    gw = shared_gateway(stack, ws)
    response = execute(gw, overlay_request(), per_strategy=True, shared_account=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(o["symbol"], o["quantity"]) for o in body["orders_global"]] == [("IDX", 5.0)]
    assert body["orders_per_strategy"]["w1"]["s1"][0]["quantity"] == 5.0
    # Figures by hand: gross = net = 5 * 10 = 50; post-trade gross = 100 + 50 = 150;
    # headroom = 1 - 150 / 1000 = 0.85.
    assert body["shared_account"] == pytest.approx(
        {"gross_notional": 50.0, "net_notional": 50.0, "margin_headroom": 0.85})


# -- venue policies ----------------------------------------------------------------------


def test_venue_policies_shape_the_orders(stack: Stack, ws: RunningWorldService) -> None:
    gw = stack.gateway(ws.url, venue_policies={
        "binance": {"lot_size": 0.3, "requires_ioc": True, "supports_reduce_only": False}})
    [order] = execute(gw, scaling_request()).json()["orders_per_world"]["w1"]
    # -0.5 rounded toward zero to a 0.3 lot is -0.3; IOC; no reduce_only flag at all.
    assert order["quantity"] == pytest.approx(-0.3)
    assert order["time_in_force"] == "IOC"
    assert "reduce_only" not in order
    gw2 = stack.gateway(ws.url, default_venue_policy={"min_notional": 40000.0})
    # |-0.5 * 60000| = 30000 < 40000: dropped by the venue's min notional.
    assert execute(gw2, scaling_request()).json()["orders_per_world"]["w1"] == []


def test_overlay_without_a_price_is_the_worldservice_422(gw: RunningGateway) -> None:
    body = overlay_request(overlay={"instrument_by_world": {"w1": "IDX"}, "price_by_symbol": {}})
    response = execute(gw, body)
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "E_OVERLAY_CONFIG_INVALID"


def misbehaving_worldservice() -> FastAPI:
    """Answers every plan with an overlay delta on an instrument no world is mapped to."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "schema_versions": [1]}

    @app.post("/rebalancing/plan")
    async def plan() -> dict[str, Any]:
        return {"schema_version": 1, "global_deltas": [],
                "per_world": {"w1": {"world_id": "w1", "scale_world": 1.5, "deltas": []}},
                "overlay_deltas": [{"world_id": "w1", "symbol": "OTHER", "delta_qty": 5.0}]}

    return app


def test_overlay_delta_on_an_unmapped_instrument_is_422(stack: Stack) -> None:
    ws = stack.loop.serve(misbehaving_worldservice())
    gw = stack.gateway(ws.url)
    response = execute(gw, overlay_request())
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "E_OVERLAY_EXECUTION_UNMAPPED"
    assert (detail["symbol"], detail["world_id"]) == ("OTHER", "w1")

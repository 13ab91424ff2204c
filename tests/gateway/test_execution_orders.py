"""Order building of an execute call (SPEC 4), in process: ``build_execution`` is a pure
function of the request and the served plan, so no server is needed here (the HTTP path is
covered by ``test_execute.py``)."""

from __future__ import annotations

from typing import Any

from qmtl.contracts import ExecuteResponse, MultiWorldRebalanceRequest, MultiWorldRebalanceResponse
from qmtl.engine import OrderDict, VenuePolicy, plan_rebalance
from qmtl.gateway.config import SharedAccountPolicy
from qmtl.gateway.execution import ExecutionOrders, OrderPolicies, build_execution, response_body


def position(strategy: str, qty: float, mark: float = 100.0, symbol: str = "BTC"
             ) -> dict[str, Any]:
    return {"world_id": "w1", "strategy_id": strategy, "symbol": symbol, "qty": qty,
            "mark": mark}


def run(request: MultiWorldRebalanceRequest, plan: MultiWorldRebalanceResponse | None = None,
        *, per_strategy: bool = True, policy: VenuePolicy | None = None) -> ExecutionOrders:
    return build_execution(
        request, plan if plan is not None else plan_rebalance(request),
        per_strategy=per_strategy, shared_account=False,
        policies=OrderPolicies(venues={}, default=policy or VenuePolicy()),
        shared_policy=SharedAccountPolicy(), id_base="run-1")


def shape(orders: list[OrderDict]) -> list[tuple[float, bool | None]]:
    return [(o["quantity"], o.get("reduce_only")) for o in orders]


def test_reduce_only_is_judged_against_each_holders_own_position() -> None:
    """w1 at BTC: s1 long 10, s2 short -2 (world +8). s1 is liquidated (gs 0.0 / 0.1 = 0),
    s2 triples (0.3 / 0.1 = 3): own moves s1 -10, s2 -2 * 2 = -4; world delta -14.

    * s1 sells its whole long: reduce-only.
    * s2 extends its short: not reduce-only (a buy would have been).
    * the world sells 14 against its +8: split into -8 reduce-only and -6 opening.
    """
    request = MultiWorldRebalanceRequest.model_validate({
        "total_equity": 1000.0,
        "world_alloc_before": {"w1": 0.2}, "world_alloc_after": {"w1": 0.3},
        "strategy_alloc_before_total": {"w1": {"s1": 0.1, "s2": 0.1}},
        "strategy_alloc_after_total": {"w1": {"s1": 0.0, "s2": 0.3}},
        "positions": [position("s1", 10.0), position("s2", -2.0)],
    })
    orders = run(request)
    assert shape(orders.per_world["w1"]) == [(-8.0, True), (-6.0, None)]
    assert orders.per_strategy is not None
    assert shape(orders.per_strategy["w1"]["s1"]) == [(-10.0, True)]
    assert shape(orders.per_strategy["w1"]["s2"]) == [(-4.0, None)]
    ids = [o["client_order_id"] for o in orders.per_world["w1"]]
    ids += [o["client_order_id"] for by_s in orders.per_strategy["w1"].values() for o in by_s]
    assert len(set(ids)) == 4
    assert [o["client_order_id"] for o in run(request).per_world["w1"]] == ids[:2]
    # Both strategies sell: nothing netted away.
    assert orders.crossed is not None
    assert orders.crossed == {"w1": [{"symbol": "BTC", "crossed_qty": 0.0}]}
    # A venue without reduce-only support: one world order, no flag anywhere.
    plain = run(request, policy=VenuePolicy(supports_reduce_only=False))
    assert shape(plain.per_world["w1"]) == [(-14.0, None)]
    assert plain.per_strategy is not None
    assert shape(plain.per_strategy["w1"]["s1"]) == [(-10.0, None)]


def noisy(plan: MultiWorldRebalanceResponse, qty: float) -> MultiWorldRebalanceResponse:
    """The same plan as another WorldService might answer it (one delta's float noise)."""
    world = plan.per_world["w1"]
    [delta] = world.deltas
    changed = world.model_copy(update={"deltas": [delta.model_copy(update={"delta_qty": qty})]})
    return plan.model_copy(update={"per_world": {"w1": changed}})


def test_received_deltas_are_normalised_before_orders_and_ids() -> None:
    # w1 liquidated (gw 0) holding 10 BTC: delta -10.0; another WorldService: -9.999999999999998.
    request = MultiWorldRebalanceRequest.model_validate({
        "total_equity": 1000.0, "world_alloc_before": {"w1": 0.5}, "world_alloc_after": {},
        "positions": [position("s1", 10.0)],
    })
    plan = plan_rebalance(request)
    assert plan.per_world["w1"].deltas[0].delta_qty == -10.0
    exact = run(request, plan, per_strategy=False).per_world["w1"]
    other = run(request, noisy(plan, -9.999999999999998), per_strategy=False).per_world["w1"]
    assert other == exact
    assert exact[0]["quantity"] == -10.0 and exact[0]["reduce_only"] is True

    # With a request lot (0.001): 0.30000000000000004 snaps to the lot multiple 0.3.
    lots = MultiWorldRebalanceRequest.model_validate({
        "total_equity": 1000.0, "world_alloc_before": {"w1": 0.5},
        "world_alloc_after": {"w1": 0.65}, "lot_size_by_symbol": {"BTC": 0.001},
        "positions": [position("s1", 1.0)],
    })
    plan = plan_rebalance(lots)
    assert plan.per_world["w1"].deltas[0].delta_qty == 0.3
    exact = run(lots, plan, per_strategy=False).per_world["w1"]
    other = run(lots, noisy(plan, 0.30000000000000004), per_strategy=False).per_world["w1"]
    assert other == exact
    assert exact[0]["quantity"] == 0.3


def test_the_response_body_is_what_the_model_would_serialise() -> None:
    """Orders are inserted into the response unvalidated (speed); validating the body with
    the wire model and dumping it again must give exactly the same data."""
    request = MultiWorldRebalanceRequest.model_validate({
        "total_equity": 1000.0,
        "world_alloc_before": {"w1": 0.2}, "world_alloc_after": {"w1": 0.3},
        "strategy_alloc_before_total": {"w1": {"s1": 0.1, "s2": 0.1}},
        "strategy_alloc_after_total": {"w1": {"s1": 0.0, "s2": 0.3}},
        "positions": [position("s1", 10.0), {**position("s2", -2.0), "venue": "v"}],
    })
    head = ExecuteResponse(orders_per_world={}, submitted=False, run_id="r1",
                           rebalance_schema_version=2, alpha_metrics_capable=False)
    body = response_body(head, run(request))
    assert list(body) == ["orders_per_world", "orders_per_strategy", "crossed_qty",
                          "submitted", "batch_ids", "run_id", "rebalance_schema_version",
                          "alpha_metrics_capable"]
    assert ExecuteResponse.model_validate(body).model_dump(mode="json") == body


def test_a_short_strategy_in_a_growing_world_sells_and_is_not_reduce_only() -> None:
    """The issue's case: world x1.2 (0.5 -> 0.6); s1 long 10, s2 short -4 BTC.
    s2's own move is -4 * 0.2 = -0.8: a sell extending its short (not a +0.343 buy marked
    reduce-only). s1 buys 10 * 0.2 = +2. World: +1.2 on a +6 position (opens, no flag);
    crossed = (2 + 0.8 - 1.2) / 2 = 0.8."""
    request = MultiWorldRebalanceRequest.model_validate({
        "total_equity": 1000.0, "world_alloc_before": {"w1": 0.5},
        "world_alloc_after": {"w1": 0.6},
        "positions": [position("s1", 10.0), position("s2", -4.0)],
    })
    orders = run(request)
    assert orders.per_strategy is not None
    assert [(o["side"], o["quantity"], o.get("reduce_only"))
            for o in orders.per_strategy["w1"]["s2"]] == [("sell", -0.8, None)]
    assert shape(orders.per_strategy["w1"]["s1"]) == [(2.0, None)]
    assert shape(orders.per_world["w1"]) == [(1.2, None)]
    assert orders.crossed == {"w1": [{"symbol": "BTC", "crossed_qty": 0.8}]}


def test_extreme_floats_give_finite_orders_in_every_scope() -> None:
    """Issue #10 item 3: tests/e2e/_hostile.py random mix #19 (seed 0) answered 500
    (``q * p`` and ``q * mark`` overflowed in the order builder). w3 is liquidated: a sells
    back its -FLOAT_MAX short (a buy of FLOAT_MAX, reduce-only: it closes the short exactly);
    the notional FLOAT_MAX x 1e-320 = 1.8e-12 is above the 1e-320 venue minimum."""
    request = MultiWorldRebalanceRequest.model_validate({
        "total_equity": 1e-320,
        "world_alloc_after": {"w1": 1e-320, "w2": 0.1, "w3": 0.0},
        "positions": [
            {"world_id": "w3", "strategy_id": "a", "symbol": "A", "qty": -1.7976931348623157e308,
             "mark": 1e-320, "venue": "v"},
            {"world_id": "w2", "strategy_id": "b", "symbol": "B", "qty": 5e-324, "mark": 1e308,
             "venue": "v"},
            {"world_id": "w3", "strategy_id": "b", "symbol": "B", "qty": 1e-154, "mark": 1e-300,
             "venue": "v"},
            {"world_id": "w2", "strategy_id": "a", "symbol": "A", "qty": -5e-324,
             "mark": 5e-324, "venue": "v"},
            {"world_id": "w3", "strategy_id": "a", "symbol": "A", "qty": 1e-320, "mark": 0.001},
        ],
        "lot_size_by_symbol": {"A": 1e-300, "B": 1e300, "ES": 1e-300},
        "min_trade_notional": 1e-320,
        "strategy_alloc_before_total": {"w1": {"a": 0.1}},
    })
    for per_strategy in (False, True):
        orders = run(request, per_strategy=per_strategy, policy=VenuePolicy(min_notional=1e-320))
        assert shape(orders.per_world["w3"]) == [(1.7976931348623157e308, True)]
        assert orders.per_world["w1"] == orders.per_world["w2"] == []
    assert orders.per_strategy is not None
    assert shape(orders.per_strategy["w3"]["a"]) == [(1.7976931348623157e308, True)]
    assert orders.per_strategy["w3"]["b"] == []
    assert orders.crossed == {"w1": [], "w2": [], "w3": [{"symbol": "A", "venue": "v",
                                                          "crossed_qty": 0.0}]}

"""Extreme floats through the real HTTP app (SPEC 6): each request is planned with finite
figures or answered 422 naming the field — never a 500, never NaN/inf in a response.

The base book (``tests._books.TWO_WORLD_BOOK``) moves BTCUSDT by -0.5 in w1 (0.3 -> 0.2)
and ETHUSDT by +5 in w2 (0.2 -> 0.3); the planned cases below keep those figures unless
they say otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import body, make_settings, running

SUBNORMAL_MIN = 5e-324
FLOAT_MAX = 1.7976931348623157e308


def _position(index: int, **changes: Any) -> dict[str, Any]:
    request = body()
    request["positions"][index].update(changes)
    return request


def _overlay(price: float, **extra: Any) -> dict[str, Any]:
    overlay = {"instrument_by_world": {"w1": "ES", "w2": "ES"}, "price_by_symbol": {"ES": price}}
    return body(mode="overlay", overlay=overlay, **extra)


def _refuse_non_finite(constant: str) -> float:
    raise AssertionError(f"non-finite number {constant} in a response")


def _decode(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_refuse_non_finite)


def _global(plan: dict[str, Any]) -> dict[str, float]:
    return {d["symbol"]: d["delta_qty"] for d in plan["global_deltas"]}


BASE_GLOBAL = {"BTCUSDT": -0.5, "ETHUSDT": 5.0}

PLANNED: list[tuple[str, dict[str, Any], dict[str, float]]] = [
    # A lot so small that |delta| / lot overflows: the quantity stays off the lot grid
    # (today's -inf / 500 E_INTERNAL).
    ("lot 1e-320", body(lot_size_by_symbol={"BTCUSDT": 1e-320}), BASE_GLOBAL),
    (
        "lot subnormal min",
        body(lot_size_by_symbol={"BTCUSDT": SUBNORMAL_MIN, "ETHUSDT": SUBNORMAL_MIN}),
        BASE_GLOBAL,
    ),
    ("lot float max", body(lot_size_by_symbol={"BTCUSDT": FLOAT_MAX}), {"ETHUSDT": 5.0}),
    # total_equity only enters derived strategy ratios; the moves are the same.
    ("equity subnormal", body(total_equity=SUBNORMAL_MIN), BASE_GLOBAL),
    ("equity 1e308", body(total_equity=1e308), BASE_GLOBAL),
    ("equity float max", body(total_equity=FLOAT_MAX), BASE_GLOBAL),
    ("qty subnormal", _position(0, qty=SUBNORMAL_MIN), {"BTCUSDT": -0.3, "ETHUSDT": 5.0}),
    ("mark subnormal", _position(0, mark=SUBNORMAL_MIN), BASE_GLOBAL),
    ("mark 1e308", _position(0, mark=1e308), BASE_GLOBAL),
    ("min notional subnormal", body(min_trade_notional=SUBNORMAL_MIN), BASE_GLOBAL),
    ("min notional float max", body(min_trade_notional=FLOAT_MAX), {}),
    # w1 0.3 -> 5e-324 scales by a subnormal: gw - 1 == -1, the world is sold out (-1.5).
    (
        "after ratio subnormal",
        body(world_alloc_after={"w1": SUBNORMAL_MIN, "w2": 0.3}),
        {"BTCUSDT": -1.5, "ETHUSDT": 5.0},
    ),
    ("overlay price 1e308", _overlay(1e308), {}),
]


@pytest.mark.parametrize(
    ("name", "request_body", "expected"), PLANNED, ids=[case[0] for case in PLANNED]
)
async def test_extreme_floats_are_planned_with_finite_figures(
    sqlite_dsn: str, name: str, request_body: dict[str, Any], expected: dict[str, float]
) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        plan = await ws.client.post("/rebalancing/plan", json=request_body)
        apply = await ws.client.post("/rebalancing/apply", json=request_body)
    assert plan.status_code == 200, plan.text
    assert apply.status_code == 200, apply.text
    planned = _decode(plan.content)
    _decode(apply.content)
    assert _global(planned) == pytest.approx(expected, rel=1e-12)


# qty x mark of the first position (BTCUSDT, mark 60000) overflows; so does 1e200 x 1e200.
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("qty times mark overflows", _position(0, qty=1e308), "positions[0]"),
    ("qty 1e200 mark 1e200", _position(1, qty=1e200, mark=1e200), "positions[1]"),
    ("short qty times mark overflows", _position(2, qty=-FLOAT_MAX, mark=2.0), "positions[2]"),
    # Two halves of the float range at one key: the summed |qty| overflows although each
    # notional is small (mark 1e-10); a silent "noise" cancel would drop the trade.
    (
        "summed qty overflows",
        body(
            positions=[
                {"world_id": "w1", "strategy_id": "s1", "symbol": "X", "qty": 1e308, "mark": 1e-10},
                {"world_id": "w1", "strategy_id": "s2", "symbol": "X", "qty": 1e308, "mark": 1e-10},
            ]
        ),
        "positions",
    ),
    (
        "before ratio subnormal: A/B overflows",
        body(world_alloc_before={"w1": SUBNORMAL_MIN, "w2": 0.2}),
        "world_alloc_before.w1",
    ),
    (
        "strategy after / before overflows",
        body(
            strategy_alloc_before_total={"w1": {"s1": SUBNORMAL_MIN}},
            strategy_alloc_after_total={"w1": {"s1": 0.5}},
        ),
        "strategy_alloc_after_total.w1.s1",
    ),
    # The derived before ratio n_s / total_equity overflows where an explicit after ratio
    # needs it as a divisor.
    (
        "equity subnormal with explicit after",
        body(total_equity=SUBNORMAL_MIN, strategy_alloc_after_total={"w1": {"s1": 0.1}}),
        "total_equity",
    ),
    ("overlay price subnormal", _overlay(SUBNORMAL_MIN), "overlay.price_by_symbol.ES"),
]


@pytest.mark.parametrize(
    ("name", "request_body", "field"), REFUSED, ids=[case[0] for case in REFUSED]
)
async def test_overflowing_figures_are_422_naming_the_field(
    sqlite_dsn: str, name: str, request_body: dict[str, Any], field: str
) -> None:
    async with running(make_settings(sqlite_dsn)) as ws:
        answers = [
            await ws.client.post(endpoint, json=request_body)
            for endpoint in ("/rebalancing/plan", "/rebalancing/apply")
        ]
        pending = (await ws.client.get("/health")).json()["outbox"]["pending"]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        detail = _decode(answer.content)["detail"]
        assert detail["code"] == "E_PLAN_INPUT_INVALID"
        assert detail["field"] == field
        assert field in detail["message"]
    assert pending == 0


async def test_a_number_beyond_the_float_range_is_422_list(sqlite_dsn: str) -> None:
    raw = json.dumps(body(total_equity=123.25)).replace("123.25", "1e999").encode()
    async with running(make_settings(sqlite_dsn)) as ws:
        answer = await ws.client.post(
            "/rebalancing/plan", content=raw, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 422
    assert ["body", "total_equity"] in [e["loc"] for e in answer.json()["detail"]]


def _tiny_equity_book(**changes: Any) -> dict[str, Any]:
    """The figures of a fuzz case that answered 500 ``internal error: RuntimeWarning``
    ("overflow encountered in divide") on /rebalancing/apply, with valid ids: a total equity
    of 8.7e-129, ratios of 1e-115, a quantity of 8.18e297 and marks 8.7e-129 / 8.67e307."""
    request: dict[str, Any] = {
        "total_equity": 8.7e-129,
        "world_alloc_before": {"w1": 1.5e-115, "w2": 1.5e-115},
        "world_alloc_after": {"w1": 3e-115},
        "positions": [
            {
                "world_id": "w1",
                "strategy_id": "s1",
                "symbol": "X",
                "qty": 8.18e297,
                "mark": 8.7e-129,
            },
            {"world_id": "w2", "strategy_id": "s2", "symbol": "Y", "qty": 1.0, "mark": 8.67e307},
        ],
    }
    request.update(changes)
    return request


async def test_a_tiny_total_equity_with_huge_quantities_is_applied_twice(sqlite_dsn: str) -> None:
    # Each derived strategy ratio (7.1e169 / 8.7e-129 and 8.67e307 / 8.7e-129) overflows;
    # without explicit after ratios it is never divided. w1 doubles (3e-115 / 1.5e-115):
    # X +8.18e297; w2 leaves the after map and is sold out: Y -1.
    first = _tiny_equity_book()
    # The second apply takes "before" from the store (w1 3e-115, w2 0): w1 halves, X
    # -4.09e297; w2 (before 0, not in the after map) is still sold out: Y -1.
    second = _tiny_equity_book(world_alloc_after={"w1": 1.5e-115})
    del second["world_alloc_before"]
    async with running(make_settings(sqlite_dsn)) as ws:
        plan = await ws.client.post("/rebalancing/plan", json=first)
        applied = await ws.client.post("/rebalancing/apply", json=first)
        again = await ws.client.post("/rebalancing/apply", json=second)
    for answer in (plan, applied, again):
        assert answer.status_code == 200, answer.text
    assert _global(_decode(plan.content)) == pytest.approx({"X": 8.18e297, "Y": -1.0}, rel=1e-12)
    assert _global(_decode(applied.content)) == _global(_decode(plan.content))
    assert _global(_decode(again.content)) == pytest.approx({"X": -4.09e297, "Y": -1.0}, rel=1e-12)


async def test_a_tiny_total_equity_whose_notional_overflows_is_422(sqlite_dsn: str) -> None:
    # 8.18e297 x 8.67e307 overflows: 422 naming the position, nothing applied.
    request = _tiny_equity_book()
    request["positions"][1]["qty"] = 8.18e297
    async with running(make_settings(sqlite_dsn)) as ws:
        answers = [
            await ws.client.post(endpoint, json=request)
            for endpoint in ("/rebalancing/plan", "/rebalancing/apply")
        ]
        pending = (await ws.client.get("/health")).json()["outbox"]["pending"]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert _decode(answer.content)["detail"]["field"] == "positions[1]"
    assert pending == 0

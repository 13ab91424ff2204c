"""Hostile request bodies (SPEC 6, issue #10 item 3): inputs schemathesis does not think of.

* extreme floats in every numeric field — subnormals, the float maximum, values whose
  products or sums overflow, ``1e999``, ``NaN``/``Infinity`` literals — and seeded random
  mixes of them;
* control characters (and over-long, blank, lone-surrogate ids) in every id field and map key;
* thousands of worlds in one body (past asyncpg's and SQLite's bind-parameter limits);
* deep nesting in ``rebalance_intent.meta``, in unknown fields and in place of fields;
* ``null`` in every optional field.

:func:`send_hostile` posts each body to each endpoint of a running service and records in a
:class:`~tests.e2e._fuzzing.FuzzReport` every answer that is a 5xx (other than the documented
501), a 4xx without a machine-readable code, or a 2xx whose JSON holds NaN/Infinity.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import requests

from tests._books import TWO_WORLD_BOOK
from tests.e2e._fuzzing import DOCUMENTED_5XX, FuzzReport, _excerpt, _has_code

__all__ = ["hostile_bodies", "send_hostile"]

Body = tuple[str, bytes]

SUBNORMAL_MIN = 5e-324
FLOAT_MAX = 1.7976931348623157e308
EXTREME_FLOATS: list[float] = [
    0.0,
    -0.0,
    SUBNORMAL_MIN,
    1e-320,
    2.2250738585072014e-308,
    1e-300,
    1e-154,
    1e154,
    1e200,
    1e300,
    1e308,
    FLOAT_MAX,
    -1e308,
    -FLOAT_MAX,
    -SUBNORMAL_MIN,
]
RAW_LITERALS = ["1e999", "-1e999", "NaN", "Infinity", "-Infinity"]
"""Spliced into the JSON text: not representable by ``json.dumps``."""
BAD_IDS = [
    "\x00",
    "w\x00x",
    "\x01",
    "w\n",
    "\tw",
    "w\x7f",
    "w\x85",
    "w\u2028",
    "w\u2029",
    " ",
    "\u3000",
    "",
    "x" * 257,
    "x" * 100_000,
]
_PLACEHOLDER = 0.123456789  # replaced by a raw literal in the text


def _book(**changes: Any) -> dict[str, Any]:
    book = copy.deepcopy(TWO_WORLD_BOOK)
    book.update(changes)
    return book


def _overlay_book(**changes: Any) -> dict[str, Any]:
    overlay = {
        "instrument_by_world": {"w1": "ES", "w2": "ES"},
        "price_by_symbol": {"ES": 5000.0},
        "min_order_notional": 1.0,
    }
    return _book(mode="overlay", overlay=overlay, **changes)


def _v2_book(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "schema_version": 2,
        "rebalance_intent": {"meta": {"ticket": "T-1"}},
        "alpha_series": {"per_world": {"w1": {"returns": [0.01, -0.02, 0.03]}}},
        "strategy_alloc_before_total": {"w1": {"s1": 0.1, "s2": 0.2}},
        "strategy_alloc_after_total": {"w1": {"s1": 0.05, "s2": 0.15}},
        "lot_size_by_symbol": {"BTCUSDT": 0.001, "ETHUSDT": 0.01},
        "min_trade_notional": 10.0,
    }
    return _book(**(fields | changes))


Setter = Callable[[dict[str, Any], Any], None]


def _at(*path: Any) -> Setter:
    def put(body: dict[str, Any], value: Any) -> None:
        node: Any = body
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return put


def _key(*path: Any, old: str) -> Setter:
    def put(body: dict[str, Any], value: Any) -> None:
        node: Any = body
        for part in path:
            node = node[part]
        node[value] = node.pop(old)

    return put


NUMBER_PLACES: dict[str, tuple[Callable[[], dict[str, Any]], Setter]] = {
    "total_equity": (_book, _at("total_equity")),
    "world_alloc_before.w1": (_book, _at("world_alloc_before", "w1")),
    "world_alloc_after.w2": (_book, _at("world_alloc_after", "w2")),
    "positions[0].qty": (_book, _at("positions", 0, "qty")),
    "positions[1].mark": (_book, _at("positions", 1, "mark")),
    "positions[2].qty": (_book, _at("positions", 2, "qty")),
    "min_trade_notional": (_v2_book, _at("min_trade_notional")),
    "lot_size_by_symbol.BTCUSDT": (_v2_book, _at("lot_size_by_symbol", "BTCUSDT")),
    "strategy_alloc_before_total.w1.s1": (_v2_book, _at("strategy_alloc_before_total", "w1", "s1")),
    "strategy_alloc_after_total.w1.s2": (_v2_book, _at("strategy_alloc_after_total", "w1", "s2")),
    "overlay.price_by_symbol.ES": (_overlay_book, _at("overlay", "price_by_symbol", "ES")),
    "overlay.min_order_notional": (_overlay_book, _at("overlay", "min_order_notional")),
    "alpha_series.per_world.w1.returns[1]": (
        _v2_book,
        _at("alpha_series", "per_world", "w1", "returns", 1),
    ),
    "rebalance_intent.meta.x": (_v2_book, _at("rebalance_intent", "meta", "x")),
    "unknown field": (_book, _at("not_a_field")),
}

ID_PLACES: dict[str, tuple[Callable[[], dict[str, Any]], Setter]] = {
    "positions[0].world_id": (_book, _at("positions", 0, "world_id")),
    "positions[1].strategy_id": (_book, _at("positions", 1, "strategy_id")),
    "positions[2].symbol": (_book, _at("positions", 2, "symbol")),
    "positions[0].venue": (_book, _at("positions", 0, "venue")),
    "run_id": (_book, _at("run_id")),
    "world_alloc_after key": (_book, _key("world_alloc_after", old="w1")),
    "world_alloc_before key": (_book, _key("world_alloc_before", old="w2")),
    "strategy_alloc_after_total key": (
        _v2_book,
        _key("strategy_alloc_after_total", "w1", old="s1"),
    ),
    "lot_size_by_symbol key": (_v2_book, _key("lot_size_by_symbol", old="BTCUSDT")),
    "overlay.instrument_by_world value": (
        _overlay_book,
        _at("overlay", "instrument_by_world", "w1"),
    ),
    "overlay.price_by_symbol key": (_overlay_book, _key("overlay", "price_by_symbol", old="ES")),
    "alpha_series.per_world key": (_v2_book, _key("alpha_series", "per_world", old="w1")),
}


def _encode(body: dict[str, Any], literal: str | None = None) -> bytes:
    text = json.dumps(body, ensure_ascii=False)
    if literal is not None:
        text = text.replace(repr(_PLACEHOLDER), literal)
    return text.encode("utf-8", "surrogatepass")


def _extreme_floats() -> Iterator[Body]:
    for place, (make, put) in NUMBER_PLACES.items():
        for value in EXTREME_FLOATS:
            body = make()
            put(body, value)
            yield f"{place}={value!r}", _encode(body)
        for literal in RAW_LITERALS:
            body = make()
            put(body, _PLACEHOLDER)
            yield f"{place}={literal}", _encode(body, literal)
    # Products and sums that overflow although every figure is finite.
    overflow = [
        ("qty x mark", [(1e200, 1e200)]),
        ("float max x 2", [(FLOAT_MAX, 2.0)]),
        ("short float max x 2", [(-FLOAT_MAX, 2.0)]),
        ("sum of two halves", [(1e308, 1e-10), (1e308, 1e-10)]),
        ("notionals sum", [(1e154, 1e154), (1e154, 1e154)]),
        ("far apart marks", [(0.02, 5.3e307), (2.4e16, 1.4e-45)]),
        ("subnormal everything", [(SUBNORMAL_MIN, SUBNORMAL_MIN)]),
    ]
    for name, rows in overflow:
        positions = [
            {"world_id": "w1", "strategy_id": f"s{i}", "symbol": "X", "qty": q, "mark": m}
            for i, (q, m) in enumerate(rows)
        ]
        for make in (_book, _v2_book, _overlay_book):
            yield f"overflow {name} ({make.__name__})", _encode(make(positions=positions))


def _random_mixes(rng: random.Random, count: int) -> Iterator[Body]:
    ratios = [0.0, SUBNORMAL_MIN, 1e-320, 1e-308, 1e-12, 0.1, 0.3, 0.5]
    positive = [v for v in EXTREME_FLOATS if v > 0] + [0.001, 1.5, 60000.0]

    def signed() -> float:
        value = rng.choice(positive + [0.0])
        return -value if rng.random() < 0.4 else value

    for n in range(count):
        worlds = ["w1", "w2", "w3"][: rng.randint(1, 3)]
        body: dict[str, Any] = {
            "total_equity": rng.choice(positive + [0.0]),
            "world_alloc_after": {w: rng.choice(ratios) for w in worlds},
            "positions": [
                {
                    "world_id": rng.choice(worlds),
                    "strategy_id": rng.choice("ab"),
                    "symbol": rng.choice(["A", "B", "ES"]),
                    "qty": signed(),
                    "mark": rng.choice(positive),
                    "venue": rng.choice([None, "v"]),
                }
                for _ in range(rng.randint(0, 6))
            ],
        }
        if rng.random() < 0.7:
            body["world_alloc_before"] = {w: rng.choice(ratios) for w in worlds}
        if rng.random() < 0.5:
            body["lot_size_by_symbol"] = {s: rng.choice(positive) for s in ("A", "B", "ES")}
        if rng.random() < 0.5:
            body["min_trade_notional"] = rng.choice(positive + [0.0])
        if rng.random() < 0.4:
            body["strategy_alloc_after_total"] = {worlds[0]: {"a": rng.choice(positive)}}
        if rng.random() < 0.3:
            body["strategy_alloc_before_total"] = {worlds[0]: {"a": rng.choice(ratios)}}
        if rng.random() < 0.3:
            body["mode"] = "overlay"
            body["overlay"] = {
                "instrument_by_world": {w: "ES" for w in worlds},
                "price_by_symbol": {"ES": rng.choice(positive)},
                "min_order_notional": rng.choice(positive + [0.0]),
            }
        if rng.random() < 0.3:
            body["schema_version"] = 2
        yield f"random mix #{n}", _encode(body)


def _control_characters() -> Iterator[Body]:
    for place, (make, put) in ID_PLACES.items():
        for bad in BAD_IDS:
            body = make()
            put(body, bad)
            yield f"{place}={_excerpt(bad, 12)!r}", _encode(body)
    # A lone surrogate escape and a raw invalid UTF-8 byte in an id.
    text = json.dumps(_book())
    yield "lone surrogate id", text.replace('"w1"', '"\\ud800"', 1).encode()
    yield "invalid UTF-8 id", text.replace('"w1"', '"w\xff"', 1).encode("latin-1")


def _many_worlds(count: int, *, positions: bool) -> dict[str, Any]:
    worlds = [f"world-{i:06d}" for i in range(count)]
    body: dict[str, Any] = {
        "total_equity": 1e6,
        "world_alloc_before": {w: 0.5 / count for w in worlds},
        "world_alloc_after": {w: 0.4 / count for w in worlds},
    }
    if positions:
        body["positions"] = [
            {"world_id": w, "strategy_id": "s", "symbol": "X", "qty": 1.0, "mark": 10.0}
            for w in worlds
        ]
    return body


def _thousands_of_worlds() -> Iterator[Body]:
    yield "7,000 worlds, no positions", _encode(_many_worlds(7_000, positions=False))
    yield "7,000 worlds with positions", _encode(_many_worlds(7_000, positions=True))
    yield (
        "20,000 worlds in strategy maps",
        _encode(_book(strategy_alloc_after_total={f"w{i}": {"s": 0.0} for i in range(20_000)})),
    )


def _nested(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _deep_nesting() -> Iterator[Body]:
    # The JSON parser refuses nesting past ~200 levels: a 422, never a RecursionError.
    for depth in (50, 150, 190, 250, 5_000, 100_000):
        deep = b"[" * depth + b"]" * depth
        meta = _encode(_v2_book()).replace(b'{"ticket": "T-1"}', b'{"deep": ' + deep + b"}")
        yield f"meta nested {depth}", meta
        yield (
            f"unknown field nested {depth}",
            _encode(_book()).rstrip(b"}") + (b', "zz": ' + deep + b"}"),
        )
    yield (
        "meta nested dicts and lists",
        _encode(_v2_book(rebalance_intent={"meta": {"deep": _nested(150)}})),
    )
    yield (
        "NaN deep in meta",
        _encode(_v2_book(rebalance_intent={"meta": {"deep": _nested(100, _PLACEHOLDER)}}), "NaN"),
    )
    yield "positions nested", _encode(_book(positions=_nested(100)))


def _nulls() -> Iterator[Body]:
    for make in (_book, _v2_book, _overlay_book):
        base = make()
        for key in list(base):
            yield f"{key}=null ({make.__name__})", _encode({**base, key: None})
    overlay = _overlay_book()
    for key in list(overlay["overlay"]):
        body = copy.deepcopy(overlay)
        body["overlay"][key] = None
        yield f"overlay.{key}=null", _encode(body)
    yield "meta=null", _encode(_v2_book(rebalance_intent={"meta": None}))


def hostile_bodies(*, seed: int = 0, random_mixes: int = 200) -> list[Body]:
    """Every hostile body, named; ``random_mixes`` seeded random extreme-float mixes."""
    return [
        *_extreme_floats(),
        *_random_mixes(random.Random(seed), random_mixes),
        *_control_characters(),
        *_deep_nesting(),
        *_nulls(),
        # Last: once applied, thousands of stored worlds make every later plan that reads
        # the stored "before" plan them all.
        *_thousands_of_worlds(),
    ]


def _non_finite(constant: str) -> Any:
    raise ValueError(f"{constant} in a response")


def send_hostile(
    service: str, base_url: str, bodies: list[Body], *, endpoints: list[str]
) -> FuzzReport:
    """POST every body to every endpoint; report 5xx, uncoded 4xx and non-finite 2xx."""
    report = FuzzReport(service=f"{service} (hostile bodies)")
    with requests.Session() as session:
        for endpoint in endpoints:
            for name, raw in bodies:
                label = f"POST {endpoint}"
                try:
                    response = session.post(
                        f"{base_url}{endpoint}",
                        data=raw,
                        timeout=120,
                        headers={"content-type": "application/json"},
                    )
                except requests.RequestException as exc:
                    report.fail(f"{label} no HTTP answer", f"{name}: {exc}")
                    continue
                report.cases += 1
                report.by_operation[label] += 1
                report.statuses[response.status_code] += 1
                _check(report, label, name, response)
    return report


def _check(report: FuzzReport, label: str, name: str, response: requests.Response) -> None:
    status = response.status_code
    try:
        body = json.loads(response.content, parse_constant=_non_finite)
    except ValueError as exc:
        report.fail(f"{label} -> {status} not finite JSON", f"{name}: {exc}")
        return
    detail = body.get("detail") if isinstance(body, dict) else None
    code = detail.get("code") if isinstance(detail, dict) else None
    if status >= 500 and DOCUMENTED_5XX.get(status) != code:
        report.fail(f"{label} -> {status} {code}", f"{name}: {_excerpt(response.text)}")
    elif status >= 400 and not _has_code(detail):
        report.fail(f"{label} -> {status} without a code", f"{name}: {_excerpt(response.text)}")

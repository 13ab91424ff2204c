"""The columnar wire path agrees with the pydantic path (qmtl.engine.columns).

Property: for random and mutated request documents, the fast reader accepts exactly what
``MultiWorldRebalanceRequest.model_validate_json`` accepts (it may only decline, never
accept more), and when it accepts, the planned document is the pydantic rendering's,
key order included. The service path (fast reader, pydantic fallback) yields the same 422
list as pydantic alone. 2 x 1,000 examples.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import anyio
import orjson
import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from qmtl.contracts import MultiWorldRebalanceRequest
from qmtl.contracts.errors import QmtlError
from qmtl.engine.columns import book_from_dicts, decode_request, plan_rebalance_data
from qmtl.worldservice.bodies import parse_body, parse_plan_body
from qmtl.worldservice.planning import (
    compute_plan,
    compute_plan_columns,
    render_json,
    served_response,
)

WORLDS = ["w1", "w2", "w3"]
IDS = st.sampled_from(["a", "b", "s1", "s2", "Ω", "x y", "BTC/USDT"])
WEIRD = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        1,
        2.5,
        -0.0,
        1e308,
        5e-324,
        "",
        " ",
        "\x00",
        "a\nb",
        "\u2028",
        "x" * 257,
        "x" * 256,
        "1",
        [],
        {},
        [1],
        {"a": 1},
        10**30,
        -(10**30),
        "NaN",
    ]
)
NUMBER = st.one_of(
    st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
)


@st.composite
def positions(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        row: dict[str, Any] = {
            "world_id": draw(st.sampled_from(WORLDS)),
            "strategy_id": draw(IDS),
            "symbol": draw(st.sampled_from(["BTC", "ETH", "SOL", "Ω"])),
            "qty": draw(NUMBER),
            "mark": draw(st.one_of(st.integers(1, 10**5), st.floats(0.01, 1e5, allow_nan=False))),
        }
        venue = draw(st.sampled_from(["absent", None, "binance", "cme"]))
        if venue != "absent":
            row["venue"] = venue
        if draw(st.booleans()):
            row["note"] = draw(st.sampled_from(["x", 1, None, [1, 2]]))
        rows.append(row)
    return rows


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    worlds = draw(st.lists(st.sampled_from(WORLDS), unique=True, min_size=1))
    share = 1 / (len(worlds) + 1)
    body: dict[str, Any] = {
        "total_equity": draw(st.sampled_from([0, 1_000_000, 2.5e7])),
        "world_alloc_before": {w: share for w in worlds},
        "world_alloc_after": {w: draw(st.sampled_from([0.0, share / 2, share])) for w in worlds},
        "positions": draw(positions()),
    }
    if draw(st.booleans()):
        body["min_trade_notional"] = draw(st.sampled_from([None, 0, 10.0, 1e4]))
    if draw(st.booleans()):
        body["lot_size_by_symbol"] = {"BTC": 0.001, "SOL": 1}
    if draw(st.booleans()):
        body["schema_version"] = draw(st.sampled_from([None, 1, 2]))
    if draw(st.booleans()):
        body["mode"] = draw(st.sampled_from(["scaling", "OVERLAY", None]))
        body["overlay"] = {
            "instrument_by_world": {w: "ES" for w in WORLDS},
            "price_by_symbol": {"ES": 5000.0},
        }
    if draw(st.booleans()):
        body["strategy_alloc_after_total"] = {worlds[0]: {"a": share / 2, "b": share / 4}}
    return body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    body = draw(requests())
    kind = draw(st.sampled_from(["row", "row_missing", "top", "text", "positions"]))
    rows = body["positions"]
    if kind in ("row", "row_missing") and rows:
        row = rows[draw(st.integers(0, len(rows) - 1))]
        field = draw(st.sampled_from(["world_id", "strategy_id", "symbol", "qty", "mark", "venue"]))
        if kind == "row":
            row[field] = draw(WEIRD)
        else:
            row.pop(field, None)
    elif kind == "top":
        body[
            draw(
                st.sampled_from(
                    [
                        "total_equity",
                        "world_alloc_after",
                        "mode",
                        "run_id",
                        "schema_version",
                        "overlay",
                    ]
                )
            )
        ] = draw(WEIRD)
    elif kind == "positions":
        body["positions"] = draw(st.sampled_from([None, {}, "x", [None], [[1, 2]], 3]))
    raw = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if kind == "text" and rows:
        # Duplicate keys and non-finite literals are only expressible in the text.
        choice = draw(
            st.sampled_from(
                [
                    '"qty": 7, "qty"',
                    '"mark": NaN, "mark"',
                    '"qty": 1e999, "qty"',
                    '"symbol": "Z", "symbol"',
                ]
            )
        )
        field = choice.split('"')[1]
        raw = raw.replace(f'"{field}"', choice, 1)
    return raw.encode()


def _slow(raw: bytes) -> MultiWorldRebalanceRequest | None:
    try:
        return MultiWorldRebalanceRequest.model_validate_json(raw)
    except ValidationError:
        return None


def _pydantic_rendering(request: MultiWorldRebalanceRequest, version: int) -> bytes:
    """The oracle: the plan as pydantic models, rendered by pydantic (before issue 11)."""
    return render_json(served_response(request, version=version, periods_per_year=252), version)


def _outcome(compute: Any) -> Any:
    try:
        encoded = compute()
        return ("ok", orjson.loads(encoded if isinstance(encoded, bytes) else encoded[1]))
    except (QmtlError, RequestValidationError) as exc:
        return ("error", type(exc).__name__, str(exc))


def _check_data(raw: bytes) -> None:
    """The Python API from plain data: accepts what ``model_validate`` accepts, and plans
    the document the service would serve at the requested version."""
    try:
        data = json.loads(raw)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    try:
        slow = MultiWorldRebalanceRequest.model_validate(data)
    except ValidationError:
        with pytest.raises(ValidationError):
            plan_rebalance_data(data)
        return
    expected = _outcome(partial(_pydantic_rendering, slow, min(slow.requested_version, 2)))
    got = _outcome(lambda: orjson.dumps(plan_rebalance_data(data)))
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert json.dumps(got[1]) == json.dumps(expected[1])


def _check(raw: bytes) -> None:
    _check_data(raw)
    slow = _slow(raw)
    fast = decode_request(raw)
    if fast is None:
        # Declining is always safe; a valid document is only declined for a literal beyond
        # float64 (msgspec refuses 1e999 even when a duplicate key overrides it) or
        # NaN/Infinity (which the service refuses later, not pydantic).
        assert slow is None or any(t in raw for t in (b"NaN", b"Infinity", b"e999")), raw
        return
    assert slow is not None, raw  # the fast reader never accepts what pydantic refuses
    assert fast.request == slow.model_copy(update={"positions": []})
    for version in (1, 2):
        expected = _outcome(partial(_pydantic_rendering, slow, version))
        got = _outcome(
            partial(
                compute_plan_columns, fast.request, fast.book, version=version, periods_per_year=252
            )
        )
        assert got == expected
        if got[0] == "ok":  # key order too, at every level that has more than one key
            assert json.dumps(got[1]) == json.dumps(expected[1])
        # The service's object path (apply, and plan bodies the fast reader declined)
        # renders from columns too: the same document.
        assert (
            _outcome(
                partial(compute_plan, slow, version=version, periods_per_year=252, with_body=False)
            )
            == expected
        )
    positions = json.loads(raw).get("positions") or []
    from_dicts = book_from_dicts(positions)
    assert from_dicts is not None
    assert from_dicts.keys == fast.book.keys and from_dicts.worlds == fast.book.worlds
    assert (from_dicts.qty == fast.book.qty).all() and (from_dicts.key == fast.book.key).all()


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(requests())
def test_random_requests_agree(body: dict[str, Any]) -> None:
    _check(json.dumps(body).encode())


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_mutated_requests_agree(raw: bytes) -> None:
    _check(raw)


def _errors(parse: Any, raw: bytes) -> Any:
    async def run() -> Any:
        try:
            await parse(raw)
        except RequestValidationError as exc:
            return exc.errors()
        return None

    return anyio.run(run)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_service_path_422_list_is_pydantics(raw: bytes) -> None:
    expected = _errors(lambda r: parse_body(r, MultiWorldRebalanceRequest), raw)
    assert _errors(parse_plan_body, raw) == expected


@pytest.mark.parametrize("literal", [b"1e999", b"-1e999", b"NaN", b"Infinity"])
def test_non_finite_rows_fall_back(literal: bytes) -> None:
    body = {
        "total_equity": 1,
        "world_alloc_after": {"w": 0.5},
        "positions": [{"world_id": "w", "strategy_id": "s", "symbol": "X", "qty": 1, "mark": 1}],
    }
    raw = json.dumps(body).encode().replace(b'"qty": 1', b'"qty": ' + literal)
    assert decode_request(raw) is None
    assert _errors(parse_plan_body, raw)[0]["loc"] == ["body", "positions", 0, "qty"]

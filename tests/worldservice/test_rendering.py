"""Unit tests of pure helpers: the fast JSON rendering equals ``render_response``; the GC
pause nests; ``If-Match`` parsing; appending fields to encoded JSON."""

from __future__ import annotations

import json

import pytest

from qmtl.contracts import MultiWorldRebalanceRequest, render_response
from qmtl.worldservice.apply import with_fields
from qmtl.worldservice.etags import etag_header, if_match_allows
from qmtl.worldservice.planning import compute_plan, render_json, served_response

from .conftest import body

OVERLAY = {"instrument_by_world": {"w1": "ES", "w2": "NQ"},
           "price_by_symbol": {"ES": 5000.0, "NQ": 20000.0}}


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("changes", [
    {},
    {"mode": "overlay", "overlay": OVERLAY},
    {"rebalance_intent": {"meta": {"ticket": "X", "nested": {"a": [1, 2]}}}},
    {"alpha_series": {"per_world": {"w1": {"returns": [0.01, -0.02, 0.005]}}}},
])
def test_render_json_equals_render_response(version: int, changes: dict[str, object]) -> None:
    request = MultiWorldRebalanceRequest.model_validate(body(**changes))
    response = served_response(request, version=version, periods_per_year=252)
    fast = json.loads(render_json(response, version))
    assert fast == render_response(response, version)
    body_dict, encoded = compute_plan(request, version=version, periods_per_year=252)
    assert json.loads(encoded) == body_dict == fast
    none, only_json = compute_plan(request, version=version, periods_per_year=252,
                                   with_body=False)
    assert none is None and json.loads(only_json) == fast


def test_render_json_refuses_v2_without_metrics() -> None:
    request = MultiWorldRebalanceRequest.model_validate(body())
    response = served_response(request, version=1, periods_per_year=252)
    with pytest.raises(ValueError, match="alpha_metrics"):
        render_json(response, 2)


@pytest.mark.parametrize(("header", "allowed"), [
    (None, True), ("*", True), ('"abc"', True), ("abc", True), ('W/"abc"', True),
    ('"x", "abc"', True), ('"x"', False), ("", False), ('"abcd"', False),
])
def test_if_match(header: str | None, allowed: bool) -> None:
    assert if_match_allows(header, "abc") is allowed


def test_etag_header_is_quoted() -> None:
    assert etag_header("abc") == '"abc"'


def test_with_fields_appends_to_an_object() -> None:
    assert json.loads(with_fields(b'{"a":1}', {"run_id": "r", "etag": "e"})) == {
        "a": 1, "run_id": "r", "etag": "e"}
    assert json.loads(with_fields(b"{}", {"x": [1]})) == {"x": [1]}

"""The proxy relays a WorldService answer byte for byte only when re-rendering it would
give the same document (``served.relayable_as_is``); anything else is re-validated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qmtl.contracts import ALPHA_METRIC_KEYS, MultiWorldRebalanceRequest
from qmtl.gateway.served import parse_served_response, relayable_as_is
from qmtl.worldservice.planning import compute_plan


def _served(version: int, **extra: Any) -> bytes:
    request = MultiWorldRebalanceRequest.model_validate(
        {
            "total_equity": 1e6,
            "world_alloc_before": {"w1": 0.5},
            "world_alloc_after": {"w1": 0.25},
            "positions": [
                {
                    "world_id": "w1",
                    "strategy_id": "s1",
                    "symbol": "BTC",
                    "qty": 2,
                    "mark": 100,
                    "venue": "binance",
                }
            ],
            "rebalance_intent": {"meta": {"ticket": "T-1"}},
            **extra,
        }
    )
    return compute_plan(request, version=version, periods_per_year=252, with_body=False)[1]


@pytest.mark.parametrize("version", [1, 2])
def test_our_worldservice_answers_are_relayed_as_is(version: int) -> None:
    content = _served(version)
    assert relayable_as_is(content, apply=False) == version
    _, rendered, served = parse_served_response(content, apply=False)
    assert served == version and json.loads(rendered) == json.loads(content)


def _doc(**fields: Any) -> bytes:
    base: dict[str, Any] = {"schema_version": 1, "per_world": {}, "global_deltas": []}
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize(
    "content",
    [
        _doc(alpha_metrics={"per_world": {}, "per_strategy": {}}),  # v2 key in a v1 answer
        _doc(rebalance_intent={"meta": {}}),
        _doc(schema_version=True),
        _doc(schema_version=0),
        _doc(schema_version="2"),
        json.dumps({"per_world": {}, "global_deltas": []}).encode(),  # version left implicit
        _doc(extra=1),  # unknown key: the re-rendering drops it
        _doc(overlay_deltas=None),
        json.dumps({"global_deltas": [], "schema_version": 1, "per_world": {}}).encode(),
        _doc(
            schema_version=2,
            alpha_metrics={"per_world": {"w1": {ALPHA_METRIC_KEYS[0]: True}}, "per_strategy": {}},
        ),
        _doc(schema_version=2, rebalance_intent={"meta": {}, "x": 1}),
        b"[]",
        b"<html>",
        b'{"schema_version": 1, "per_world": NaN}',
    ],
)
def test_anything_else_is_revalidated(content: bytes) -> None:
    assert relayable_as_is(content, apply=False) is None


def test_apply_answers_need_run_id_and_etag() -> None:
    assert relayable_as_is(_doc(), apply=True) is None
    assert relayable_as_is(_doc(run_id="r", etag="e"), apply=True) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b'{"schema_version": 2, "positions": [{"qty": 1}], "run_id": "r", "x": [1, {"y": 2}]}',
        b'{"schema_version": "2"}',
        b'{"run_id": "a\\u0000b"}',
        b'{"schema_version": 1, "schema_version": 0}',
        b"[]",
        b"nope",
        b"",
        b'{"alpha_series": null}',
    ],
)
def test_request_envelope_is_read_like_the_whole_document(raw: bytes) -> None:
    from pydantic import ValidationError

    from qmtl.gateway.bodies import _envelope
    from qmtl.gateway.outgoing import RequestEnvelope

    def outcome(parse: Any) -> Any:
        try:
            model = parse()
        except ValidationError as exc:
            return exc.errors(include_url=False, include_context=False)
        return model.model_dump(), model.model_fields_set

    assert outcome(lambda: _envelope(raw)) == outcome(
        lambda: RequestEnvelope.model_validate_json(raw or b"null")
    )

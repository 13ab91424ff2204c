"""The proxy relays a WorldService answer byte for byte only when re-rendering it would
give the same document (``served.relayable_as_is``); anything else is re-validated."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtl.contracts import ALPHA_METRIC_KEYS, MultiWorldRebalanceRequest, parse_alpha_metrics
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


# --- the alpha envelope: the relay's structural check against the model's round trip ------

_KNOWN_KEY = st.sampled_from(ALPHA_METRIC_KEYS)
_SCALAR = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**70), 2**70),
    st.booleans(), st.none(), st.text(max_size=2), st.lists(st.integers(), max_size=1),
)
_NAMES = st.sampled_from(["w1", "w2", "s1"])
_METRICS = st.dictionaries(_KNOWN_KEY, st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 5)), max_size=3)
_ENTRY = st.fixed_dictionaries({"observations": st.integers(0, 9),
                                "undefined": st.lists(_KNOWN_KEY, max_size=3)})


def _block(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    by_world = st.dictionaries(_NAMES, leaf, max_size=2)
    return st.fixed_dictionaries({"per_world": by_world,
                                  "per_strategy": st.dictionaries(_NAMES, by_world, max_size=2)})


_GOOD = st.builds(lambda block, coverage: {**block, **coverage}, _block(_METRICS),
                  st.fixed_dictionaries({}, optional={"coverage": _block(_ENTRY)}))

# One bad value per kind of place in the envelope (each is dropped or changed by the model).
_BAD = {
    "value": st.one_of(st.booleans(), st.none(), st.text(max_size=1),
                       st.sampled_from([2**53 + 1, -(2**53) - 3, 10**400])),
    "metric_key": st.sampled_from(["alpha_performance.sortino", "x"]),
    "entry_field": st.sampled_from(["extra", "observations", "undefined"]),
    "observations": st.one_of(st.integers(-3, -1), st.booleans(), st.floats(), st.none()),
    "undefined": st.one_of(st.none(), st.text(max_size=1), st.lists(st.one_of(
        st.just("alpha_performance.sortino"), st.integers(), st.lists(_KNOWN_KEY, max_size=1)),
        min_size=1, max_size=2)),
    "block_key": st.sampled_from(["per_world", "per_strategy", "other"]),
    "node": _SCALAR,
}


def _places(envelope: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(kind, container, key) for every place a bad value can go."""
    blocks = [("metrics", envelope)]
    if "coverage" in envelope:
        blocks.append(("coverage", envelope["coverage"]))
    places: list[tuple[str, dict[str, Any], str]] = [("node", envelope, "coverage")]
    for name, block in blocks:
        places += [("block_key", block, ""), ("node", block, "per_world"),
                   ("node", block, "per_strategy")]
        places += [("node", block["per_strategy"], key) for key in block["per_strategy"]]
        for by_world in [block["per_world"], *block["per_strategy"].values()]:
            for world, leaf in by_world.items():
                places.append(("node", by_world, world))
                if name == "coverage":
                    places += [("entry_field", leaf, ""), ("observations", leaf, "observations"),
                               ("undefined", leaf, "undefined")]
                else:
                    places += [("metric_key", leaf, "")]
                    places += [("value", leaf, key) for key in leaf]
    return places


@st.composite
def _mutated(draw: st.DrawFn) -> Any:
    envelope = draw(_GOOD)
    places = _places(envelope)
    kind = draw(st.sampled_from(sorted({kind for kind, _, _ in places})))
    _, container, key = draw(st.sampled_from([place for place in places if place[0] == kind]))
    bad = draw(_BAD[kind])
    if kind in ("value", "observations", "undefined", "node"):
        container[key] = bad
    elif kind == "metric_key":
        container[bad] = draw(_METRICS.map(lambda m: next(iter(m.values()), 0.5)))
    elif bad in container:  # entry_field / block_key: drop a required key...
        del container[bad]
    else:  # ...or add an unknown one
        container[bad] = draw(_SCALAR)
    return envelope


_ENVELOPE = st.one_of(_GOOD, _mutated(), _SCALAR)


def _model_round_trip_unchanged(metrics: Any) -> bool:
    """The reference: what the relay check stood for before it walked the JSON itself."""
    envelope = parse_alpha_metrics(metrics)
    return envelope is not None and envelope.model_dump(mode="json") == metrics


@settings(max_examples=1500, deadline=None)
@given(_ENVELOPE)
def test_alpha_metrics_are_relayed_as_is_exactly_when_the_model_keeps_them(metrics: Any) -> None:
    content = json.dumps({"schema_version": 2, "per_world": {}, "global_deltas": [],
                          "alpha_metrics": metrics}).encode()
    relayed = relayable_as_is(content, apply=False) == 2
    # An integer beyond 2**53 may not survive the float conversion: never relayed as is.
    assert relayed == (_model_round_trip_unchanged(metrics) and not _huge_integer(metrics))


def _huge_integer(value: Any) -> bool:
    """An integer beyond 2**53 anywhere outside ``coverage`` (where counts may be large)."""
    if isinstance(value, dict):
        return any(_huge_integer(item) for key, item in value.items() if key != "coverage")
    if isinstance(value, list):
        return any(_huge_integer(item) for item in value)
    return type(value) is int and abs(value) > 2**53


def _with(path: list[str], value: Any) -> dict[str, Any]:
    """A good envelope with coverage, ``value`` put at ``path``."""
    key = ALPHA_METRIC_KEYS[0]
    envelope: dict[str, Any] = {
        "per_world": {"w1": {key: 0.5}},
        "per_strategy": {"s1": {"w1": {key: 1.5}}},
        "coverage": {"per_world": {"w1": {"observations": 3, "undefined": [key]}},
                     "per_strategy": {"s1": {"w1": {"observations": 3, "undefined": []}}}},
    }
    node = envelope
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return envelope


_COVERAGE_W1 = ["coverage", "per_world", "w1"]


@pytest.mark.parametrize(
    "metrics",
    [
        _with([*_COVERAGE_W1, "observations"], -1),
        _with([*_COVERAGE_W1, "observations"], 2.0),
        _with([*_COVERAGE_W1, "observations"], True),
        _with([*_COVERAGE_W1, "undefined"], ["alpha_performance.sortino"]),
        _with([*_COVERAGE_W1, "undefined"], [["alpha_performance.sharpe"]]),
        _with([*_COVERAGE_W1, "extra"], 1),
        _with(["coverage", "per_strategy", "s1"], []),
        _with(["coverage"], None),
        _with(["per_world", "w1", ALPHA_METRIC_KEYS[1]], True),
        _with(["per_world", "w1", "alpha_performance.sortino"], 1.0),
        _with(["per_strategy", "s1", "w1"], None),
        _with(["per_strategy"], []),
        _with(["other"], {}),
    ],
)
def test_each_change_the_model_would_make_is_not_relayed(metrics: dict[str, Any]) -> None:
    assert not _model_round_trip_unchanged(metrics)  # the case is a real change
    content = json.dumps({"schema_version": 2, "per_world": {}, "global_deltas": [],
                          "alpha_metrics": metrics}).encode()
    assert relayable_as_is(content, apply=False) is None


def test_a_good_envelope_with_coverage_is_relayed() -> None:
    metrics = _with(["per_world", "w2"], {})
    assert _model_round_trip_unchanged(metrics)
    content = json.dumps({"schema_version": 2, "per_world": {}, "global_deltas": [],
                          "alpha_metrics": metrics}).encode()
    assert relayable_as_is(content, apply=False) == 2


def test_an_integer_a_float_cannot_hold_is_not_relayed_as_is() -> None:
    metrics = {"per_world": {"w1": {ALPHA_METRIC_KEYS[0]: 2**53 + 1}}, "per_strategy": {}}
    content = json.dumps({"schema_version": 2, "per_world": {}, "global_deltas": [],
                          "alpha_metrics": metrics}).encode()
    assert relayable_as_is(content, apply=False) is None
    _, rendered, _ = parse_served_response(content, apply=False)
    assert json.loads(rendered)["alpha_metrics"]["per_world"]["w1"] == {
        ALPHA_METRIC_KEYS[0]: 9007199254740992.0}


def test_the_envelope_of_a_real_plan_with_coverage_is_relayed_as_is() -> None:
    content = _served(2, alpha_series={"per_world": {"w1": {"returns": [0.01, -0.02, 0.03]}}})
    metrics = json.loads(content)["alpha_metrics"]
    assert metrics["coverage"]["per_world"]["w1"]["observations"] == 3
    assert relayable_as_is(content, apply=False) == 2

"""``events.encode_world_event`` (a dict encoded by orjson) gives the document the pydantic
``CloudEvent`` gave before (kept here as the reference): same keys in the same order, same
values, floats to the bit, over extreme floats, unicode and escapes in ids, big integers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtl.contracts import (
    EVENT_TYPE_REBALANCING_PLANNED,
    CloudEvent,
    decode_event,
    encode_event,
    parse_rebalancing_planned,
)
from qmtl.contracts._types import check_identifier
from qmtl.worldservice.events import WorldEvent, build_world_events, encode_world_event


def reference_encoding(event: WorldEvent, *, seq: int, source: str) -> str:
    """``encode_world_event`` as released up to f4cf00e, verbatim."""
    cloud_event = CloudEvent(
        id=event.event_id,
        source=source,
        type=EVENT_TYPE_REBALANCING_PLANNED,
        time=event.time,
        data={**event.data, "seq": seq},
    )
    return encode_event(cloud_event).decode()


def assert_same_document(a: Any, b: Any, path: str = "$") -> None:
    """Equal JSON documents: same types, key order, and floats bit for bit (-0.0 too)."""
    assert type(a) is type(b), (path, a, b)
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same_document(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_document(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == b and math.copysign(1.0, a) == math.copysign(1.0, b), (path, a, b)
    else:
        assert a == b, path


EXTREME = st.sampled_from([1e-05, 1e16, 1e+16, 5e-324, 2.2250738585072014e-308, 1e-310,
                           1.7976931348623157e308, -1.7976931348623157e308, -0.0, 0.0, 0.1,
                           1 / 3, 123456789.123456789, 1e22, 1e21, 1e-7])
FLOATS = st.one_of(EXTREME, st.floats(allow_nan=False, allow_infinity=False))
IDS = st.one_of(st.sampled_from(["w1", "Ω", "a\"b", "back\\slash", "x\u2028y", "😀", "é/ü",
                                 "</script>", "tab\tin"]),
                st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8))
META = st.recursive(
    st.one_of(st.none(), st.booleans(), FLOATS, st.integers(-(10**30), 10**30), IDS),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(IDS, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def plans(draw: st.DrawFn, world_id: str) -> dict[str, Any]:
    deltas = []
    for _ in range(draw(st.integers(0, 4))):
        delta: dict[str, Any] = {"symbol": draw(IDS), "delta_qty": draw(FLOATS)}
        if draw(st.booleans()):
            delta["venue"] = draw(IDS)
        deltas.append(delta)
    return {"world_id": world_id, "scale_world": draw(FLOATS),
            "scale_by_strategy": draw(st.dictionaries(IDS, FLOATS, max_size=3)),
            "deltas": deltas}


@st.composite
def events(draw: st.DrawFn) -> WorldEvent:
    world_id = draw(IDS)
    version = draw(st.sampled_from([1, 2]))
    data: dict[str, Any] = {
        "world_id": world_id, "plan": draw(plans(world_id)), "version": version,
        "schema_version": version, "compat_rebalance_v2": draw(st.booleans()),
        "run_id": draw(IDS), "idempotency_key": f"rebalancing_planned:{world_id}:ab:{version}",
    }
    if draw(st.booleans()):
        data["overlay_deltas"] = [{"world_id": world_id, "symbol": "ES",
                                   "delta_qty": draw(FLOATS)}]
    if version == 2:
        data["alpha_metrics"] = {"per_world": {world_id: {"alpha_performance.sharpe":
                                                          draw(FLOATS)}},
                                 "per_strategy": {}}
        data["rebalance_intent"] = {"meta": draw(st.dictionaries(IDS, META, max_size=4))}
    when = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                             timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)),
                                                        timezone(timedelta(hours=-5,
                                                                           minutes=-30))])))
    return WorldEvent(event_id=draw(st.uuids()).hex, world_id=world_id, time=when, data=data)


def _is_identifier(value: str) -> bool:
    try:
        check_identifier(value)
    except ValueError:
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(event=events(), seq=st.integers(1, 2**62), source=IDS.filter(_is_identifier))
def test_event_document_equals_the_pydantic_encoding(event: WorldEvent, seq: int,
                                                     source: str) -> None:
    fast = encode_world_event(event, seq=seq, source=source)
    reference = reference_encoding(event, seq=seq, source=source)
    assert_same_document(json.loads(fast), json.loads(reference))
    # What consumers do with it: the CloudEvent model reads both alike.
    assert decode_event(fast) == decode_event(reference)


def test_time_is_written_as_pydantic_writes_it() -> None:
    for when in (datetime(2026, 12, 2, 14, 18, 18, tzinfo=UTC),
                 datetime(2026, 12, 2, 14, 18, 18, 1000, tzinfo=UTC),
                 datetime(2026, 12, 2, 14, 18, 18, 123456, tzinfo=timezone(timedelta(hours=9)))):
        event = WorldEvent(event_id="e", world_id="w", time=when, data={})
        fast = json.loads(encode_world_event(event, seq=1, source="s"))["time"]
        assert fast == json.loads(reference_encoding(event, seq=1, source="s"))["time"]


def test_built_events_parse_as_rebalancing_planned() -> None:
    """An applied v2 body's events, encoded the fast way, pass the consumer's validation."""
    plan = {"world_id": "w1", "scale_world": 0.5, "scale_by_strategy": {"s1": 0.5},
            "deltas": [{"symbol": "BTC", "delta_qty": -1e-05, "venue": "binance"}]}
    body = {"schema_version": 2, "per_world": {"w1": plan}, "global_deltas": [],
            "alpha_metrics": {"per_world": {"w1": {"alpha_performance.sharpe": 0.0}},
                              "per_strategy": {"s1": {"w1": {"alpha_performance.sharpe": 0.0}}}},
            "rebalance_intent": {"meta": {"big": 10**30}}}
    [event] = build_world_events(body, version=2, compat_rebalance_v2=True, run_id="r")
    encoded = encode_world_event(event, seq=7, source="qmtl.worldservice")
    data = parse_rebalancing_planned(decode_event(encoded))
    assert (data.seq, data.plan.deltas[0].delta_qty) == (7, -1e-05)
    assert json.loads(encoded)["data"]["rebalance_intent"] == {"meta": {"big": 10**30}}


def test_a_source_the_cloudevent_model_refuses_is_refused() -> None:
    event = WorldEvent(event_id="e", world_id="w", time=datetime.now(UTC), data={})
    with pytest.raises(ValueError, match="control characters"):
        encode_world_event(event, seq=1, source="bad\nsource")

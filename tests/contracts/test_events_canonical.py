"""``canonical_data_json`` writes exactly ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``'s bytes (consumers recompute idempotency keys with it), over extreme
floats, unicode and escapes in ids and keys, big integers, nesting; and refuses what it
refuses. The reference below is the standard library call itself, not the code under test."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmtl.contracts import _canonical, canonical_data_json, idempotency_key

SPECIAL_FLOATS = [1e-05, 1e16, 1e+16, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308,
                  -0.0, 0.0, 2.2250738585072014e-308, 2.225073858507201e-308, 1e-310, 1e-7,
                  9.999999999999999e-05, 1e-4, 0.0001, 9999999999999998.0, 1e21, 1e22,
                  123456789.123456789, 0.1, 1 / 3, 100.00001, -1e-300, 4.9406564584124654e-324]


def reference(value: Any) -> bytes:
    """The bytes consumers recompute (SPEC 2.6)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode()


FLOATS = st.one_of(st.sampled_from(SPECIAL_FLOATS),
                   st.floats(allow_nan=False, allow_infinity=False),
                   st.floats(min_value=-1e-3, max_value=1e-3),
                   st.floats(min_value=1e15, max_value=1e17))
TEXT = st.one_of(
    st.sampled_from(["", "BTC/USDT", "Ω", "😀", "a\"b", "back\\slash", "\x00", "\x1f", "\x7f",
                     "\u2028\u2029", "\ud7ff\ue000", "</script>", "tab\tnew\nline", "e-1",
                     "0.00001", "null", "é"]),
    st.text(),
)
LEAVES = st.one_of(st.none(), st.booleans(), FLOATS,
                   st.integers(min_value=-(2**63), max_value=2**64 - 1),
                   st.integers(min_value=-(10**40), max_value=10**40), TEXT)
DATA = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                   st.dictionaries(TEXT, inner, max_size=5)),
                    max_leaves=30)


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """Plans as the renderer builds them (deltas: symbol, delta_qty, venue when set)."""
    deltas = []
    for _ in range(draw(st.integers(0, 20))):
        delta: dict[str, Any] = {"symbol": draw(TEXT), "delta_qty": draw(FLOATS)}
        if draw(st.booleans()):
            delta["venue"] = draw(TEXT)
        deltas.append(delta)
    return {"world_id": draw(TEXT), "scale_world": draw(FLOATS),
            "scale_by_strategy": draw(st.dictionaries(TEXT, FLOATS, max_size=5)),
            "deltas": deltas}


ORDINARY_FLOATS = st.one_of(st.floats(min_value=1e-4, max_value=1e300),
                            st.floats(min_value=-1e300, max_value=-1e-4),
                            st.integers(-(10**9), 10**9).map(lambda i: i / 1000))
ORDINARY_TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1,
                        max_size=12).filter(lambda t: "e-" not in t and "null" not in t)


@st.composite
def ordinary_plans(draw: st.DrawFn) -> dict[str, Any]:
    """Plans whose every value orjson writes as json does: the fast branch must be taken."""
    return {"world_id": draw(ORDINARY_TEXT), "scale_world": draw(ORDINARY_FLOATS),
            "scale_by_strategy": draw(st.dictionaries(ORDINARY_TEXT, ORDINARY_FLOATS,
                                                      max_size=5)),
            "deltas": draw(st.lists(st.fixed_dictionaries(
                {"symbol": ORDINARY_TEXT, "delta_qty": ORDINARY_FLOATS},
                optional={"venue": ORDINARY_TEXT}), max_size=20))}


def _same_outcome(value: Any) -> None:
    try:
        expected = reference(value)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        with pytest.raises(type(exc)):
            canonical_data_json(value)
        return
    assert canonical_data_json(value) == expected


@settings(max_examples=3000, deadline=None)
@given(plan=plans())
def test_plans_encode_byte_for_byte_as_json_dumps(plan: dict[str, Any]) -> None:
    _same_outcome(plan)


@settings(max_examples=3000, deadline=None)
@given(plan=ordinary_plans())
def test_ordinary_plans_take_orjson_and_match_json_dumps(plan: dict[str, Any]) -> None:
    """The fast branch itself is what is proven here: the fallback is switched off."""
    expected = reference(plan)
    if b"0.0000" in expected:  # e.g. 100.00001: a legitimate (harmless) fallback
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_canonical, "canonical_json", _no_fallback)
        assert canonical_data_json(plan) == expected


def _no_fallback(value: Any) -> bytes:
    raise AssertionError("the standard-library fallback was taken")


@settings(max_examples=3000, deadline=None)
@given(value=DATA)
def test_any_json_data_encodes_byte_for_byte_as_json_dumps(value: Any) -> None:
    _same_outcome(value)


@pytest.mark.parametrize("value", SPECIAL_FLOATS)
def test_each_special_float(value: float) -> None:
    assert canonical_data_json({"x": value, "l": [value]}) == reference({"x": value, "l": [value]})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_is_refused_as_before(value: float) -> None:
    with pytest.raises(ValueError):
        canonical_data_json({"x": value})


@pytest.mark.parametrize("value", ["\ud800", {"\udfff": 1}, {1: "int key"}, 10**30])
def test_what_orjson_refuses_goes_to_the_standard_library(value: Any) -> None:
    _same_outcome(value)


def test_idempotency_key_recomputed_by_a_consumer() -> None:
    plan = {"world_id": "w1", "scale_world": 1e-05, "scale_by_strategy": {"é": 1e16},
            "deltas": [{"symbol": "Ω\u2028", "delta_qty": -0.0, "venue": "x\"y"}]}
    digest = hashlib.sha256(reference(plan)).hexdigest()
    assert idempotency_key("w1", plan, 2) == f"rebalancing_planned:w1:{digest}:2"

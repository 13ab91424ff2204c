"""``outgoing.rewrite_object`` splices a body's top-level bytes: checked against
``json.loads``/``json.dumps`` on random objects in any spacing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qmtl.gateway.outgoing import rewrite_object

_KEYS = st.sampled_from(["schema_version", "rebalance_intent", "alpha_series", "positions",
                         "run_id", "é", "a\"b"])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                      allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=8)
_SPACING = st.sampled_from([{"separators": (",", ":")}, {"indent": 1}, {"indent": "\t"},
                            {"separators": (" , ", " : ")}])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5), _SPACING,
       st.sampled_from(["", " ", "\n", " \r\n\t "]),
       st.sets(_KEYS, max_size=2), st.dictionaries(_KEYS, _VALUES, max_size=2),
       st.booleans())
def test_rewrite_equals_the_parsed_document_rewritten(
        body: dict[str, Any], spacing: dict[str, Any], trailing: str, drop: set[str],
        put: dict[str, Any], tell_present: bool) -> None:
    put = {key: value for key, value in put.items() if key not in drop}
    raw = (" " + json.dumps(body, **spacing) + trailing).encode()
    touched = drop | put.keys()
    present = (touched & body.keys()) if tell_present else None
    out = rewrite_object(raw, drop=drop, put=put, present=present)
    expected = {key: value for key, value in body.items() if key not in drop}
    expected.update(put)
    assert json.loads(out) == expected
    if not touched & body.keys():
        # Nothing dropped or replaced: the caller's bytes up to the closing brace stay a
        # prefix (a streamed body is completed, not sent again).
        head = raw.rstrip()[:-1]
        assert out.startswith(head)
        if not put:
            assert out is raw

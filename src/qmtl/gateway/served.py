"""Reading a WorldService plan/apply answer and rendering it at the version it was served.

The served version is the response's ``schema_version`` (absent = 1). A v1 answer never
gains ``alpha_metrics``/``rebalance_intent`` on its way through the gateway (and loses them
if a misbehaving WorldService sent them); a v2 answer keeps only sanitized metrics (known
keys, finite non-boolean numbers) and never gains metrics it did not carry.

Everything but the alpha envelope is validated by pydantic's JSON parser in one pass; the
envelope is read tolerantly with :func:`qmtl.contracts.parse_alpha_metrics`, so one bad
metric value is dropped instead of failing the whole plan.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from pydantic import ValidationError

from qmtl.contracts import (
    ALPHA_METRIC_KEYS,
    V2_ONLY_RESPONSE_KEYS,
    ApplyResponse,
    MultiWorldRebalanceResponse,
    RebalanceIntent,
    parse_alpha_metrics,
)
from qmtl.contracts.errors import QmtlError
from qmtl.web.gcpause import gc_paused

__all__ = ["ServedResponse", "WorldServiceBadResponse", "parse_served_response",
           "relayable_as_is"]


class WorldServiceBadResponse(QmtlError):
    """The WorldService answered 2xx with a body that breaks the wire contract."""

    code = "E_WORLDSERVICE_BAD_RESPONSE"
    status_code = 502
    default_message = "the WorldService answered with a malformed plan"


class _PlanWithRawAlpha(MultiWorldRebalanceResponse):
    alpha_metrics: Any = None  # read tolerantly afterwards


class _ApplyWithRawAlpha(ApplyResponse):
    alpha_metrics: Any = None


ServedResponse = tuple[MultiWorldRebalanceResponse, bytes, int]
"""(model, wire JSON at the served version, served version)."""


def _bad(exc: ValidationError) -> WorldServiceBadResponse:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(root)"
    return WorldServiceBadResponse(
        f"the WorldService answered an invalid plan: {loc}: {err['msg']}", field=loc)


def parse_served_response(content: bytes, *, apply: bool) -> ServedResponse:
    """Validate a plan/apply answer and render it at its served version.

    Raises:
        WorldServiceBadResponse: not JSON, not an object, or not a valid plan document
            (``schema_version`` that is not an integer >= 1 included).
    """
    raw_type = _ApplyWithRawAlpha if apply else _PlanWithRawAlpha
    try:
        parsed = raw_type.model_validate_json(content or b"null")
    except ValidationError as exc:
        raise _bad(exc) from exc
    served = parsed.schema_version
    fields = {name: getattr(parsed, name) for name in parsed.model_fields_set}
    fields.pop("alpha_metrics", None)
    fields.pop("rebalance_intent", None)
    if served >= 2:
        envelope = parse_alpha_metrics(parsed.alpha_metrics)
        if envelope is not None:
            fields["alpha_metrics"] = envelope
        if parsed.rebalance_intent is not None:
            fields["rebalance_intent"] = parsed.rebalance_intent
    final_type = ApplyResponse if apply else MultiWorldRebalanceResponse
    model = final_type.model_construct(**fields)
    excluded = {key for key in V2_ONLY_RESPONSE_KEYS if getattr(model, key, None) is None}
    # An answer without schema_version was v1: the default (1) is written out explicitly.
    return model, model.model_dump_json(exclude=excluded).encode(), served


_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_METRIC_KEYS = frozenset(ALPHA_METRIC_KEYS)
_PLAN_KEYS = tuple(MultiWorldRebalanceResponse.model_fields)
_APPLY_KEYS = tuple(ApplyResponse.model_fields)


_MetricKey = Literal[ALPHA_METRIC_KEYS]  # type: ignore[valid-type]
# An integer a float holds exactly (the model turns every value into a float; a larger
# integer could change on the way, so such an answer is re-rendered instead).
_MetricValue = Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)] | float


class _Coverage(msgspec.Struct, forbid_unknown_fields=True):
    observations: Annotated[int, msgspec.Meta(ge=0)]
    undefined: list[_MetricKey]


class _CoverageBlocks(msgspec.Struct, forbid_unknown_fields=True):
    per_world: dict[str, _Coverage]
    per_strategy: dict[str, dict[str, _Coverage]]


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """An ``alpha_metrics`` envelope that :func:`parse_alpha_metrics` gives back unchanged:
    both blocks, known keys only, finite non-boolean numbers, and a ``coverage`` (when
    present) whose entries hold exactly an integer ``observations`` >= 0 and a list of
    known keys. msgspec checks it in C: the envelope of a plan with thousands of strategies
    is read on every relayed answer."""

    per_world: dict[str, dict[_MetricKey, _MetricValue]]
    per_strategy: dict[str, dict[str, dict[_MetricKey, _MetricValue]]]
    coverage: _CoverageBlocks | msgspec.UnsetType = msgspec.UNSET


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def _envelope_unchanged(raw: bytes) -> bool:
    try:
        # Thousands of small dicts at once: without the pause they trigger collections of
        # the gateway's whole heap.
        with gc_paused():
            _ENVELOPE.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return False
    return True


def relayable_as_is(content: bytes | bytearray, *, apply: bool) -> int | None:
    """The served version when ``content`` can be relayed byte for byte, else ``None``.

    The proxy's fast path (no re-parse of a large plan): only the top level is read
    (msgspec skips the values). The answer is relayed unchanged when
    :func:`parse_served_response` would render the same document: an object whose keys are
    response fields in the model's order, none of them null, ``schema_version`` a strict
    integer >= 1, no v2-only key in a v1 answer (never relay a mis-versioned document),
    ``run_id`` and ``etag`` in an apply answer, and alpha metrics that sanitising leaves
    unchanged. Anything else (``None``) goes through :func:`parse_served_response`.
    """
    try:
        top = _TOP.decode(content)
        version = msgspec.json.decode(top["schema_version"]) if "schema_version" in top \
            else None
    # RecursionError: a document nested deeper than msgspec goes (parsed whole instead)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    order = _APPLY_KEYS if apply else _PLAN_KEYS
    if list(top) != [key for key in order if key in top]:
        return None
    if type(version) is not int or version < 1:
        return None
    if any(len(value) == 4 and bytes(value) == b"null" for value in top.values()):
        return None
    if apply and not ("run_id" in top and "etag" in top):
        return None
    if version < 2:
        return None if V2_ONLY_RESPONSE_KEYS & top.keys() else version
    if "alpha_metrics" in top and not _envelope_unchanged(bytes(top["alpha_metrics"])):
        return None
    if "rebalance_intent" in top:
        try:
            intent = msgspec.json.decode(top["rebalance_intent"])
            if RebalanceIntent.model_validate(intent).model_dump(mode="json") != intent:
                return None
        except (msgspec.DecodeError, ValidationError, RecursionError):
            return None
    return version

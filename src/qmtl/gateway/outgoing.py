"""Plan/apply/execute bodies on their way to the WorldService.

The caller's bytes are forwarded unchanged whenever they already say what the gateway
wants to send (the same ``schema_version``, or for v1 no v2-only key at all) — a large
request is then never re-encoded. Otherwise the body is rewritten — by splicing its
top-level bytes (:func:`rewrite_object`), never by parsing the positions:

* v1: every v2-only key (``schema_version``, ``rebalance_intent``, ``alpha_series``) removed,
  so a strict legacy WorldService accepts it;
* v1 to a *legacy* WorldService (one that is not ours: no version list on its ``/health``,
  or it refused v2): also every field the original platform's v1 model requires but ours
  may omit, with its default (:data:`V1_REQUIRED_DEFAULTS`);
* v2+: ``schema_version`` set to the version sent (appended when the caller left it out,
  so the caller's bytes stay a prefix of what is sent — see ``upload``).

``/rebalancing/plan`` and ``/rebalancing/apply`` only read the envelope (version, run id,
which v2 keys are present); the WorldService owns the schema and validates the body, and
its 422 comes back unchanged. ``/rebalancing/execute`` validates in full first (it needs
the positions) and rewrites from the model.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict

from qmtl.contracts import V2_REQUEST_FIELDS, Identifier, MultiWorldRebalanceRequest, SchemaVersion

__all__ = ["V1_REQUIRED_DEFAULTS", "OutgoingRequest", "RequestEnvelope", "rewrite_object"]

logger = logging.getLogger(__name__)

V1_REQUIRED_DEFAULTS: Mapping[str, Any] = {"world_alloc_before": {}, "positions": []}
"""Required by the original platform's v1 request, optional in ours, and what the gateway
sends a legacy WorldService when the caller left them out (or null):

* ``positions``: ``[]``, our default (nothing held);
* ``world_alloc_before``: ``{}`` — every world starts at ratio 0, exactly what our
  WorldService plans with when its allocation store is empty. Ours fills a null "before"
  from its store; a legacy WorldService has no such default, so callers of one should send
  the real ratios (a warning is logged when the gateway fills it).

Never added for our own WorldService (it lists its versions), whose store default applies.
"""

# A cheap look for a positions list in the caller's bytes (parsing a large book only to
# learn that the key is there would cost as much as the request). A false positive only
# means the legacy WorldService names the missing field in its 422.
_POSITIONS_LIST = re.compile(rb'"positions"\s*:\s*\[')

_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_JSON = msgspec.json.Encoder()


def rewrite_object(raw: bytes | bytearray, *, drop: Collection[str] = (),
                   put: Mapping[str, Any] | None = None,
                   present: Collection[str] | None = None) -> bytes | bytearray:
    """The JSON object ``raw`` without the keys in ``drop`` and with ``put``'s keys set.

    Bytes are spliced, never re-parsed: msgspec reads only the top level (the values stay
    raw bytes), so rewriting a million-position body costs a copy, not a parse. When nothing
    is dropped or replaced, the new keys are appended and the caller's bytes stay a prefix of
    the result (a streamed body can then be completed instead of sent again).

    ``raw`` must be a JSON object (the envelope was read from it). ``present``: which of
    the ``drop``/``put`` keys ``raw`` holds, when the caller knows (its envelope says);
    appending then needs no second read of the top level.
    """
    put = put or {}
    if present is not None and not (set(drop) | put.keys()) & set(present):
        return _appended(raw, put) if put else raw
    return _spliced(raw, _TOP.decode(raw), drop=drop, put=put)


def _spliced(raw: bytes | bytearray, top: Mapping[str, msgspec.Raw], *,
             drop: Collection[str], put: Mapping[str, Any]) -> bytes | bytearray:
    """:func:`rewrite_object` with the top level of ``raw`` already read."""
    if not (set(drop) | put.keys()) & top.keys():
        return _appended(raw, put) if put else raw
    fields = [(key, _JSON.encode(put[key]) if key in put else bytes(value))
              for key, value in top.items() if key not in drop]
    fields += [(key, _JSON.encode(value)) for key, value in put.items() if key not in top]
    return b"{" + b",".join(_JSON.encode(key) + b":" + value for key, value in fields) + b"}"


_WHITESPACE = b" \t\n\r"


def _appended(raw: bytes | bytearray, put: Mapping[str, Any]) -> bytes:
    """``raw`` with ``put`` added before its closing brace: one copy, no parse."""
    end = len(raw)
    while raw[end - 1] in _WHITESPACE:
        end -= 1
    start = raw.index(b"{") + 1
    while raw[start] in _WHITESPACE:
        start += 1
    separator = b"" if start == end - 1 else b","  # "{ }" has no key to follow
    extra = b",".join(_JSON.encode(key) + b":" + _JSON.encode(value)
                      for key, value in put.items())
    return b"".join((memoryview(raw)[:end - 1], separator, extra, b"}"))


class RequestEnvelope(BaseModel):
    """What the proxy reads of a body: the version, the run id, and which keys are set."""

    model_config = ConfigDict(extra="ignore")

    schema_version: SchemaVersion | None = None
    run_id: Identifier | None = None
    rebalance_intent: Any = None
    alpha_series: Any = None
    world_alloc_before: Any = None


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request body and how to send it at any version.

    ``model`` is set when the body was validated in full (execute); otherwise rewrites
    splice the caller's bytes (:func:`rewrite_object`) and keep its fields as they are.
    """

    raw: bytes | bytearray  # a streamed body's buffer (``upload``) is not copied to bytes
    declared_version: int | None
    v2_keys: frozenset[str]
    run_id: str | None
    model: MultiWorldRebalanceRequest | None = None
    has_world_alloc_before: bool = True

    @classmethod
    def from_envelope(cls, raw: bytes | bytearray,
                      envelope: RequestEnvelope) -> OutgoingRequest:
        return cls(raw=raw, declared_version=envelope.schema_version,
                   v2_keys=frozenset(envelope.model_fields_set & V2_REQUEST_FIELDS),
                   run_id=envelope.run_id,
                   has_world_alloc_before=envelope.world_alloc_before is not None)

    @classmethod
    def from_model(cls, raw: bytes, model: MultiWorldRebalanceRequest) -> OutgoingRequest:
        return cls(raw=raw, declared_version=model.schema_version,
                   v2_keys=frozenset(model.model_fields_set & V2_REQUEST_FIELDS),
                   run_id=model.run_id, model=model,
                   has_world_alloc_before=model.world_alloc_before is not None)

    def _lacks_v1_required(self) -> bool:
        if not self.has_world_alloc_before:
            return True
        if self.model is not None:
            return "positions" not in self.model.model_fields_set
        return _POSITIONS_LIST.search(self.raw) is None

    def _legacy_v1(self) -> bytes | bytearray:
        raw = self.raw if self.model is None else self.model.model_dump_json(
            exclude_unset=True).encode()
        top = _TOP.decode(raw)  # one read of the top level serves both rewrites
        defaults = {key: copy.deepcopy(default) for key, default in V1_REQUIRED_DEFAULTS.items()
                    if bytes(top.get(key, b"null")) == b"null"}
        if "world_alloc_before" in defaults:
            logger.warning("world_alloc_before is absent: a legacy WorldService "
                           "requires it, sent {} (every world starts at ratio 0)",
                           extra={"run_id": self.run_id})
        return _spliced(raw, top, drop=V2_REQUEST_FIELDS, put=defaults)

    def encode(self, version: int, *, legacy: bool = False) -> bytes | bytearray:
        """The body to send at ``version`` (the caller's bytes when nothing changes).

        ``legacy``: the WorldService is not ours, so a v1 body also gets the fields the
        original v1 model requires (:data:`V1_REQUIRED_DEFAULTS`).
        """
        if legacy and version < 2 and self._lacks_v1_required():
            return self._legacy_v1()
        if version < 2 and not self.v2_keys:
            return self.raw
        if version >= 2 and self.declared_version == version:
            return self.raw
        if self.model is not None:
            if version < 2:
                return self.model.model_dump_json(exclude_unset=True,
                                                  exclude=set(V2_REQUEST_FIELDS)).encode()
            updated = self.model.model_copy(update={"schema_version": version})
            return updated.model_dump_json(exclude_unset=True).encode()
        if version < 2:
            return rewrite_object(self.raw, drop=V2_REQUEST_FIELDS, present=self.v2_keys)
        return rewrite_object(self.raw, put={"schema_version": version}, present=self.v2_keys)

"""Plan/apply/execute bodies on their way to the WorldService.

The caller's bytes are forwarded unchanged whenever they already say what the gateway
wants to send (the same ``schema_version``, or for v1 no v2-only key at all) — a large
request is then never re-encoded. Otherwise the body is rewritten:

* v1: every v2-only key (``schema_version``, ``rebalance_intent``, ``alpha_series``) removed,
  so a strict legacy WorldService accepts it;
* v2+: ``schema_version`` set to the version sent.

``/rebalancing/plan`` and ``/rebalancing/apply`` only read the envelope (version, run id,
which v2 keys are present); the WorldService owns the schema and validates the body, and
its 422 comes back unchanged. ``/rebalancing/execute`` validates in full first (it needs
the positions) and rewrites from the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from qmtl.contracts import V2_REQUEST_FIELDS, Identifier, MultiWorldRebalanceRequest, SchemaVersion

__all__ = ["OutgoingRequest", "RequestEnvelope"]


class RequestEnvelope(BaseModel):
    """What the proxy reads of a body: the version, the run id, and which keys are set."""

    model_config = ConfigDict(extra="ignore")

    schema_version: SchemaVersion | None = None
    run_id: Identifier | None = None
    rebalance_intent: Any = None
    alpha_series: Any = None


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request body and how to send it at any version.

    ``model`` is set when the body was validated in full (execute); otherwise rewrites go
    through plain JSON and keep the caller's fields as they are.
    """

    raw: bytes
    declared_version: int | None
    v2_keys: frozenset[str]
    run_id: str | None
    model: MultiWorldRebalanceRequest | None = None

    @classmethod
    def from_envelope(cls, raw: bytes, envelope: RequestEnvelope) -> OutgoingRequest:
        return cls(raw=raw, declared_version=envelope.schema_version,
                   v2_keys=frozenset(envelope.model_fields_set & V2_REQUEST_FIELDS),
                   run_id=envelope.run_id)

    @classmethod
    def from_model(cls, raw: bytes, model: MultiWorldRebalanceRequest) -> OutgoingRequest:
        return cls(raw=raw, declared_version=model.schema_version,
                   v2_keys=frozenset(model.model_fields_set & V2_REQUEST_FIELDS),
                   run_id=model.run_id, model=model)

    def encode(self, version: int) -> bytes:
        """The body to send at ``version`` (the caller's bytes when nothing changes)."""
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
        body = json.loads(self.raw)
        if version < 2:
            body = {k: v for k, v in body.items() if k not in V2_REQUEST_FIELDS}
        else:
            body["schema_version"] = version
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

"""The gateway commit log (SPEC 4): an append-only audit of every submitted order batch.

A record is the JSON array ``["gateway.rebalance", ts_ms, batch_id, payload]``; the gateway
builds ``payload`` (``event, version, world_id, scope, orders, counts, reduce_only_ratio,
submitted_at``) and the log stores it exactly as given.

One ``execute`` appends all its batches and its ``run_id`` entry in ONE atomic step, so a
batch is never half-submitted and a repeated ``run_id`` never writes twice:

* new ``run_id`` (or ``None``) → every record is written, ``replayed=False``;
* known ``run_id`` with the same ``body_hash`` → nothing is written, the stored response
  comes back with ``replayed=True``;
* known ``run_id`` with another ``body_hash`` → :class:`RunIdConflict`, nothing written;
* the backend fails → :class:`CommitLogUnavailable`, nothing written. (Only when the
  backend times out *after* receiving the append can it have been written; the error then
  says so, and retrying with the same ``run_id`` tells the caller which happened.)

Everything is JSON-encoded (``allow_nan=False``) before the backend is touched, so a bad
payload fails with ``ValueError`` and writes nothing.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qmtl.contracts import ComponentHealth
from qmtl.contracts.errors import RunIdConflict

__all__ = [
    "REBALANCE_TOPIC",
    "AppendResult",
    "CommitLog",
    "CommitRecord",
    "EncodedAppend",
    "encode_append",
    "stored_run_result",
]

logger = logging.getLogger(__name__)

REBALANCE_TOPIC = "gateway.rebalance"


def dump_json(value: Any, *, what: str) -> str:
    """Compact JSON for storage; ``ValueError`` naming ``what`` when it cannot be encoded
    (a non-JSON type, NaN or ±inf)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} cannot be JSON-encoded: {exc}") from exc


@dataclass(frozen=True)
class CommitRecord:
    """One batch: the wire array ``[topic, ts_ms, batch_id, payload]``.

    ``ts_ms`` is milliseconds since the Unix epoch; ``batch_id`` is unique in the log.
    """

    topic: str
    ts_ms: int
    batch_id: str
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        if self.topic != REBALANCE_TOPIC:
            raise ValueError(f"topic must be {REBALANCE_TOPIC!r}, got {self.topic!r}")
        if isinstance(self.ts_ms, bool) or not isinstance(self.ts_ms, int) or self.ts_ms < 0:
            raise ValueError(f"ts_ms must be an integer >= 0 (epoch ms), got {self.ts_ms!r}")
        if not isinstance(self.batch_id, str) or not self.batch_id:
            raise ValueError(f"batch_id must be a non-empty string, got {self.batch_id!r}")
        if not isinstance(self.payload, dict):
            raise ValueError(f"payload must be a dict, got {type(self.payload).__name__}")

    @classmethod
    def rebalance(cls, *, ts_ms: int, batch_id: str, payload: dict[str, Any]) -> CommitRecord:
        """A ``gateway.rebalance`` record."""
        return cls(REBALANCE_TOPIC, ts_ms, batch_id, payload)

    def to_wire(self) -> list[Any]:
        """``["gateway.rebalance", ts_ms, batch_id, payload]``."""
        return [self.topic, self.ts_ms, self.batch_id, self.payload]

    @classmethod
    def from_wire(cls, wire: Any) -> CommitRecord:
        """The record of a wire array (as stored).

        Raises:
            ValueError: ``wire`` is not a 4-element array of the record's shape.
        """
        if not isinstance(wire, list) or len(wire) != 4:
            raise ValueError(f"a commit record is a 4-element array, got {wire!r:.200}")
        topic, ts_ms, batch_id, payload = wire
        return cls(topic, ts_ms, batch_id, payload)


@dataclass(frozen=True)
class AppendResult:
    """What :meth:`CommitLog.append` did.

    ``batch_ids`` are the batches of this run (for a replay, those written the first time);
    ``response`` is the stored response of a replayed run and ``None`` otherwise.
    """

    batch_ids: list[str]
    replayed: bool
    response: dict[str, Any] | None


def stored_run_result(run_id: str, *, body_hash: str, stored_hash: str, response_json: str,
                      batch_ids_json: str) -> AppendResult:
    """The answer for a run that is already in the log: its stored response, or a 409.

    Raises:
        RunIdConflict: the run was committed with a different body.
    """
    if stored_hash != body_hash:
        raise RunIdConflict(f"run_id {run_id!r} was already used with a different body",
                            run_id=run_id)
    logger.info("run %s already committed; replaying its response", run_id,
                extra={"run_id": run_id})
    return AppendResult(batch_ids=json.loads(batch_ids_json), replayed=True,
                        response=json.loads(response_json))


@dataclass(frozen=True)
class EncodedAppend:
    """An append, validated and JSON-encoded before any backend is touched."""

    records: list[tuple[CommitRecord, str]]
    run_id: str | None
    body_hash: str
    response_json: str

    @property
    def batch_ids(self) -> list[str]:
        return [record.batch_id for record, _ in self.records]

    @property
    def batch_ids_json(self) -> str:
        return json.dumps(self.batch_ids)


def encode_append(records: Sequence[CommitRecord], *, run_id: str | None, body_hash: str,
                  response: dict[str, Any]) -> EncodedAppend:
    """Validate and encode one append.

    Raises:
        ValueError: a record is not a :class:`CommitRecord`, two records share a
            ``batch_id``, ``run_id``/``body_hash`` are not strings, or a payload or the
            response cannot be JSON-encoded — naming the culprit.
    """
    if run_id is not None and not isinstance(run_id, str):
        raise ValueError(f"run_id must be a string or None, got {run_id!r}")
    if not isinstance(body_hash, str) or not body_hash:
        raise ValueError(f"body_hash must be a non-empty string, got {body_hash!r}")
    if not isinstance(response, dict):
        raise ValueError(f"response must be a dict, got {type(response).__name__}")
    encoded: list[tuple[CommitRecord, str]] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        if not isinstance(record, CommitRecord):
            raise ValueError(f"records[{index}] must be a CommitRecord, got "
                             f"{type(record).__name__}")
        if record.batch_id in seen:
            raise ValueError(f"records[{index}].batch_id {record.batch_id!r} is repeated")
        seen.add(record.batch_id)
        encoded.append((record, dump_json(
            record.to_wire(), what=f"records[{index}] (batch_id {record.batch_id!r})")))
    return EncodedAppend(records=encoded, run_id=run_id, body_hash=body_hash,
                         response_json=dump_json(response, what="response"))


def decode_record(text: str | bytes) -> CommitRecord:
    """The record stored as ``text``."""
    return CommitRecord.from_wire(json.loads(text))


class CommitLog(ABC):
    """An atomic, idempotent (by ``run_id``) append-only log of order batches."""

    url: str

    @abstractmethod
    async def start(self) -> None:
        """Open the backend (create folders and tables). Idempotent.

        Raises:
            CommitLogUnavailable: a SQLite file cannot be opened or created. (An unreachable
                Redis only logs a warning here: every later call reports it itself.)
        """

    @abstractmethod
    async def close(self) -> None:
        """Release the backend. Idempotent; a closed log refuses further calls."""

    @abstractmethod
    async def append(self, records: Sequence[CommitRecord], *, run_id: str | None,
                     body_hash: str, response: dict[str, Any]) -> AppendResult:
        """Write every record and the run entry atomically (see the module docstring).

        Raises:
            RunIdConflict: ``run_id`` was used with another ``body_hash`` (context ``run_id``).
            CommitLogUnavailable: the backend failed; nothing was written.
            ValueError: the arguments are invalid or cannot be JSON-encoded, or a
                ``batch_id`` is already in the log; nothing was written.
        """

    @abstractmethod
    async def replay(self, run_id: str, *, body_hash: str) -> AppendResult | None:
        """The stored result of ``run_id`` if it was committed (``replayed=True``), else None.

        Lets a repeated submit answer without planning again (and while the WorldService is
        down); :meth:`append` still decides races atomically.

        Raises:
            RunIdConflict: the run was committed with another ``body_hash``.
            CommitLogUnavailable: the backend failed.
        """

    @abstractmethod
    async def tail(self, *, limit: int = 50) -> list[CommitRecord]:
        """The newest ``limit`` records, newest last.

        Raises:
            CommitLogUnavailable: the backend failed.
            ValueError: ``limit`` < 0.
        """

    @abstractmethod
    async def health(self) -> ComponentHealth:
        """``ok`` when the backend answers, ``down`` with a detail otherwise."""


def check_tail_limit(limit: int) -> int:
    """``limit`` as given, or ``ValueError`` naming it when it is not an int ≥ 0."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be an integer >= 0, got {limit!r}")
    return limit

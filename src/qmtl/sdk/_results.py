"""Typed views of plan / apply / execute documents for strategy code.

A :class:`RebalanceResult` exposes the raw ``document``, the ``schema_version`` it was served
at and its parsed ``alpha_metrics`` — only when the document is v2 *and* carries the
envelope. A v1 document gives ``None`` even if it has a stray ``alpha_metrics`` key: v1 has no
metrics, and reading them anyway would be the silent mis-parse SPEC 1 forbids.

A metric reported as ``0.0`` may be a real zero, a value undefined for its series (profit
factor without a losing period) or "no data". :meth:`RebalanceResult.undefined` and
:meth:`RebalanceResult.observations` read the envelope's ``coverage`` block to tell them apart;
both answer ``None`` when the WorldService sent no coverage (an older version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qmtl.contracts import AlphaCoverage, AlphaMetricsEnvelope, SeriesCoverage, parse_alpha_metrics

from ._errors import GatewayError

__all__ = ["RebalanceResult", "document_schema_version"]


def document_schema_version(document: dict[str, Any]) -> int:
    """The version a document was served at.

    ``schema_version`` (plan/apply) or ``rebalance_schema_version`` (execute); 1 when neither
    is present (a v1 gateway).

    Raises:
        GatewayError: the version is present but not an integer ≥ 1.
    """
    for key in ("schema_version", "rebalance_schema_version"):
        if key in document:
            value = document[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GatewayError(f"the gateway answered {key}={value!r}: not an integer >= 1")
            return value
    return 1


@dataclass(frozen=True, slots=True)
class RebalanceResult:
    """A plan, apply or execute answer.

    Attributes:
        document: the JSON document as the gateway returned it.
        schema_version: the served version (see :func:`document_schema_version`).
        alpha_metrics: the parsed envelope (unknown keys and non-finite values dropped), or
            ``None`` when the document is v1 or has no envelope.
    """

    document: dict[str, Any] = field(repr=False)
    schema_version: int
    alpha_metrics: AlphaMetricsEnvelope | None

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> RebalanceResult:
        """Read a document (see the module docstring).

        Raises:
            GatewayError: the version field is malformed.
        """
        version = document_schema_version(document)
        metrics = parse_alpha_metrics(document.get("alpha_metrics")) if version >= 2 else None
        return cls(document=document, schema_version=version, alpha_metrics=metrics)

    @property
    def run_id(self) -> str | None:
        """The apply/execute run id, when the document has one."""
        value = self.document.get("run_id")
        return value if isinstance(value, str) else None

    @property
    def coverage(self) -> AlphaCoverage | None:
        """The envelope's ``coverage`` block, or ``None`` (v1, or a WorldService without it)."""
        return self.alpha_metrics.coverage if self.alpha_metrics is not None else None

    def _entry(self, world_id: str, strategy_id: str | None) -> SeriesCoverage | None:
        coverage = self.coverage
        if coverage is None:
            return None
        if strategy_id is None:
            return coverage.per_world.get(world_id)
        return coverage.per_strategy.get(strategy_id, {}).get(world_id)

    def undefined(self, world_id: str, strategy_id: str | None = None) -> frozenset[str] | None:
        """The metric keys reported as the ``0.0`` default because they are undefined.

        Args:
            world_id: the world.
            strategy_id: a strategy of that world, or ``None`` for the world's own entry.

        Returns:
            The keys (all six when the entry had no data), or ``None`` when the coverage of
            that entry is unknown.
        """
        entry = self._entry(world_id, strategy_id)
        return frozenset(entry.undefined) if entry is not None else None

    def observations(self, world_id: str, strategy_id: str | None = None) -> int | None:
        """How many periods the entry's metrics were computed from (0 = no data), or
        ``None`` when its coverage is unknown."""
        entry = self._entry(world_id, strategy_id)
        return entry.observations if entry is not None else None

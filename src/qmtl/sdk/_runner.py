"""The strategy-side runtime: capability-driven features, return recording, requests.

Feature rule (SPEC 1, 2.7): ``alpha_metrics`` is on iff the gateway is alpha capable **and**
the effective schema version (what its WorldService will actually serve) is ≥ 2. The rule is
re-evaluated every time the client's capabilities are refreshed (``capabilities_ttl``), so a
gateway that is reconfigured or upgraded flips the feature without restarting the strategy.

When the feature is on, requests ask for ``schema_version=2`` and carry the recorded returns
as ``alpha_series.per_strategy``; when it is off both are stripped, so an old gateway or
WorldService never sees fields it cannot serve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from qmtl.contracts import AlphaSeries, MultiWorldRebalanceRequest, Series

from ._alpha import DEFAULT_WINDOW, AlphaPerformance, AlphaPerformanceGauges
from ._capabilities import Capabilities
from ._client import GatewayClient, RequestLike
from ._results import RebalanceResult

__all__ = ["Features", "Runner"]

logger = logging.getLogger(__name__)

ALPHA_SCHEMA_VERSION = 2
"""The first plan schema version that carries alpha metrics."""


@dataclass(frozen=True, slots=True)
class Features:
    """Feature flags derived from the gateway's capabilities.

    Attributes:
        alpha_metrics: send return series and ask for v2 (see the module docstring).
        schema_version: the version requests ask for (2 with alpha metrics, else none/1).
        reason: why the flag has its value (for logs and operators).
        capabilities: the capabilities the flags were derived from (``None`` before the first
            read).
    """

    alpha_metrics: bool
    schema_version: int
    reason: str
    capabilities: Capabilities | None = None

    @classmethod
    def from_capabilities(cls, caps: Capabilities) -> Features:
        """Apply the feature rule to ``caps``."""
        effective = caps.effective_schema_version
        if not caps.reachable:
            reason = f"gateway unreachable: {caps.reason}"
        elif not caps.alpha_metrics_capable:
            reason = "gateway is not alpha_metrics_capable"
        elif effective is None:
            reason = "effective schema version unknown (WorldService versions not known yet)"
        elif effective < ALPHA_SCHEMA_VERSION:
            reason = f"effective schema version {effective} < {ALPHA_SCHEMA_VERSION}"
        else:
            return cls(True, ALPHA_SCHEMA_VERSION,
                       f"alpha capable, effective schema version {effective}", caps)
        return cls(False, 1, reason, caps)


_NOT_READ = Features(False, 1, "capabilities not read yet")


class Runner:
    """Drives a strategy's rebalancing calls with features switched by gateway capabilities.

    Args:
        client: the gateway client (its ``capabilities_ttl`` sets how often the rule is
            re-evaluated).
        periods_per_year: P for every recorded stream.
        window: returns kept per (world, strategy).
        registry: where the ``alpha_performance_<metric>`` gauges go (a private registry
            when ``None``).
    """

    def __init__(self, client: GatewayClient, *, periods_per_year: float = 252,
                 window: int = DEFAULT_WINDOW, registry: CollectorRegistry | None = None) -> None:
        self.client = client
        self.periods_per_year = periods_per_year
        self.window = window
        self.registry = registry if registry is not None else CollectorRegistry()
        self._gauges = AlphaPerformanceGauges(self.registry)
        self._nodes: dict[tuple[str, str], AlphaPerformance] = {}
        self._features = _NOT_READ
        # Fail fast on a bad window / P instead of at the first record_return.
        AlphaPerformance(window=window, periods_per_year=periods_per_year)

    @property
    def features(self) -> Features:
        """The flags as last evaluated (call :meth:`refresh` to re-read the gateway)."""
        return self._features

    async def refresh(self, *, force: bool = False) -> Features:
        """Read the capabilities (cached by the client for its TTL) and re-apply the rule.

        Raises:
            CapabilityError: the gateway's health document has an invalid value.
        """
        caps = await self.client.capabilities(refresh=force)
        features = Features.from_capabilities(caps)
        if features.alpha_metrics != self._features.alpha_metrics:
            logger.info("alpha_metrics feature %s: %s",
                        "on" if features.alpha_metrics else "off", features.reason,
                        extra={"gateway": self.client.base_url})
        self._features = features
        return features

    # -- returns -----------------------------------------------------------------------------

    def record_return(self, world_id: str, strategy_id: str, r: Any) -> dict[str, float]:
        """Feed one period's return of ``strategy_id`` in ``world_id`` and export the gauges.

        Returns:
            The six metrics of that stream's window.

        Raises:
            AlphaInputError: ``r`` is ±inf or not a number.
            ValueError: an empty id.
        """
        if not world_id or not strategy_id:
            raise ValueError("world_id and strategy_id must be non-empty strings")
        node = self._nodes.get((world_id, strategy_id))
        if node is None:
            node = AlphaPerformance(window=self.window, periods_per_year=self.periods_per_year)
            self._nodes[(world_id, strategy_id)] = node
        metrics = node.update(r)
        self._gauges.set(world_id=world_id, strategy_id=strategy_id, metrics=metrics)
        return metrics

    def performance(self, world_id: str, strategy_id: str) -> AlphaPerformance | None:
        """The streaming node of one (world, strategy), if anything was recorded."""
        return self._nodes.get((world_id, strategy_id))

    def alpha_series(self) -> AlphaSeries | None:
        """The recorded returns as ``alpha_series.per_strategy`` (``None`` when empty)."""
        per_strategy: dict[str, dict[str, Series]] = {}
        for (world_id, strategy_id), node in sorted(self._nodes.items()):
            if len(node):
                per_strategy.setdefault(strategy_id, {})[world_id] = Series(
                    returns=list(node.returns))
        return AlphaSeries(per_strategy=per_strategy) if per_strategy else None

    # -- requests ----------------------------------------------------------------------------

    def build_request(self, base: RequestLike) -> MultiWorldRebalanceRequest:
        """``base`` adjusted to the current features (see the module docstring).

        With the feature on, the recorded series are merged into ``base.alpha_series``
        (series the caller already put there win) and ``schema_version`` is 2. With it off,
        ``alpha_series`` and ``schema_version`` are removed.

        Raises:
            pydantic.ValidationError: ``base`` is a mapping that is not a valid request.
        """
        request = (base if isinstance(base, MultiWorldRebalanceRequest)
                   else MultiWorldRebalanceRequest.model_validate(dict(base)))
        if not self._features.alpha_metrics:
            return request.model_copy(update={"alpha_series": None, "schema_version": None})
        return request.model_copy(update={
            "alpha_series": _merge_series(request.alpha_series, self.alpha_series()),
            "schema_version": ALPHA_SCHEMA_VERSION,
        })

    async def plan(self, base: RequestLike) -> RebalanceResult:
        """Refresh the features, build the request and plan it through the gateway."""
        await self.refresh()
        return RebalanceResult.from_document(await self.client.plan(self.build_request(base)))

    async def apply(self, base: RequestLike, *, run_id: str | None = None,
                    if_match: str | None = None) -> RebalanceResult:
        """Refresh the features, build the request and apply it through the gateway."""
        await self.refresh()
        document = await self.client.apply(self.build_request(base), run_id=run_id,
                                           if_match=if_match)
        return RebalanceResult.from_document(document)

    async def execute(self, base: RequestLike, *, per_strategy: bool = False,
                      shared_account: bool = False, submit: bool = False,
                      allow_live: bool = False) -> RebalanceResult:
        """Refresh the features, build the request and turn it into orders."""
        await self.refresh()
        document = await self.client.execute(
            self.build_request(base), per_strategy=per_strategy, shared_account=shared_account,
            submit=submit, allow_live=allow_live)
        return RebalanceResult.from_document(document)


def _merge_series(given: AlphaSeries | None, recorded: AlphaSeries | None) -> AlphaSeries | None:
    if given is None or recorded is None:
        return given or recorded
    per_strategy: dict[str, dict[str, Series]] = {
        strategy: dict(by_world) for strategy, by_world in recorded.per_strategy.items()
    }
    for strategy, by_world in given.per_strategy.items():
        per_strategy.setdefault(strategy, {}).update(by_world)
    return AlphaSeries(per_world=dict(given.per_world), per_strategy=per_strategy)

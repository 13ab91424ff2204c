"""``GET /health`` of the gateway (SPEC 2.7), built fresh for every request.

The document is assembled from immutable inputs only — the frozen settings, the
WorldService probe (a frozen dataclass replaced whole on every refresh) and the component
health objects each backend returns — so no route can change what another route reports.

``effective_rebalance_schema_version`` is the version the WorldService will actually serve
to this gateway: the best version common to ``gateway.rebalance_schema_version`` and the
WorldService's ``schema_versions``. A *legacy* WorldService (``/health`` answers 404, as the
original platform's does, or lists no versions) is reported ``ok`` with ``legacy: true``
while its routes answer; its effective version is the one it served when last asked at the
configured version, 1 before that (the gateway always falls back to v1 for it). ``None``
while nothing is known (never reached).
"""

from __future__ import annotations

from qmtl.contracts import ComponentHealth, GatewayCapabilities, GatewayHealth
from qmtl.controlbus import ControlBus
from qmtl.gateway.commitlog import CommitLog

from .config import GatewaySettings
from .probe import WorldServiceProbe
from .worldservice_client import WorldServiceClient

__all__ = ["build_health", "worldservice_component"]


def worldservice_component(probe: WorldServiceProbe, *, configured_version: int,
                           breaker_state: str, effective: int | None,
                           routes_missing: bool = False) -> ComponentHealth:
    """The WorldService as a component; ``degraded`` when it requires a version this
    gateway will not send, or when it is legacy and its plan/apply routes answered 404."""
    status, detail = probe.status, probe.detail
    if status not in ("ok", "down", "degraded"):
        status = "unknown"
    if status == "ok" and probe.legacy and routes_missing:
        status = "degraded"
        detail = ("no /health and /rebalancing answered 404: is gateway.worldservice_url the "
                  "WorldService?")
    if status == "ok" and probe.alpha_metrics_required and (effective or 0) < 2:
        status = "degraded"
        detail = (
            "the WorldService requires schema_version>=2 but gateway.rebalance_schema_version "
            f"is {configured_version}: plan/apply/execute will be refused"
        )
    extra: dict[str, object] = {"breaker": breaker_state}
    if probe.legacy:
        extra["legacy"] = True
    if probe.schema_versions is not None:
        extra["schema_versions"] = list(probe.schema_versions)
    return ComponentHealth(status=status, detail=detail, **extra)


async def build_health(*, settings: GatewaySettings, client: WorldServiceClient,
                       bus: ControlBus, commit_log: CommitLog,
                       refresh: bool = True) -> GatewayHealth:
    """A new :class:`GatewayHealth`; probes the WorldService first when ``refresh``."""
    probe = await client.refresh() if refresh else client.probe
    versions = list(probe.schema_versions) if probe.schema_versions is not None else None
    effective = client.effective_version()
    worldservice = worldservice_component(
        probe, configured_version=settings.rebalance_schema_version,
        breaker_state=client.breaker.state.value, effective=effective,
        routes_missing=client.routes_missing)
    controlbus = await bus.health()
    commit_log_health = await commit_log.health()
    components = (worldservice, controlbus, commit_log_health)
    capabilities = GatewayCapabilities(
        rebalance_schema_version=settings.rebalance_schema_version,
        alpha_metrics_capable=settings.alpha_metrics_capable,
        compute_context_contract=settings.compute_context_contract,
    )
    return GatewayHealth(
        status="ok" if all(c.status == "ok" for c in components) else "degraded",
        worldservice=worldservice,
        controlbus=controlbus,
        commit_log=commit_log_health,
        capabilities=capabilities,
        rebalance_schema_version=settings.rebalance_schema_version,
        alpha_metrics_capable=settings.alpha_metrics_capable,
        effective_rebalance_schema_version=effective,
        worldservice_schema_versions=versions,
        worldservice_alpha_metrics_required=probe.alpha_metrics_required,
    )

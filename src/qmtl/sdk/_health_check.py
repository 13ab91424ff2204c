"""The pre-rollout gateway check behind ``qmtl check-health`` and
``scripts/check_gateway_health.py`` (SPEC 2.7, seed "check_gateway_health").

Passes when the gateway's *advertised* and *effective* plan schema versions are both ≥ the
expected version (and, when asked, the gateway is alpha capable). The effective version is
what the WorldService behind the gateway will actually serve, so a gateway advertising v2 in
front of a v1-only WorldService fails the check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ._capabilities import Capabilities
from ._client import GatewayClient
from ._errors import CapabilityError, GatewayHTTPError, GatewayUnavailable

__all__ = ["HealthCheckResult", "check_gateway_health", "check_gateway_health_sync"]


@dataclass(frozen=True, slots=True)
class HealthCheckResult:
    """The outcome of a gateway check.

    Attributes:
        ok: every expectation holds.
        gateway: the URL checked.
        problems: one line per failed expectation (empty when ``ok``).
        status: the gateway's ``status`` (``None`` when it could not be read).
        capabilities: the parsed capabilities (``None`` when they could not be read).
        components: each dependency's state.
    """

    ok: bool
    gateway: str
    problems: tuple[str, ...]
    status: str | None = None
    capabilities: Capabilities | None = None
    components: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        caps = self.capabilities
        return {
            "ok": self.ok,
            "gateway": self.gateway,
            "status": self.status,
            "rebalance_schema_version": caps.rebalance_schema_version if caps else None,
            "effective_schema_version": caps.effective_schema_version if caps else None,
            "alpha_metrics_capable": caps.alpha_metrics_capable if caps else None,
            "components": dict(self.components),
            "problems": list(self.problems),
        }


async def check_gateway_health(client: GatewayClient, *, expect_schema_version: int,
                               expect_alpha_metrics: bool = False) -> HealthCheckResult:
    """Check a gateway against the expected schema version and alpha capability.

    Args:
        client: a client of the gateway to check.
        expect_schema_version: N; advertised and effective versions must both be ≥ N.
        expect_alpha_metrics: also require ``alpha_metrics_capable``.

    Returns:
        The result; never raises for an unreachable or misconfigured gateway (those are
        failed checks with the reason in ``problems``).
    """
    if isinstance(expect_schema_version, bool) or expect_schema_version < 1:
        raise ValueError(f"expect_schema_version must be >= 1, got {expect_schema_version!r}")
    url = client.base_url
    try:
        view = await client.health()
    except GatewayUnavailable as exc:
        return HealthCheckResult(False, url, (f"gateway unreachable: {exc.reason}",))
    except GatewayHTTPError as exc:
        return HealthCheckResult(False, url, (f"/health answered {exc}",))
    except CapabilityError as exc:
        return HealthCheckResult(False, url, (f"invalid capability {exc}",))
    caps = view.capabilities
    problems: list[str] = []
    advertised = caps.rebalance_schema_version
    if advertised < expect_schema_version:
        problems.append(f"gateway advertises rebalance_schema_version={advertised}, "
                        f"expected >= {expect_schema_version}")
    effective = caps.effective_schema_version
    if effective is None:
        problems.append("effective schema version unknown: the gateway does not know what its "
                        f"WorldService serves (worldservice: "
                        f"{view.components.get('worldservice', 'unknown')})")
    elif effective < expect_schema_version:
        problems.append(f"effective schema version is {effective} (what the WorldService will "
                        f"serve), expected >= {expect_schema_version}")
    if expect_alpha_metrics and not caps.alpha_metrics_capable:
        problems.append("gateway is not alpha_metrics_capable")
    return HealthCheckResult(not problems, url, tuple(problems), status=view.status,
                             capabilities=caps, components=dict(view.components))


def check_gateway_health_sync(gateway: str, *, expect_schema_version: int,
                              expect_alpha_metrics: bool = False, token: str | None = None,
                              timeout: float = 10.0) -> HealthCheckResult:
    """:func:`check_gateway_health` for scripts: opens a client, checks, closes."""

    async def run() -> HealthCheckResult:
        async with GatewayClient(gateway, token=token, timeout=timeout) as client:
            return await check_gateway_health(client, expect_schema_version=expect_schema_version,
                                              expect_alpha_metrics=expect_alpha_metrics)

    return asyncio.run(run())

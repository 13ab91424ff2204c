"""The pre-rollout gateway check behind ``qmtl check-health`` and
``scripts/check_gateway_health.py`` (SPEC 2.7, seed "check_gateway_health").

Two version checks, on both the gateway's *advertised* and its *effective* plan schema
version: ``expect_schema_version=N`` requires exactly N (a canary that must serve v1 fails
against a v2 gateway), ``min_schema_version=N`` requires at least N. Optionally the gateway
must be alpha capable. The effective version is what the WorldService behind the gateway will
actually serve, so a gateway advertising v2 in front of a v1-only WorldService fails.
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


def _version_problems(what: str, version: int, *, exact: int | None,
                      minimum: int | None) -> list[str]:
    problems = []
    if exact is not None and version != exact:
        problems.append(f"{what} is {version}, expected exactly {exact}")
    if minimum is not None and version < minimum:
        problems.append(f"{what} is {version}, expected >= {minimum}")
    return problems


def _check_version_argument(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


async def check_gateway_health(client: GatewayClient, *, expect_schema_version: int | None = None,
                               min_schema_version: int | None = None,
                               expect_alpha_metrics: bool = False) -> HealthCheckResult:
    """Check a gateway against the expected schema version and alpha capability.

    Args:
        client: a client of the gateway to check.
        expect_schema_version: N; advertised and effective versions must both be exactly N.
        min_schema_version: N; advertised and effective versions must both be >= N.
        expect_alpha_metrics: also require ``alpha_metrics_capable``.

    Returns:
        The result; never raises for an unreachable or misconfigured gateway (those are
        failed checks with the reason in ``problems``).

    Raises:
        ValueError: a version argument is not an integer >= 1.
    """
    _check_version_argument("expect_schema_version", expect_schema_version)
    _check_version_argument("min_schema_version", min_schema_version)
    url = client.base_url
    try:
        if await client.looks_like_worldservice():
            return HealthCheckResult(False, url, (
                "this URL answers like a WorldService, not a gateway: check the gateway "
                "(qmtl up serves it on port 8000, the WorldService on 8080)",))
        view = await client.health()
    except GatewayUnavailable as exc:
        return HealthCheckResult(False, url, (f"gateway unreachable: {exc.reason}",))
    except GatewayHTTPError as exc:
        return HealthCheckResult(False, url, (f"/health answered {exc}",))
    except CapabilityError as exc:
        return HealthCheckResult(False, url, (f"invalid capability {exc}",))
    caps = view.capabilities
    versions = {"exact": expect_schema_version, "minimum": min_schema_version}
    problems = _version_problems("advertised rebalance_schema_version",
                                 caps.rebalance_schema_version, **versions)
    effective = caps.effective_schema_version
    if effective is None:
        problems.append("effective schema version unknown: the gateway does not know what its "
                        f"WorldService serves (worldservice: "
                        f"{view.components.get('worldservice', 'unknown')})")
    else:
        problems += _version_problems(
            "effective schema version (what the WorldService will serve)", effective, **versions)
    if expect_alpha_metrics and not caps.alpha_metrics_capable:
        problems.append("gateway is not alpha_metrics_capable")
    return HealthCheckResult(not problems, url, tuple(problems), status=view.status,
                             capabilities=caps, components=dict(view.components))


def check_gateway_health_sync(gateway: str, *, expect_schema_version: int | None = None,
                              min_schema_version: int | None = None,
                              expect_alpha_metrics: bool = False, token: str | None = None,
                              timeout: float = 10.0) -> HealthCheckResult:
    """:func:`check_gateway_health` for scripts: opens a client, checks, closes."""

    async def run() -> HealthCheckResult:
        async with GatewayClient(gateway, token=token, timeout=timeout) as client:
            return await check_gateway_health(client, expect_schema_version=expect_schema_version,
                                              min_schema_version=min_schema_version,
                                              expect_alpha_metrics=expect_alpha_metrics)

    return asyncio.run(run())

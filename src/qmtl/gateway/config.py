"""Gateway settings (section ``gateway`` of the QMTL config file, SPEC 5).

Load them with :func:`load_gateway_settings` (YAML file, then ``QMTL__GATEWAY__…``
environment variables, then command-line overrides). Every model forbids unknown keys so a
typo is an error naming the dotted key, and booleans are parsed strictly by pydantic
(``"false"`` is false, ``"maybe"`` is an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qmtl.contracts import LATEST_SCHEMA_VERSION
from qmtl.controlbus import check_controlbus_url
from qmtl.engine import VenuePolicy
from qmtl.settings import AuthSettings, check_redis_url, load_section

__all__ = [
    "DEFAULT_COMMIT_LOG_URL",
    "AuthSettings",
    "BindSettings",
    "BreakerSettings",
    "GatewaySettings",
    "RetrySettings",
    "SharedAccountPolicy",
    "TimeoutSettings",
    "WebSocketSettings",
    "load_gateway_settings",
]

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
OptionalLimit = Annotated[float | None, Field(default=None, ge=0, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeoutSettings(_Section):
    """``httpx.Timeout`` for WorldService calls, in seconds."""

    connect: PositiveSeconds = 5.0
    read: PositiveSeconds = 30.0
    write: PositiveSeconds = 30.0
    pool: PositiveSeconds = 5.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write,
                             pool=self.pool)


class RetrySettings(_Section):
    """Retries of *safe* WorldService calls (``GET /health``) after connection errors.

    ``attempts`` counts every try (1 = no retry); the n-th retry waits ``backoff · 2^(n-1)``
    seconds.
    """

    attempts: int = Field(default=3, ge=1, le=10)
    backoff: float = Field(default=0.1, ge=0, le=30, allow_inf_nan=False)


class BreakerSettings(_Section):
    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout: PositiveSeconds = 10.0


class SharedAccountPolicy(_Section):
    """Shared-account netting (SPEC 4); limits in base currency, headroom as a ratio."""

    enabled: bool = False
    max_gross_notional: OptionalLimit = None
    max_net_notional: OptionalLimit = None
    min_margin_headroom: float | None = Field(default=None, le=1, allow_inf_nan=False)


class BindSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)



class WebSocketSettings(_Section):
    """``history_size``: events kept for ``since_seq`` resume; ``client_queue_size``: live
    events a client may have waiting before it is disconnected (close 1013)."""

    history_size: int = Field(default=1000, ge=1, le=1_000_000)
    client_queue_size: int = Field(default=1024, ge=1, le=1_000_000)


DEFAULT_COMMIT_LOG_URL = "sqlite:///./.qmtl/commitlog.db"


def _check_scheme(value: str, allowed: tuple[str, ...], what: str) -> str:
    scheme = urlsplit(value).scheme.lower()
    if "://" not in value or scheme not in allowed:
        raise ValueError(
            f"{what} URL {value!r} must start with one of "
            + ", ".join(f"{s}://" for s in allowed)
        )
    return value


def _check_bus_url(url: str) -> str:
    if url.lower().startswith("redis"):
        check_redis_url(url, extra_params=frozenset({"retention"}))
    return url


class GatewaySettings(_Section):
    """Everything the gateway reads at start-up; see SPEC 5 for the keys."""

    worldservice_url: str = "http://127.0.0.1:8080"
    worldservice_token: str | None = None
    rebalance_schema_version: int = Field(default=1, ge=1, le=LATEST_SCHEMA_VERSION)
    alpha_metrics_capable: bool = False
    compute_context_contract: str | None = None
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    retries: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    capability_refresh_seconds: PositiveSeconds = 30.0
    enforce_live_guard: bool = True
    shared_account_policy: SharedAccountPolicy = Field(default_factory=SharedAccountPolicy)
    venue_policies: dict[str, VenuePolicy] = Field(default_factory=dict)
    default_venue_policy: VenuePolicy = Field(default_factory=VenuePolicy)
    commit_log: str = DEFAULT_COMMIT_LOG_URL
    controlbus: str = "memory://"
    bind: BindSettings = Field(default_factory=BindSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    ws: WebSocketSettings = Field(default_factory=WebSocketSettings)
    max_body_bytes: int = Field(default=256 * 1024 * 1024, ge=0)

    @field_validator("worldservice_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        _check_scheme(value, ("http", "https"), "worldservice")
        return value.rstrip("/")

    @field_validator("commit_log")
    @classmethod
    def _commit_log_url(cls, value: str) -> str:
        _check_scheme(value, ("sqlite", "redis", "rediss"), "commit_log")
        return value if value.lower().startswith("sqlite") else check_redis_url(value)

    @field_validator("controlbus")
    @classmethod
    def _controlbus_url(cls, value: str) -> str:
        return _check_bus_url(check_controlbus_url(value))

    @model_validator(mode="after")
    def _capability_bits_agree(self) -> GatewaySettings:
        if self.alpha_metrics_capable and self.rebalance_schema_version < 2:
            raise ValueError(
                "gateway.alpha_metrics_capable=true needs gateway.rebalance_schema_version>=2 "
                f"(it is {self.rebalance_schema_version}): alpha metrics only exist in plan "
                "schema v2"
            )
        return self


def load_gateway_settings(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> GatewaySettings:
    """The ``gateway`` section: file, then ``QMTL__GATEWAY__…``, then ``overrides``.

    Raises:
        ConfigError: naming the dotted key of every invalid value.
    """
    return load_section(GatewaySettings, ("gateway",), path=path, environ=environ,
                        overrides=overrides)

"""WorldService settings: the ``worldservice.server`` section of the QMTL configuration.

Loaded once, in the CLI, with :func:`load_settings` (YAML file + ``QMTL__WORLDSERVICE__SERVER__…``
environment overrides); tests build :class:`WorldServiceSettings` directly. Unknown keys,
junk booleans, a DSN that is neither SQLite nor PostgreSQL, and ``alpha_metrics_required``
without ``compat_rebalance_v2`` are errors naming the dotted key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qmtl.contracts import check_identifier, check_version_config
from qmtl.controlbus import check_controlbus_url
from qmtl.settings import AuthSettings, check_redis_url, load_section

__all__ = [
    "DEFAULT_CONTROLBUS_URL",
    "DEFAULT_DSN",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_POSITIONS",
    "DEFAULT_SOURCE",
    "SECTION",
    "AuthSettings",
    "BindSettings",
    "RelaySettings",
    "WorldServiceSettings",
    "load_settings",
    "normalize_dsn",
]

SECTION: tuple[str, str] = ("worldservice", "server")
_KEY = ".".join(SECTION)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BindSettings(_Section):
    """Where ``qmtl worldservice serve`` listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)



class RelaySettings(_Section):
    """Outbox relay timing (seconds) and batch size (rows per cycle).

    A failed publish is retried after ``min(backoff_max, backoff_initial · 2^(attempts−1))``
    seconds; ``poll_interval`` is the fallback poll for rows committed by other replicas or
    left over from a restart (an apply in this process wakes the relay at once).
    """

    poll_interval: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    backoff_initial: float = Field(default=0.2, gt=0, allow_inf_nan=False)
    backoff_max: float = Field(default=30.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _backoff_bounds(self) -> RelaySettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")
        return self


def normalize_dsn(dsn: str) -> str:
    """The async-driver form of a SQLite or PostgreSQL DSN.

    ``sqlite:///f`` → ``sqlite+aiosqlite:///f``; ``postgresql://…`` and ``postgres://…`` →
    ``postgresql+asyncpg://…``; the async forms are kept as they are.

    Raises:
        ValueError: any other scheme or driver, or an in-memory SQLite database (requests
            and the outbox relay need separate connections to one database, which a
            ``:memory:`` database cannot give) — the caller names the key.
    """
    scheme, sep, rest = dsn.strip().partition("://")
    if not sep or not rest:
        raise ValueError(f"{dsn!r} is not a database URL (sqlite:///FILE or postgresql://…)")
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        path = rest[1:].partition("?")[0] if rest.startswith("/") else ""
        if not path or path == ":memory:" or path.startswith("file::memory:"):
            raise ValueError(f"{dsn!r}: the WorldService store must be a SQLite file "
                             "(sqlite:///PATH), not an in-memory database")
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(
        f"unsupported database scheme {scheme!r}: use sqlite:///FILE (aiosqlite) or "
        "postgresql://… (asyncpg)"
    )


class WorldServiceSettings(_Section):
    """``worldservice.server.*`` (SPEC 5)."""

    dsn: str = Field(default_factory=lambda: DEFAULT_DSN)
    controlbus: str = Field(default_factory=lambda: DEFAULT_CONTROLBUS_URL)
    compat_rebalance_v2: bool = False
    alpha_metrics_required: bool = False
    bind: BindSettings = Field(default_factory=BindSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    max_body_bytes: int = Field(default_factory=lambda: DEFAULT_MAX_BODY_BYTES, ge=1)
    max_positions: int = Field(default_factory=lambda: DEFAULT_MAX_POSITIONS, ge=1)
    periods_per_year: float = Field(default=252.0, gt=0, allow_inf_nan=False)
    source: str = Field(default_factory=lambda: DEFAULT_SOURCE, min_length=1)
    store_timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    legacy_request_digest: bool = False
    """Store the pre-columnar request digest (slower) so that replicas of an older release
    sharing the store still recognise a replayed apply: set during a rolling upgrade."""

    @field_validator("dsn")
    @classmethod
    def _async_dsn(cls, dsn: str) -> str:
        return normalize_dsn(dsn)

    @field_validator("source")
    @classmethod
    def _event_source(cls, source: str) -> str:
        # Every event carries it: a bad one must stop the start, not the first apply.
        return check_identifier(source)

    @field_validator("controlbus")
    @classmethod
    def _known_bus(cls, url: str) -> str:
        url = check_controlbus_url(url)
        if url.lower().startswith("redis"):
            check_redis_url(url, extra_params=frozenset({"retention"}))
        return url

    @model_validator(mode="after")
    def _valid_version_flags(self) -> WorldServiceSettings:
        check_version_config(
            compat_rebalance_v2=self.compat_rebalance_v2,
            alpha_metrics_required=self.alpha_metrics_required,
            section=_KEY,
        )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.dsn.startswith("sqlite+")


def load_settings(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> WorldServiceSettings:
    """``worldservice.server`` from ``path`` (optional), the environment and CLI overrides.

    Raises:
        qmtl.contracts.errors.ConfigError: naming the first bad dotted key.
    """
    return load_section(WorldServiceSettings, SECTION, path=path, environ=environ,
                        overrides=overrides)


DEFAULT_DSN = "sqlite+aiosqlite:///./.qmtl/worldservice.db"
DEFAULT_CONTROLBUS_URL = "memory://"
DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_POSITIONS = 2_000_000
DEFAULT_SOURCE = "qmtl.worldservice"

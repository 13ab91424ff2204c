"""The ControlBus: the WorldService publishes ``rebalancing_planned`` events, gateways consume.

``create_controlbus(url)`` picks the backend from the URL scheme:

* ``memory://`` or ``memory://<name>`` — :class:`MemoryControlBus`, shared by name within
  the process (``memory://`` is the name ``"default"``);
* ``redis://…`` / ``rediss://…`` — :class:`RedisStreamsControlBus`.

Both accept an optional ``?retention=<n>`` query (entries kept per topic; defaults 10,000
in memory and 100,000 in Redis).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qmtl.contracts.errors import ConfigError

from .base import BusMessage, ControlBus, ControlBusError, Subscription
from .memory import DEFAULT_MEMORY_RETENTION, MemoryControlBus, get_memory_bus
from .redis_streams import DEFAULT_REDIS_RETENTION, RedisStreamsControlBus, redact

__all__ = [
    "DEFAULT_MEMORY_RETENTION",
    "DEFAULT_REDIS_RETENTION",
    "BusMessage",
    "ControlBus",
    "ControlBusError",
    "MemoryControlBus",
    "RedisStreamsControlBus",
    "Subscription",
    "check_controlbus_url",
    "create_controlbus",
]


def _split_retention(url: str) -> tuple[str, int | None]:
    """``url`` without its ``retention`` query parameter, and that parameter's value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    values = [value for key, value in query if key == "retention"]
    if not values:
        return url, None
    raw = values[-1]
    if not raw.isdecimal() or int(raw) < 1:
        raise ConfigError(
            f"controlbus URL parameter retention must be an integer >= 1, got {raw!r}",
            key="controlbus", url=redact(url),
        )
    rest = urlencode([(key, value) for key, value in query if key != "retention"])
    return urlunsplit(parts._replace(query=rest)), int(raw)


def check_controlbus_url(url: str) -> str:
    """Validate ``url`` without creating a bus (for configuration models).

    Returns:
        ``url`` stripped of surrounding spaces.

    Raises:
        ConfigError: no scheme, an unsupported scheme, or a bad ``retention``.
    """
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("memory", "redis", "rediss"):
        raise ConfigError(
            f"controlbus URL {url!r} is not supported: use memory://, redis:// or rediss://",
            key="controlbus",
        )
    _split_retention(url)
    return url


def create_controlbus(url: str) -> ControlBus:
    """The ControlBus that ``url`` names (see the module docstring).

    Raises:
        ConfigError: the URL scheme is not ``memory``, ``redis`` or ``rediss``, or its
            ``retention`` is not a positive integer.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"controlbus URL {url!r} has no scheme: use memory://, redis:// or rediss://",
            key="controlbus",
        )
    scheme = url.split("://", 1)[0].lower()
    base, retention = _split_retention(url)
    if scheme == "memory":
        name = urlsplit(base).netloc + urlsplit(base).path.rstrip("/") or "default"
        try:
            return get_memory_bus(name, retention=retention)
        except ValueError as exc:
            raise ConfigError(f"controlbus: {exc}", key="controlbus") from exc
    if scheme in ("redis", "rediss"):
        return RedisStreamsControlBus(base, retention=retention or DEFAULT_REDIS_RETENTION)
    raise ConfigError(
        f"controlbus URL scheme {scheme!r} is not supported: use memory://, redis:// or "
        "rediss://", key="controlbus", scheme=scheme,
    )

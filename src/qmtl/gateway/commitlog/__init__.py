"""The gateway commit log (SPEC 4): ``create_commit_log(url)`` picks the backend.

* ``sqlite:///<path>`` — :class:`SqliteCommitLog` (the default; a relative path after three
  slashes, an absolute one after four, as in SQLAlchemy URLs; ``sqlite://`` or
  ``sqlite:///`` alone means ``./.qmtl/commitlog.db``; ``sqlite:///:memory:`` for unit tests);
* ``redis://…`` / ``rediss://…`` — :class:`RedisCommitLog`.
"""

from __future__ import annotations

from qmtl.contracts.errors import ConfigError

from .base import REBALANCE_TOPIC, AppendResult, CommitLog, CommitRecord
from .redis_streams import RedisCommitLog
from .sqlite import DEFAULT_SQLITE_PATH, SqliteCommitLog

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "REBALANCE_TOPIC",
    "AppendResult",
    "CommitLog",
    "CommitRecord",
    "RedisCommitLog",
    "SqliteCommitLog",
    "create_commit_log",
]


def create_commit_log(url: str, *, read_only: bool = False) -> CommitLog:
    """The commit log that ``url`` names (see the module docstring); ``read_only`` opens an
    existing SQLite file without creating anything (Redis is never created by a read).

    Raises:
        ConfigError: the URL scheme is not ``sqlite``, ``redis`` or ``rediss``.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"commit_log URL {url!r} has no scheme: use sqlite:///<path>, redis:// or "
            "rediss://", key="gateway.commit_log",
        )
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if "?" in path:
            raise ConfigError(f"commit_log URL {url!r}: sqlite URLs take no parameters",
                              key="gateway.commit_log")
        return SqliteCommitLog(path or DEFAULT_SQLITE_PATH, read_only=read_only)
    if scheme in ("redis", "rediss"):
        return RedisCommitLog(url)
    raise ConfigError(
        f"commit_log URL scheme {scheme!r} is not supported: use sqlite:///<path>, redis:// "
        "or rediss://", key="gateway.commit_log", scheme=scheme,
    )

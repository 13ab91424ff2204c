"""Start-up checks run by the ``serve`` commands and ``qmtl up`` before any server starts.

A store that cannot be opened — PostgreSQL unreachable or without the named database, a
SQLite file whose folder cannot be created or written — would otherwise fail inside
uvicorn's lifespan as a traceback and exit 3. Checked here, it is one line naming the key
(exit 2, bad configuration). What may legitimately come back later is not checked: an
unreachable Redis (bus or commit log) only logs a warning, and its users retry.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from qmtl.contracts.errors import CommitLogUnavailable, ConfigError, StoreUnavailable
from qmtl.gateway.config import GatewaySettings
from qmtl.worldservice.config import SECTION, WorldServiceSettings

__all__ = ["check_commit_log", "check_worldservice_store", "preflight"]

_DSN_KEY = ".".join((*SECTION, "dsn"))
_COMMIT_LOG_KEY = "gateway.commit_log"


def _root_cause(exc: BaseException) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    # SQLAlchemy's DBAPIError wraps the driver's error; its own text repeats the SQL.
    orig = getattr(cause, "orig", None)
    if isinstance(orig, BaseException):
        cause = orig
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


def _check_writable_folder(path: Path, key: str) -> None:
    folder = path.expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        reason = (
            f"{blocker} is not a folder"
            if not blocker.is_dir()
            else f"cannot create the folder {folder}: {exc.strerror}"
        )
        raise ConfigError(f"{key}: {path}: {reason}", key=key) from exc
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise ConfigError(f"{key}: {target} is not writable", key=key)


async def check_worldservice_store(settings: WorldServiceSettings) -> None:
    """Open the store and migrate it to head (what the server's start-up does first).

    Raises:
        ConfigError: naming ``worldservice.server.dsn`` and the driver's reason.
    """
    from qmtl.worldservice.store.database import Database, redact_dsn
    from qmtl.worldservice.store.migrate import upgrade

    if settings.is_sqlite:
        database = settings.dsn.partition(":///")[2].partition("?")[0]
        _check_writable_folder(Path(database), _DSN_KEY)
    db = Database.create(settings.dsn, timeout=settings.store_timeout)
    try:
        await upgrade(db)
    except StoreUnavailable as exc:
        raise ConfigError(
            f"{_DSN_KEY}: cannot open the store {redact_dsn(settings.dsn)}: {_root_cause(exc)}",
            key=_DSN_KEY,
        ) from exc
    finally:
        await db.dispose()


async def check_commit_log(settings: GatewaySettings) -> None:
    """Open a SQLite commit log once (a Redis one is not checked: it may come up later).

    Raises:
        ConfigError: naming ``gateway.commit_log`` and the reason.
    """
    from qmtl.gateway.commitlog import SqliteCommitLog, create_commit_log

    log = create_commit_log(settings.commit_log)
    if not isinstance(log, SqliteCommitLog):
        return
    try:
        if log.path != ":memory:":
            _check_writable_folder(Path(log.path), _COMMIT_LOG_KEY)
        await log.start()
    except CommitLogUnavailable as exc:
        raise ConfigError(
            f"{_COMMIT_LOG_KEY}: cannot open the commit log {log.path}: {_root_cause(exc)}",
            key=_COMMIT_LOG_KEY,
        ) from exc
    finally:
        await log.close()


def preflight(
    *, worldservice: WorldServiceSettings | None = None, gateway: GatewaySettings | None = None
) -> None:
    """Run the checks of the parts given (in a fresh event loop).

    Raises:
        ConfigError: the first part that cannot start, naming its key.
    """

    async def run() -> None:
        if worldservice is not None:
            await check_worldservice_store(worldservice)
        if gateway is not None:
            await check_commit_log(gateway)

    # The reason is in the ConfigError's one line; the stores' own error logs (printed by
    # logging's last-resort handler before logging is configured) would only repeat it.
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        asyncio.run(run())
    finally:
        logging.disable(previous)

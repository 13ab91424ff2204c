"""Prometheus exposition, structured (JSON) logging and secret redaction in server logs,
shared by both services."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = [
    "JsonLogFormatter",
    "QuerySecretFilter",
    "configure_logging",
    "metrics_router",
    "redact_query_secrets",
    "redact_secrets_in_server_logs",
]

SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")
"""uvicorn logs each request line on ``uvicorn.access`` and each WebSocket handshake on
``uvicorn.error``, both with the query string."""
_QUERY_SECRET = re.compile(r"([?&](?:access_)?token=)[^&#\s\"']*", re.IGNORECASE)

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def metrics_router(registry: CollectorRegistry) -> APIRouter:
    """``GET /metrics`` in the Prometheus text format, for ``registry``."""
    router = APIRouter(tags=["ops"])

    @router.get("/metrics", response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def redact_query_secrets(text: str) -> str:
    """``text`` with the value of every ``token=`` / ``access_token=`` query parameter
    replaced by ``***`` (``/ws?token=abc&x=1`` -> ``/ws?token=***&x=1``)."""
    return _QUERY_SECRET.sub(r"\1***", text)


def _redacted(value: Any) -> Any:
    return redact_query_secrets(value) if isinstance(value, str) else value


class QuerySecretFilter(logging.Filter):
    """Rewrites a record's message and arguments so no ``?token=`` value reaches a handler
    (SPEC 6: a WebSocket token given in the URL never reaches a log line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(arg) for key, arg in record.args.items()}
        return True


def redact_secrets_in_server_logs() -> None:
    """Install :class:`QuerySecretFilter` on uvicorn's loggers (idempotent).

    Logger filters see every record those loggers emit, whichever handlers and formatters
    uvicorn's or our logging configuration attaches later.
    """
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuerySecretFilter) for f in logger.filters):
            logger.addFilter(QuerySecretFilter())


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line; ``extra=`` fields (world_id, run_id, event id...) kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_format: bool = True) -> None:
    """Configure the root logger; only entry points (the CLI) call this."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLogFormatter()
        if json_format
        else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

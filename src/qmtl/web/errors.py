"""The one place where QMTL errors become HTTP responses.

Services raise :class:`~qmtl.contracts.errors.QmtlError` subclasses; this handler renders
``{"detail": {"code", "message", **context}}`` with the class's status and logs the error
once; so are the router's own 404 (no such route: ``E_NOT_FOUND``) and 405
(``E_METHOD_NOT_ALLOWED``, with the ``Allow`` header). Validation errors keep FastAPI's 422
list form (``{"detail": [{"loc", "msg", "type"}]}``) but never echo the offending
``input``: it may be huge, or NaN, which JSON cannot carry (FastAPI's default handler would
then fail with a 500). Anything else that escapes a route is logged
with its traceback and answered as a coded 500 — never a bare stack trace.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from qmtl.contracts.errors import MethodNotAllowed, NotFound, QmtlError

__all__ = ["ERROR_RESPONSES", "error_responses", "install_error_handlers", "validation_entry"]

logger = logging.getLogger(__name__)


async def _qmtl_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QmtlError)
    level = logging.ERROR if exc.status_code >= 500 else logging.INFO
    logger.log(
        level,
        "%s %s -> %s %s: %s",
        request.method,
        request.url.path,
        exc.status_code,
        exc.code,
        exc.message,
        extra={"code": exc.code, "context": exc.context},
    )
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=headers)


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def validation_entry(error: Mapping[str, Any], *, prefix: Sequence[str | int] = ()
                     ) -> dict[str, Any]:
    """One 422 list entry: ``type``, ``loc`` (after ``prefix``), ``msg`` and a JSON-safe
    ``ctx`` — never the offending ``input``."""
    entry: dict[str, Any] = {"type": error["type"], "loc": [*prefix, *error["loc"]],
                             "msg": error["msg"]}
    if "ctx" in error:
        entry["ctx"] = {k: _json_safe(v) for k, v in error["ctx"].items()}
    return entry


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": [validation_entry(e) for e in exc.errors()]},
                        status_code=422)


_ROUTER_ERRORS: dict[int, type[QmtlError]] = {404: NotFound, 405: MethodNotAllowed}


async def _router_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error_type = _ROUTER_ERRORS.get(exc.status_code)
    if error_type is None:
        return await http_exception_handler(request, exc)
    what = "no route" if exc.status_code == 404 else f"method {request.method} not allowed"
    path = request.url.path[:200]  # echo a bounded path, never a whole abusive URL
    error = error_type(f"{what}: {path}", path=path)
    logger.info("%s %s -> %s %s", request.method, path, exc.status_code,
                error.code)
    return JSONResponse(error.to_body(), status_code=exc.status_code, headers=exc.headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The caller hung up before the end of its body (a gateway abandoning a streamed
    # upload, a client that gave up): nothing was planned and nobody reads the answer.
    logger.info("%s %s: the client disconnected before the end of its body",
                request.method, request.url.path)
    return Response(status_code=400)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed unexpectedly", request.method, request.url.path)
    return JSONResponse(
        {"detail": {"code": "E_INTERNAL", "message": f"internal error: {type(exc).__name__}"}},
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the QMTL error handler (and the last-resort 500) on ``app``."""
    app.add_exception_handler(QmtlError, _qmtl_error)
    app.add_exception_handler(StarletteHTTPException, _router_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected_error)


_CODED_DETAIL: dict[str, object] = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["code", "message"],
}
_VALIDATION_DETAIL: dict[str, object] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                         {"type": "integer"}]}},
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
        "required": ["loc", "msg", "type"],
    },
}


def _error_schema(status: int, description: str) -> dict[str, object]:
    # A 422 is also FastAPI's request validation answer, whose detail is a list.
    detail = ({"anyOf": [_CODED_DETAIL, _VALIDATION_DETAIL]} if status == 422
              else _CODED_DETAIL)
    if status == 422:
        description = f"{description} (or request validation errors: a list)"
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": detail},
                }
            }
        },
    }


def error_responses(*errors: type[QmtlError]) -> dict[int | str, dict[str, object]]:
    """An OpenAPI ``responses=`` mapping documenting the codes each status can carry."""
    by_status: dict[int, list[str]] = {}
    for err in errors:
        by_status.setdefault(err.status_code, []).append(err.code)
    return {
        status: _error_schema(status, " / ".join(sorted(codes)))
        for status, codes in sorted(by_status.items())
    }


ERROR_RESPONSES = error_responses

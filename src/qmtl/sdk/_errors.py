"""Errors raised by the SDK.

The tree::

    GatewayError
    ├── GatewayUnavailable      the gateway could not be reached (connect error, timeout)
    ├── GatewayHTTPError        the gateway answered 4xx/5xx: status, code and detail
    ├── CapabilityError         the health document carries an invalid capability value
    └── EventStreamError        the WebSocket refused the subscription or broke the protocol

``GatewayHTTPError.code`` is the server's ``E_…`` code; FastAPI's 422 list form (a validation
error) gets the SDK code ``E_VALIDATION`` and keeps the list in ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "VALIDATION_CODE",
    "CapabilityError",
    "EventStreamError",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayUnavailable",
]

VALIDATION_CODE = "E_VALIDATION"
"""Code given to FastAPI's 422 list-form validation errors (they carry no code of their own)."""


class GatewayError(Exception):
    """Root of every error the SDK raises."""


class GatewayUnavailable(GatewayError):
    """The gateway could not be reached: connection refused, DNS, timeout, broken connection.

    Attributes:
        url: the URL that was called.
        reason: a short human reason (``"connection refused"``, ``"timed out"``...).
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"gateway {url} is unreachable: {reason}")
        self.url = url
        self.reason = reason


class GatewayHTTPError(GatewayError):
    """The gateway answered with an HTTP error status.

    Attributes:
        status_code: the HTTP status (400…599).
        code: the ``E_…`` code from ``detail.code`` (``E_VALIDATION`` for a 422 list,
            ``E_HTTP_<status>`` when the body carried none).
        detail: the whole ``detail`` value as the server sent it (mapping, list or text).
        message: one human line.
    """

    def __init__(self, status_code: int, code: str, detail: Any) -> None:
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.message = describe_detail(detail)
        super().__init__(f"{code}: {self.message} (HTTP {status_code})")

    @property
    def context(self) -> dict[str, Any]:
        """The machine-readable facts of a coded error (``detail`` minus code and message)."""
        if isinstance(self.detail, Mapping):
            return {k: v for k, v in self.detail.items() if k not in ("code", "message")}
        return {}


class CapabilityError(GatewayError, ValueError):
    """A capability in the gateway's health document has an invalid value.

    Attributes:
        key: the offending key as found, e.g. ``capabilities.alpha_metrics_capable``.
        value: the value that was refused.
    """

    def __init__(self, key: str, value: Any, expected: str) -> None:
        super().__init__(f"{key}: expected {expected}, got {value!r}")
        self.key = key
        self.value = value


class EventStreamError(GatewayError):
    """The WebSocket subscription was refused or the server broke the protocol.

    Attributes:
        code: the server's error code, or an SDK code such as ``E_PROTOCOL``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _validation_line(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    loc = item.get("loc")
    parts = [str(p) for p in loc if p != "body"] if isinstance(loc, list | tuple) else []
    where = ".".join(parts) or "(body)"
    return f"{where}: {item.get('msg', '')}"


def describe_detail(detail: Any) -> str:
    """One human line for an error ``detail`` (coded mapping, 422 list or text)."""
    if isinstance(detail, Mapping):
        message = detail.get("message")
        return str(message) if message else str(dict(detail))
    if isinstance(detail, list):
        return "; ".join(_validation_line(item) for item in detail) or "validation failed"
    return str(detail)


def error_code(status_code: int, detail: Any) -> str:
    """The ``E_…`` code of an error ``detail`` (see :class:`GatewayHTTPError`)."""
    if isinstance(detail, Mapping) and isinstance(detail.get("code"), str):
        return str(detail["code"])
    if status_code == 422 and isinstance(detail, list):
        return VALIDATION_CODE
    return f"E_HTTP_{status_code}"

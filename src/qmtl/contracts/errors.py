"""Every error QMTL reports, with its code and HTTP status.

The tree (SPEC 8)::

    QmtlError                              E_INTERNAL              500
    ├── SchemaVersionRequired              E_SCHEMA_VERSION_REQUIRED 400
    ├── Unauthorized                       E_UNAUTHORIZED          401
    ├── PermissionDenied                   E_PERMISSION_DENIED     403
    ├── SharedAccountDisabled              E_SHARED_ACCOUNT_DISABLED 403
    ├── NotFound                           E_NOT_FOUND             404
    ├── RunIdConflict                      E_RUN_ID_CONFLICT       409
    ├── EtagMismatch                       E_ETAG_MISMATCH         412
    ├── PayloadTooLarge                    E_PAYLOAD_TOO_LARGE     413
    ├── OverlayConfigRequired              E_OVERLAY_CONFIG_REQUIRED 422
    ├── OverlayConfigInvalid (ValueError)  E_OVERLAY_CONFIG_INVALID  422
    ├── SharedAccountPolicyViolation       E_SHARED_ACCOUNT_POLICY 422
    ├── OverlayExecutionAmbiguous          E_OVERLAY_EXECUTION_AMBIGUOUS 422
    ├── OverlayExecutionUnmapped           E_OVERLAY_EXECUTION_UNMAPPED 422
    ├── PlanInputInvalid (ValueError)      E_PLAN_INPUT_INVALID    422
    ├── InputNotStorable (ValueError)      E_INPUT_NOT_STORABLE    422
    ├── RebalanceModeUnsupported           E_REBALANCE_MODE_UNSUPPORTED 501
    ├── ServiceUnavailable                 (abstract)              503
    │   ├── StoreUnavailable               E_STORE_UNAVAILABLE
    │   ├── WorldServiceUnavailable        E_WORLDSERVICE_UNAVAILABLE
    │   └── CommitLogUnavailable           E_COMMITLOG_UNAVAILABLE
    ├── WorldServiceError                  E_WORLDSERVICE_ERROR    502
    ├── WorldServiceTimeout                E_WORLDSERVICE_TIMEOUT  504
    ├── UpstreamError                      (the upstream's code and status)
    ├── EventDecodeError (ValueError)      E_EVENT_INVALID         (not HTTP)
    └── ConfigError (ValueError)           E_CONFIG_INVALID        (not HTTP)

Every HTTP error body is ``{"detail": {"code": ..., "message": ..., **context}}``
(see :meth:`QmtlError.to_detail`). Validation errors keep FastAPI's 422 list form and are
not part of this tree.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "CommitLogUnavailable",
    "ConfigError",
    "EtagMismatch",
    "EventDecodeError",
    "InputNotStorable",
    "NotFound",
    "OverlayConfigInvalid",
    "OverlayConfigRequired",
    "OverlayExecutionAmbiguous",
    "OverlayExecutionUnmapped",
    "PayloadTooLarge",
    "PermissionDenied",
    "PlanInputInvalid",
    "QmtlError",
    "RebalanceModeUnsupported",
    "RunIdConflict",
    "SchemaVersionRequired",
    "ServiceUnavailable",
    "SharedAccountDisabled",
    "SharedAccountPolicyViolation",
    "StoreUnavailable",
    "Unauthorized",
    "UpstreamError",
    "WorldServiceError",
    "WorldServiceTimeout",
    "WorldServiceUnavailable",
]


class QmtlError(Exception):
    """Root of every QMTL error.

    Subclasses set ``code`` and ``status_code``; instances carry a human message and a
    ``context`` mapping of machine-readable facts (merged into the HTTP detail).
    """

    code: ClassVar[str] = "E_INTERNAL"
    status_code: ClassVar[int] = 500
    default_message: ClassVar[str] = "internal error"

    def __init__(self, message: str | None = None, **context: Any) -> None:
        self.message = message or self.default_message
        self.context: dict[str, Any] = context
        super().__init__(self.message)

    def to_detail(self) -> dict[str, Any]:
        """The ``detail`` object of the HTTP error body."""
        return {"code": self.code, "message": self.message, **self.context}

    def to_body(self) -> dict[str, Any]:
        """The whole HTTP error body."""
        return {"detail": self.to_detail()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class SchemaVersionRequired(QmtlError):
    code = "E_SCHEMA_VERSION_REQUIRED"
    status_code = 400
    default_message = (
        "alpha metrics are required by this WorldService: send schema_version>=2"
    )


class Unauthorized(QmtlError):
    code = "E_UNAUTHORIZED"
    status_code = 401
    default_message = "missing or invalid bearer token"


class PermissionDenied(QmtlError):
    code = "E_PERMISSION_DENIED"
    status_code = 403
    default_message = "live submission needs the header 'X-Allow-Live: true'"


class SharedAccountDisabled(QmtlError):
    code = "E_SHARED_ACCOUNT_DISABLED"
    status_code = 403
    default_message = (
        "shared-account netting is disabled: set gateway.shared_account_policy.enabled"
    )


class NotFound(QmtlError):
    code = "E_NOT_FOUND"
    status_code = 404
    default_message = "not found"


class RunIdConflict(QmtlError):
    code = "E_RUN_ID_CONFLICT"
    status_code = 409
    default_message = "run_id was already used with a different body"


class EtagMismatch(QmtlError):
    code = "E_ETAG_MISMATCH"
    status_code = 412
    default_message = "If-Match does not match the current etag"


class PayloadTooLarge(QmtlError):
    code = "E_PAYLOAD_TOO_LARGE"
    status_code = 413
    default_message = "request body or position count is over the configured limit"


class OverlayConfigRequired(QmtlError):
    code = "E_OVERLAY_CONFIG_REQUIRED"
    status_code = 422
    default_message = "mode 'overlay' needs an 'overlay' configuration"


class OverlayConfigInvalid(QmtlError, ValueError):
    code = "E_OVERLAY_CONFIG_INVALID"
    status_code = 422
    default_message = "overlay configuration is incomplete"


class SharedAccountPolicyViolation(QmtlError):
    code = "E_SHARED_ACCOUNT_POLICY"
    status_code = 422
    default_message = "orders exceed the shared-account policy"


class OverlayExecutionAmbiguous(QmtlError):
    code = "E_OVERLAY_EXECUTION_AMBIGUOUS"
    status_code = 422
    default_message = "an overlay instrument is mapped to more than one world"


class OverlayExecutionUnmapped(QmtlError):
    code = "E_OVERLAY_EXECUTION_UNMAPPED"
    status_code = 422
    default_message = "an overlay delta names an instrument no world is mapped to"


class PlanInputInvalid(QmtlError, ValueError):
    """Valid-looking input the engine cannot plan (e.g. figures that overflow a float).

    The message names the field (``positions[3]``, ``strategy_alloc_after_total[w1][s1]``).
    """

    code = "E_PLAN_INPUT_INVALID"
    status_code = 422
    default_message = "the request cannot be planned"


class InputNotStorable(QmtlError, ValueError):
    """The database refused a value of the request (too long, out of range): retrying the
    same body cannot help, so this is not a 503. Nothing was written."""

    code = "E_INPUT_NOT_STORABLE"
    status_code = 422
    default_message = "the store refused a value of the request; nothing was written"


class RebalanceModeUnsupported(QmtlError):
    code = "E_REBALANCE_MODE_UNSUPPORTED"
    status_code = 501
    default_message = "rebalance mode 'hybrid' is not supported yet"


class ServiceUnavailable(QmtlError):
    code = "E_SERVICE_UNAVAILABLE"
    status_code = 503
    default_message = "a dependency is unavailable"


class StoreUnavailable(ServiceUnavailable):
    code = "E_STORE_UNAVAILABLE"
    default_message = "the store is unavailable; nothing was written"


class WorldServiceUnavailable(ServiceUnavailable):
    code = "E_WORLDSERVICE_UNAVAILABLE"
    default_message = "the WorldService is unreachable"


class CommitLogUnavailable(ServiceUnavailable):
    code = "E_COMMITLOG_UNAVAILABLE"
    default_message = "the commit log is unavailable; nothing was submitted"


class WorldServiceError(QmtlError):
    """The WorldService failed with a 500 (or another 5xx that is not 501/502/503/504).

    Relayed as 502 with the upstream's status and detail in the context
    (``upstream_status``, ``upstream``). It is not a sign that the WorldService is down —
    one request's input can cause it — so the gateway's breaker does not count it.
    """

    code = "E_WORLDSERVICE_ERROR"
    status_code = 502
    default_message = "the WorldService failed to answer this request"


class WorldServiceTimeout(QmtlError):
    code = "E_WORLDSERVICE_TIMEOUT"
    status_code = 504
    default_message = "the WorldService did not answer in time"


class UpstreamError(QmtlError):
    """An HTTP error answered by an upstream service, passed on unchanged.

    ``status_code`` and ``detail`` are the upstream's; the instance attribute shadows the
    class default so that the gateway can relay a WorldService 400/409/422 as it came.
    """

    code = "E_UPSTREAM"

    def __init__(self, status_code: int, detail: Any) -> None:
        code = detail.get("code") if isinstance(detail, dict) else None
        message = detail.get("message") if isinstance(detail, dict) else None
        super().__init__(message or f"upstream answered HTTP {status_code}")
        self.status_code = status_code  # type: ignore[misc]
        self.upstream_code = code if isinstance(code, str) else None
        self.detail = detail

    def to_detail(self) -> dict[str, Any]:
        if isinstance(self.detail, dict):
            return dict(self.detail)
        return {"code": self.code, "message": self.message, "upstream": self.detail}

    def to_body(self) -> dict[str, Any]:
        # FastAPI's 422 list form and free text are relayed exactly as they came.
        return {"detail": self.detail}


class EventDecodeError(QmtlError, ValueError):
    code = "E_EVENT_INVALID"
    status_code = 422
    default_message = "not a valid rebalancing event"


class ConfigError(QmtlError, ValueError):
    """An invalid configuration; the message names the dotted key."""

    code = "E_CONFIG_INVALID"
    status_code = 500
    default_message = "invalid configuration"

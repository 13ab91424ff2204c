"""Bearer-token authentication for routes and WebSockets (constant-time comparison)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from fastapi import Request, WebSocket

from qmtl.contracts.errors import Unauthorized

__all__ = ["bearer_dependency", "token_is_valid", "websocket_token"]


def token_is_valid(presented: str | None, tokens: Sequence[str]) -> bool:
    """Whether ``presented`` equals one of ``tokens``; every token is compared in full."""
    if presented is None:
        return False
    candidate = presented.encode()
    matched = False
    for token in tokens:
        # No early exit: the time taken does not reveal which token matched.
        matched |= hmac.compare_digest(candidate, token.encode())
    return matched


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def bearer_dependency(tokens: Sequence[str]) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that raises 401 ``E_UNAUTHORIZED`` unless a token matches.

    With no tokens configured, authentication is off and the dependency accepts everything.
    """
    configured = tuple(tokens)

    async def require_token(request: Request) -> None:
        if configured and not token_is_valid(
            _bearer(request.headers.get("authorization")), configured
        ):
            raise Unauthorized()

    return require_token


def websocket_token(websocket: WebSocket) -> str | None:
    """The token a WebSocket client presented: ``Authorization: Bearer`` or ``?token=``."""
    return _bearer(websocket.headers.get("authorization")) or websocket.query_params.get("token")

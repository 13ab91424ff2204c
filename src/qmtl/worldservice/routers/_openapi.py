"""Responses for routes that render their JSON once in the service (see ``planning.py``)."""

from __future__ import annotations

from fastapi import Response

__all__ = ["json_response"]


def json_response(body: bytes, *, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """Pre-encoded JSON (rendered once by the service, never validated again)."""
    return Response(content=body, status_code=status_code, media_type="application/json",
                    headers=headers)

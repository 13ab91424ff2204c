"""OpenAPI helpers for routes that parse their JSON body themselves (see ``bodies.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel

__all__ = ["BODY_MODELS", "json_body", "json_response"]

BODY_MODELS: list[type[BaseModel]] = []
"""Request models documented by reference; ``app.py`` adds their schemas to components."""


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the required JSON request body."""
    if model not in BODY_MODELS:
        BODY_MODELS.append(model)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                }
            },
        }
    }


def json_response(body: bytes, *, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """Pre-encoded JSON (rendered once by the service, never validated again)."""
    return Response(content=body, status_code=status_code, media_type="application/json",
                    headers=headers)

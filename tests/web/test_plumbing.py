"""Shared HTTP plumbing: one error mapping, bearer auth, the body-size limit, /metrics.

These run a real FastAPI app in-process through httpx's ASGI transport.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry, Counter

from qmtl.contracts.errors import EtagMismatch, RunIdConflict, UpstreamError
from qmtl.web.auth import bearer_dependency, token_is_valid
from qmtl.web.errors import error_responses, install_error_handlers
from qmtl.web.limits import BodySizeLimitMiddleware
from qmtl.web.observability import metrics_router


def _app(*, tokens: list[str] | None = None, max_bytes: int = 0) -> FastAPI:
    app = FastAPI(dependencies=[Depends(bearer_dependency(tokens or []))])
    install_error_handlers(app)
    if max_bytes:
        app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes)
    registry = CollectorRegistry()
    Counter("qmtl_test_total", "a test counter", registry=registry).inc(3)
    app.include_router(metrics_router(registry))

    @app.post("/conflict")
    async def conflict() -> None:
        raise RunIdConflict(run_id="r1")

    @app.post("/upstream-list")
    async def upstream_list() -> None:
        raise UpstreamError(422, [{"loc": ["body", "x"], "msg": "bad", "type": "value_error"}])

    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_qmtl_error_renders_code_message_and_context() -> None:
    async with _client(_app()) as client:
        response = await client.post("/conflict")
    assert response.status_code == 409
    assert response.json() == {
        "detail": {
            "code": "E_RUN_ID_CONFLICT",
            "message": "run_id was already used with a different body",
            "run_id": "r1",
        }
    }


async def test_upstream_validation_list_is_relayed_unchanged() -> None:
    async with _client(_app()) as client:
        response = await client.post("/upstream-list")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "x"], "msg": "bad", "type": "value_error"}]
    }


async def test_unexpected_exception_is_a_coded_500() -> None:
    async with _client(_app()) as client:
        response = await client.post("/boom")
    assert response.status_code == 500
    assert response.json()["detail"]["code"] == "E_INTERNAL"


async def test_unknown_route_and_wrong_method_are_coded() -> None:
    async with _client(_app()) as client:
        missing = await client.get("/no/such/route")
        wrong = await client.get("/conflict")
        long_path = await client.get("/" + "x" * 5000)
    assert missing.status_code == 404
    assert missing.json() == {"detail": {"code": "E_NOT_FOUND", "path": "/no/such/route",
                                         "message": "no route: /no/such/route"}}
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json()["detail"] == {"code": "E_METHOD_NOT_ALLOWED", "path": "/conflict",
                                      "message": "method GET not allowed: /conflict"}
    assert len(long_path.json()["detail"]["path"]) == 200


async def test_validation_keeps_fastapi_list_form() -> None:
    async with _client(_app()) as client:
        response = await client.post("/echo", json={"a": "x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "a"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic s3cret"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        ({"Authorization": "bearer other"}, 200),
    ],
)
async def test_bearer_tokens(headers: dict[str, str], status: int) -> None:
    async with _client(_app(tokens=["s3cret", "other"])) as client:
        response = await client.post("/echo", json={"a": 1}, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["detail"]["code"] == "E_UNAUTHORIZED"
        assert response.headers["www-authenticate"] == "Bearer"


def test_token_comparison() -> None:
    assert token_is_valid("a", ["b", "a"])
    assert not token_is_valid("", ["a"])
    assert not token_is_valid(None, ["a"])
    assert not token_is_valid("a", [])


async def test_oversized_body_is_413_with_code() -> None:
    async with _client(_app(max_bytes=32)) as client:
        small = await client.post("/echo", json={"a": 1})
        large = await client.post("/echo", json={f"k{i}": i for i in range(50)})
    assert small.status_code == 200
    assert large.status_code == 413
    assert large.json()["detail"]["code"] == "E_PAYLOAD_TOO_LARGE"


async def test_chunked_body_cannot_get_around_the_limit() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b'{"a": 1, "b": 2}'

    async with _client(_app(max_bytes=64)) as client:
        response = await client.post(
            "/echo", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413


async def test_metrics_exposition() -> None:
    async with _client(_app()) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "qmtl_test_total 3.0" in response.text


def test_error_responses_group_codes_by_status() -> None:
    responses = error_responses(RunIdConflict, EtagMismatch)
    assert set(responses) == {409, 412}
    assert responses[409]["description"] == "E_RUN_ID_CONFLICT"


async def test_fastapi_validation_never_echoes_the_input() -> None:
    # FastAPI's default handler echoes the input (a NaN there cannot be encoded as JSON, a
    # huge body would be sent back); ours keeps the list form without it.
    app = _app()

    @app.get("/limit")
    async def limit(top: int) -> dict[str, int]:
        return {"top": top}

    async with _client(app) as client:
        response = await client.get("/limit", params={"top": "nan"})
    assert response.status_code == 422
    assert response.json() == {"detail": [{"type": "int_parsing", "loc": ["query", "top"],
                                           "msg": "Input should be a valid integer, unable "
                                                  "to parse string as an integer"}]}

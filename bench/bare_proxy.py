"""The floor of one Python hop: a bare ASGI proxy, for ``bench/wire.py`` to set beside the
gateway in the same run.

It does what any streaming proxy must and nothing the gateway adds: uvicorn reads the
caller's body, httpx (the gateway's client) streams it to the WorldService, and the answer
is streamed back. No routing, no envelope read, no version check, no breaker, no metrics —
so ``bare / direct`` is what a second process on the path costs on this machine, and
``gateway / bare`` is what the gateway's guarantees cost.

    python bench/bare_proxy.py PORT WORLDSERVICE_URL
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def bare_proxy(upstream: str) -> Callable[..., Awaitable[None]]:
    """An ASGI app forwarding every HTTP request's path, body and content type."""
    client = httpx.AsyncClient(base_url=upstream, timeout=600)

    async def app(scope: Scope, receive: Callable[[], Awaitable[Message]],
                  send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                yield message.get("body", b"")
                if not message.get("more_body"):
                    return

        headers = {k.decode(): v.decode() for k, v in scope["headers"]
                   if k in (b"content-type", b"content-length")}
        built = client.build_request(scope["method"], scope["path"], content=body(),
                                     headers=headers)
        response = await client.send(built, stream=True)
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(b"content-type",
                                     response.headers.get("content-type", "").encode())]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    return app


if __name__ == "__main__":
    uvicorn.run(bare_proxy(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning")

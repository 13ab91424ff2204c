"""Request-size limit: refuse oversized bodies with 413 ``E_PAYLOAD_TOO_LARGE``."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qmtl.contracts.errors import PayloadTooLarge

__all__ = ["BodySizeLimitMiddleware"]


class BodySizeLimitMiddleware:
    """Pure ASGI middleware that stops reading a body once it passes ``max_bytes``.

    ``Content-Length`` is checked up front; streamed chunks are counted too, so a chunked
    upload cannot get around the limit. Once over, the client gets the 413 and the app sees
    a disconnect (its own response, if any, is discarded).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    rejected = True
                    await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, send: Send) -> None:
        err = PayloadTooLarge(limit_bytes=self.max_bytes)
        body = json.dumps(err.to_body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": err.status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""Body sizes: 413 before the body reaches a route. (The request budget, failed credentials and
expensive work are limited by the runtime's limiters: ``geo_service/runtime/limits.py``.)
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PREFIXES = ("/imports/",)
PHOTO_UPLOAD = re.compile(r"^/incidents/[^/]+/photos$")


class BodySizeLimit:
    """Refuse bodies over the limit: by Content-Length up front, or while streaming."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, upload_bytes: int, photo_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes
        self.photo_bytes = photo_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 413 once the body passes the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.upload_bytes if path.startswith(UPLOAD_PREFIXES) else self.max_bytes
        if PHOTO_UPLOAD.match(path):
            limit = self.photo_bytes
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > limit:
            await _too_large(send, path, limit)
            return
        seen = 0
        answered = False

        async def limited_receive() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and not answered:
                    # Answer now and tell the app the client is gone: it stops reading.
                    answered = True
                    await _too_large(send, path, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not answered:  # the 413 has gone out; anything the app sends is dropped
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _too_large(send: Send, path: str, limit: int) -> None:
    body = json.dumps(
        {
            "type": "https://geo-service.dev/problems/body-too-large",
            "title": "Body too large",
            "status": 413,
            "detail": f"request bodies to {path} may be at most {limit:,} bytes",
            "code": "body-too-large",
            "instance": path,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

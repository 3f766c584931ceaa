"""Body sizes: 413 before the body reaches a route. (The request budget, failed credentials and
expensive work are limited by the runtime's limiters: ``geo_service/runtime/limits.py``.)
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_service import i18n

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
            await _too_large(send, path, limit, _language(scope))
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
                    await _too_large(send, path, limit, _language(scope))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not answered:  # the 413 has gone out; anything the app sends is dropped
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


def _language(scope: Scope) -> str:
    """The request's language from its Accept-Language header (this guard answers before
    the language middleware runs), else the deployment's."""
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            found = i18n.accept_language(value.decode("latin-1"))
            if found:
                return found
    return i18n.environment_language()


async def _too_large(send: Send, path: str, limit: int, language: str = i18n.ENGLISH) -> None:
    words = i18n.translations(language)
    body = json.dumps(
        {
            "type": "https://geo-service.dev/problems/body-too-large",
            "title": words.gettext(i18n.N_("Body too large")),
            "status": 413,
            "detail": words.gettext(
                i18n.N_("request bodies to {path} may be at most {limit} bytes")
            ).format(path=path, limit=f"{limit:,}"),
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

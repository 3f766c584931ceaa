"""HTTP behaviour that web maps, GIS clients and proxies expect of every route (issue 16):
conditional GETs with entity tags, and links behind a reverse proxy.

CORS (Starlette's ``CORSMiddleware``) and compression (``brotli-asgi``: br, else gzip) are
well-kept libraries wired in ``app.create_app``; the two middlewares here are written by hand
because no maintained ASGI package does them: Starlette has no ETag middleware for dynamic
bodies, and uvicorn's ``ProxyHeadersMiddleware`` reads ``X-Forwarded-Proto``/``-For`` but not
``X-Forwarded-Host`` or ``X-Forwarded-Prefix``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bodies of these types get an ETag when the route set none (JSON, GeoJSON, vector tiles).
TAGGED_TYPES = (
    "application/json",
    "application/geo+json",
    "application/vnd.mapbox-vector-tile",
    "application/problem+json",
)
MAX_TAGGED_BYTES = 64 << 20  # larger (or streamed) bodies pass through untagged


def etag_for(body: bytes) -> str:
    """A weak entity tag of a body: ``W/"<32 hex>"`` (BLAKE2b, 128 bits).

    Weak, because a proxy or our own compression may re-encode the bytes while the content
    stays the same (RFC 9110 §8.8.1); ``If-None-Match`` uses the weak comparison anyway.

    >>> etag_for(b"{}")
    'W/"2afb9b83f9314e5d029766197f539792"'
    """
    return f'W/"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag[:2] in ("W/", "w/") else tag


def none_match(header: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``tag`` (RFC 9110 §13.1.2): ``*``, or any
    tag of the comma-separated list under the weak comparison (``W/"x"`` equals ``"x"``).

    >>> none_match('W/"a", "b"', '"b"'), none_match("*", 'W/"z"'), none_match('"a"', '"b"')
    (True, True, False)
    >>> none_match(None, '"a"')
    False
    """
    if not header:
        return False
    if header.strip() == "*":
        return True
    mine = _opaque(tag)
    return any(_opaque(t) == mine for t in header.split(",") if t.strip())


class ConditionalGetMiddleware:
    """Tag GET/HEAD answers (200, JSON/GeoJSON/MVT, at most ``MAX_TAGGED_BYTES``) with a weak
    ETag of their body and answer ``304 Not Modified`` (no body, same ETag and
    ``Cache-Control``) when ``If-None-Match`` matches it. An ETag set by the route is kept;
    an answer without ``Cache-Control`` gets ``private, no-cache`` (RFC 9111 §5.2.2).

    Sits inside the compression middleware, so the tag is that of the identity body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; hold a taggable answer's body to tag it (or answer 304)."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        condition = Headers(scope=scope).get("if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passing = False

        async def wrapped(message: Message) -> None:
            nonlocal start, size, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                kind = headers.get("content-type", "").split(";")[0].strip()
                length = headers.get("content-length")
                if (
                    message["status"] != 200
                    or kind not in TAGGED_TYPES
                    or headers.get("content-encoding")
                    or length is None
                    or int(length) > MAX_TAGGED_BYTES
                ):
                    passing = True
                    await send(message)
                    return
                start = message
                return
            # http.response.body of a tagged answer: gather, then tag
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if message.get("more_body", False):
                return
            assert start is not None
            body = b"".join(chunks)
            headers = MutableHeaders(raw=start["headers"])
            tag = headers.get("etag") or etag_for(body)
            headers["etag"] = tag
            # answers depend on who asks (X-API-Key is not a header shared caches know to
            # key on): no shared cache may keep them; browsers keep them and revalidate
            headers.setdefault("cache-control", "private, no-cache")
            if none_match(condition, tag):
                await send(_not_modified(start, tag))
                await send({"type": "http.response.body", "body": b""})
                return
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, wrapped)


def _not_modified(start: Message, tag: str) -> Message:
    """The start of a 304: only the headers RFC 9110 §15.4.5 keeps."""
    keep = {b"cache-control", b"vary", b"expires", b"content-location", b"date"}
    raw = [(k, v) for k, v in start["headers"] if k.lower() in keep]
    raw.append((b"etag", tag.encode("latin-1")))
    return {"type": "http.response.start", "status": 304, "headers": raw}


class ForwardedPrefixMiddleware:
    """Behind a trusted reverse proxy, take the client-facing scheme, host and path prefix
    from ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and ``X-Forwarded-Prefix`` so that every
    link the service writes (OGC API, TileJSON, Open311 discovery) is one the client can
    follow. Headers from any other peer are ignored (they could be forged).

    The prefix becomes the ASGI ``root_path`` (and is put before ``path``, as the ASGI spec
    asks); Starlette strips it again for routing.
    """

    def __init__(self, app: ASGIApp, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = frozenset(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite scheme, host and root path from a trusted peer's forwarding headers."""
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and client[0] in self.trusted:
            headers = Headers(scope=scope)
            scope = dict(scope)
            proto = _first(headers.get("x-forwarded-proto"))
            if proto in ("http", "https"):
                scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
            host = _first(headers.get("x-forwarded-host"))
            if host and _valid_host(host):
                raw = [(k, v) for k, v in scope["headers"] if k != b"host"]
                scope["headers"] = [*raw, (b"host", host.encode("latin-1"))]
            prefix = _first(headers.get("x-forwarded-prefix"))
            if prefix and _valid_prefix(prefix):
                prefix = "/" + prefix.strip("/")
                scope["root_path"] = prefix
                scope["path"] = prefix + scope["path"]
        await self.app(scope, receive, send)


def _first(value: str | None) -> str | None:
    """The first (client-most) value of a comma-separated forwarding header."""
    return value.split(",")[0].strip() if value else None


def _valid_host(host: str) -> bool:
    """A host[:port] made of URL host characters only (no path, no user info, no spaces)."""
    return 0 < len(host) <= 255 and all(c.isalnum() or c in ".-:[]" for c in host)


def _valid_prefix(prefix: str) -> bool:
    """A path prefix of plain segments (no ``..``, query, fragment or scheme)."""
    parts = prefix.strip("/").split("/")
    return len(prefix) <= 200 and all(
        p and p not in (".", "..") and all(c.isalnum() or c in "-._~" for c in p) for p in parts
    )


class RefusedEncodingsMiddleware:
    """Drop the content codings a client refuses (``gzip;q=0``, ``br;q=0``; RFC 9110
    §12.5.3) from ``Accept-Encoding`` before the compression middleware reads it:
    ``brotli-asgi`` looks for the coding's name and ignores its weight, so ``br;q=0`` got br.
    Written by hand because the library has no option for it; a refused ``*`` leaves only the
    codings named with a weight above 0."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite ``Accept-Encoding`` without the codings weighted 0."""
        if scope["type"] == "http":
            raw = Headers(scope=scope).get("accept-encoding")
            if raw is not None and "q=0" in raw.replace(" ", ""):
                kept = accepted_encodings(raw)
                scope = dict(scope)
                scope["headers"] = [
                    *((k, v) for k, v in scope["headers"] if k != b"accept-encoding"),
                    (b"accept-encoding", ", ".join(kept).encode("latin-1")),
                ]
        await self.app(scope, receive, send)


def accepted_encodings(header: str) -> list[str]:
    """The codings of an ``Accept-Encoding`` value with a weight above 0, as named.

    >>> accepted_encodings("br;q=0, gzip")
    ['gzip']
    >>> accepted_encodings("gzip;q=0.000, deflate, br;q=0.5")
    ['deflate', 'br;q=0.5']
    """
    kept = []
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # an unreadable weight: not a coding the client asked for
        if coding and weight > 0:
            kept.append(part.strip())
    return kept

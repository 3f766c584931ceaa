"""The API's limits beyond the per-user request budget: body sizes (413 before the body reaches
a route), failed credentials per client address (429) and expensive work by concurrency (429
per user, 503 for the process).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_service.errors import RateLimitedError, ServerBusyError

log = logging.getLogger("geo_service.auth")

UPLOAD_PREFIXES = ("/imports/",)


class BodySizeLimit:
    """Refuse bodies over the limit: by Content-Length up front, or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, or answer 413 once the body passes the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.upload_bytes if path.startswith(UPLOAD_PREFIXES) else self.max_bytes
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
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


_KEY_PREFIX = re.compile(r"gs_([0-9a-f]{12})_")


def describe_credential(kind: str, value: str) -> str:
    """How a log line names a presented credential: never the secret, a key by its prefix."""
    if kind == "key":
        match = _KEY_PREFIX.match(value)
        return f"API key prefix {match.group(1)}" if match else "malformed API key"
    return "bearer token" if kind == "jwt" else kind


class FailedCredentialLimit:
    """At most ``per_minute`` failed credential checks per client address in a moving minute;
    past that the address is answered 429 (with Retry-After: until the oldest failure leaves
    the window) for every credential that has to be verified, right or wrong, so that a guess
    made during the lock-out learns nothing. Credentials verified in the last seconds (the
    principal cache) are not checked again, so a colleague behind the same address who is
    already signed in keeps working.

    Counting is done by the ``limits`` package (a moving window; ``storage`` is one of its
    URIs: ``memory://`` counts per process, ``redis://...`` across workers). Every failure is
    logged, counted or not (an expired token or a revoked key is not a guess).
    """

    NAMESPACE = "auth-failures"

    def __init__(self, per_minute: int, storage: str = "memory://") -> None:
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage))

    def check(self, address: str) -> None:
        """Raise RateLimitedError while ``address`` is locked out."""
        if self.item is None or self.limiter.test(self.item, self.NAMESPACE, address):
            return
        reset_at = self.limiter.get_window_stats(self.item, self.NAMESPACE, address).reset_time
        wait = max(1.0, reset_at - time.time())
        raise RateLimitedError(
            f"too many failed credentials from this address; retry in {wait:.0f} s",
            retry_after=round(wait, 1),
        )

    def record(self, address: str, kind: str, value: str, reason: str, *, counted: bool) -> None:
        """Log a failed credential check and count it against ``address`` when ``counted``."""
        log.warning(
            "authentication failed: address=%s credential=%s reason=%r counted=%s",
            address,
            describe_credential(kind, value),
            reason,
            counted,
        )
        if counted and self.item is not None:
            self.limiter.hit(self.item, self.NAMESPACE, address)


class HeavyWorkLimit:
    """Expensive requests by concurrency, not by count: at most ``per_user`` at once per user
    (the next is 429) and ``total`` at once in the process (the next is 503), so that one
    analyst's hot spot runs cannot take the connections and threads dispatch and /health need.
    Retry-After is how long the oldest running request should still take, judged by a running
    mean of past durations.
    """

    def __init__(self, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._running: dict[str, list[float]] = {}
        self._count = 0
        self._mean_s = 5.0
        self._lock = threading.Lock()

    def _retry_after(self, starts: list[float], now: float) -> float:
        left = self._mean_s - (now - min(starts)) if starts else self._mean_s
        return float(min(60.0, max(1.0, left)))

    @contextmanager
    def slot(self, user: str) -> Iterator[None]:
        """Hold one slot of ``user`` for the block, or raise at once when none is free."""
        now = time.monotonic()
        with self._lock:
            mine = self._running.setdefault(user, [])
            if len(mine) >= self.per_user:
                wait = self._retry_after(mine, now)
                raise RateLimitedError(
                    f"at most {self.per_user} expensive requests at once per user; "
                    f"retry in {wait:.0f} s",
                    retry_after=round(wait, 1),
                )
            if self._count >= self.total:
                starts = [t for ts in self._running.values() for t in ts]
                wait = self._retry_after(starts, now)
                raise ServerBusyError(
                    f"the server runs as many expensive requests as it may; retry in {wait:.0f} s",
                    retry_after=round(wait, 1),
                )
            mine.append(now)
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                mine = self._running.get(user, [])
                mine.remove(now)
                if not mine:
                    self._running.pop(user, None)
                self._count -= 1
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - now)

"""Request limiters kept by the runtime: the per-user request budget (a token bucket), failed
credentials per client address (429) and expensive work by concurrency (429 per user, 503 for
the process).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cachetools import LRUCache
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from geo_service.errors import RateLimitedError, ServerBusyError
from geo_service.i18n import format_message

log = logging.getLogger("geo_service.auth")


def retry_seconds(wait: float) -> int:
    """Whole seconds to wait (at least 1), as ``Retry-After`` and the problem's detail say.

    >>> retry_seconds(0.04), retry_seconds(2.3)
    (1, 3)
    """
    return max(1, math.ceil(wait))


class TokenBucket:
    """Per-key request budget: ``rate`` per minute with bursts up to ``burst``."""

    def __init__(self, per_minute: int, burst: int, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        # the least recently seen keys go first; a forgotten key starts with a full bucket
        self._state: LRUCache[str, tuple[float, float]] = LRUCache(maxsize=max_keys)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token; return 0, or the seconds to wait when the bucket is empty."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._state[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._state[key] = (tokens - 1.0, now)
            return 0.0

    def reset(self) -> None:
        """Refill every bucket."""
        with self._lock:
            self._state.clear()


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
        self.storage = storage_from_string(storage)
        self.limiter = MovingWindowRateLimiter(self.storage)

    def check(self, address: str) -> None:
        """Raise RateLimitedError while ``address`` is locked out."""
        if self.item is None or self.limiter.test(self.item, self.NAMESPACE, address):
            return
        reset_at = self.limiter.get_window_stats(self.item, self.NAMESPACE, address).reset_time
        seconds = retry_seconds(reset_at - time.time())
        raise RateLimitedError(
            format_message(
                "too many failed credentials from this address; retry in {seconds} s",
                seconds=seconds,
            ),
            retry_after=seconds,
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

    def reset(self) -> None:
        """Forget the failures counted in this process (a shared storage, such as Redis, is
        left alone: other processes count there too)."""
        if isinstance(self.storage, MemoryStorage):
            self.storage.reset()


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

    def reset(self) -> None:
        """Forget the running mean of durations (slots held now stay held until released)."""
        with self._lock:
            self._mean_s = 5.0

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
                seconds = retry_seconds(self._retry_after(mine, now))
                raise RateLimitedError(
                    format_message(
                        "at most {n} expensive requests at once per user; retry in {seconds} s",
                        n=self.per_user,
                        seconds=seconds,
                    ),
                    retry_after=seconds,
                )
            if self._count >= self.total:
                starts = [t for ts in self._running.values() for t in ts]
                seconds = retry_seconds(self._retry_after(starts, now))
                raise ServerBusyError(
                    format_message(
                        "the server runs as many expensive requests as it may; retry in "
                        "{seconds} s",
                        seconds=seconds,
                    ),
                    retry_after=seconds,
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

"""Thread-safe caches on ``cachetools``: the process's memo of derived data and credentials."""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from cachetools import Cache, TLRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedCache(Generic[K, V]):
    """A ``cachetools`` cache behind a lock: request threads, job threads and the event loop
    read and write it at once (a TTL cache expires entries on reads, so reads lock too)."""

    def __init__(self, cache: Cache[K, V]) -> None:
        self._cache = cache
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The live entry for ``key``, or None."""
        with self._lock:
            return self._cache.get(key)

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` under ``key`` (the cache evicts by size and age)."""
        with self._lock:
            self._cache[key] = value

    def pop(self, key: K) -> V | None:
        """Forget ``key``; its entry, if it was live."""
        with self._lock:
            return self._cache.pop(key, None)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)


def _hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def _deadline(_key: str, value: tuple[float, Any], _now: float) -> float:
    return value[0]


class PrincipalCache:
    """Credentials verified in the last ``ttl_s`` seconds, so that a busy client (a map fetching
    tiles, a dashboard polling) is not looked up in the database on every request. Keyed by the
    SHA-256 of the credential; an entry also ends at ``until`` (a token's expiry). Revoking a
    key or disabling a user in this process forgets everything at once; in other processes
    it takes effect within ``ttl_s``.
    """

    _live: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # a per-entry deadline (min of the TTL and the token's expiry), least recently used out
        self._entries: SharedCache[str, tuple[float, Any]] = SharedCache(
            TLRUCache(maxsize=max_entries, ttu=_deadline, timer=time.monotonic)
        )
        PrincipalCache._live.add(self)

    def get(self, credential: str) -> Any | None:
        """The principal for ``credential`` when verified recently, else None."""
        if self.ttl_s <= 0:
            return None
        hit = self._entries.get(_hash(credential))
        return None if hit is None else hit[1]

    def put(self, credential: str, principal: Any, until: float | None = None) -> None:
        """Remember a verified credential (``until``: a monotonic deadline, e.g. expiry)."""
        if self.ttl_s <= 0:
            return
        deadline = time.monotonic() + self.ttl_s
        self._entries.put(_hash(credential), (min(deadline, until or deadline), principal))

    def clear(self) -> None:
        """Drop every remembered credential of this cache."""
        self._entries.clear()

    @classmethod
    def forget_all(cls) -> None:
        """Drop every remembered credential in this process (every app's cache)."""
        for cache in list(cls._live):
            cache.clear()

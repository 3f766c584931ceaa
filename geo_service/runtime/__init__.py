"""The process state of geo-service on one object: connection pools, caches, limiters, the job
executor and the periodic tasks.

``create_app`` builds a ``Runtime`` in its lifespan, keeps it on ``app.state.runtime`` and
binds it to every request (``RuntimeMiddleware``), so services reach it with ``current()``
without importing the API. Outside a request (the CLI, notebooks, tests calling services)
``current()`` is the process runtime, built on first use. Nothing starts at import: the job
executor starts on the first submit, periodic tasks when the lifespan starts them.

Every cache is a ``cachetools`` cache (``SharedCache``) with its size and age bound here, and
``reset()`` forgets all of a runtime's state at once (``reset_all()``: every runtime alive in
the process, for tests).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from cachetools import LRUCache, TTLCache
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from geo_service.runtime.caches import PrincipalCache, SharedCache
from geo_service.runtime.clock import Clock
from geo_service.runtime.limits import FailedCredentialLimit, HeavyWorkLimit, TokenBucket
from geo_service.runtime.pools import Pools
from geo_service.settings import Settings

__all__ = [
    "OGC_LAYER_TTL_S",
    "ROAD_CHECK_S",
    "SCOPE_TTL_S",
    "TILE_LAYER_TTL_S",
    "Caches",
    "Pools",
    "PrincipalCache",
    "Runtime",
    "RuntimeMiddleware",
    "SharedCache",
    "current",
    "live",
    "reset_all",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

SCOPE_TTL_S = 60.0  # a jurisdiction changes only on publish (and the key names the version)
ROAD_CHECK_S = 30.0  # how often a process asks whether the road network changed
TILE_LAYER_TTL_S = 60  # tiles may be this old: a changed incident shows within a minute
OGC_LAYER_TTL_S = 60  # an OGC page walk sees one result; new incidents show within a minute


def _ttl(maxsize: int, ttl_s: float) -> SharedCache[Any, Any]:
    return SharedCache(TTLCache(maxsize=maxsize, ttl=ttl_s))


def _lru(maxsize: int) -> SharedCache[Any, Any]:
    return SharedCache(LRUCache(maxsize=maxsize))


@dataclass
class Caches:
    """What the services remember between requests; every key names the database."""

    # (database, area code, version) -> Scope: an area-bound caller's jurisdiction
    scopes: SharedCache[Any, Any] = field(default_factory=lambda: _ttl(4096, SCOPE_TTL_S))
    # database -> (network version, RoadGraph | None), rebuilt when the segments change ...
    road_graphs: SharedCache[Any, Any] = field(default_factory=lambda: _lru(16))
    # ... which is asked at most every ROAD_CHECK_S: database -> True
    road_checked: SharedCache[Any, Any] = field(default_factory=lambda: _ttl(16, ROAD_CHECK_S))
    # (server, database, version, created) -> GridIndex of a published version (immutable)
    grid_indexes: SharedCache[Any, Any] = field(default_factory=lambda: _lru(32))
    # tile layer key -> the materialised layer in tile_layer_cells
    tile_layers: SharedCache[Any, Any] = field(default_factory=lambda: _ttl(512, TILE_LAYER_TTL_S))
    # (database, version, res) -> sorted H3 cells covering the city: the hot spot study area
    study_cells: SharedCache[Any, Any] = field(default_factory=lambda: _lru(64))
    # (database, collection, window, scope, version) -> a computed OGC layer, paged from it
    ogc_layers: SharedCache[Any, Any] = field(default_factory=lambda: _ttl(32, OGC_LAYER_TTL_S))

    def clear(self) -> None:
        """Forget every cached entry."""
        for f in fields(self):
            getattr(self, f.name).clear()


class KeyedLocks:
    """One lock per key, kept while someone holds or waits for it: the first request to
    miss a cache computes the entry and the others asking for the same key wait for it
    (single flight) instead of computing it again or being refused a work slot."""

    def __init__(self) -> None:
        self._locks: dict[Any, list[Any]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: Any) -> Iterator[None]:
        """Hold the lock of ``key`` for the block."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    self._locks.pop(key, None)


class Runtime:
    """The state one geo-service process keeps between requests (per app: its settings)."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings if settings is not None else Settings()
        self.settings = settings
        self.caches = Caches()
        self.principals = PrincipalCache(settings.auth.principal_cache_s)
        self.rate_limiter = TokenBucket(settings.limits.requests_per_minute, settings.limits.burst)
        # named accounts with a budget of their own (a device fleet's, the demo's simulator)
        self.user_rate_limiters = {
            name: TokenBucket(per_minute, per_minute)
            for name, per_minute in settings.limits.user_requests_per_minute.items()
        }
        self.auth_failures = FailedCredentialLimit(
            settings.limits.auth_failures_per_minute, settings.limits.auth_failure_storage
        )
        self.heavy_work = HeavyWorkLimit(
            settings.limits.heavy_per_user, settings.limits.heavy_total
        )
        self.clock = Clock()  # "now" for staleness and escalation (the database's by default)
        self.builds = KeyedLocks()  # one computation per cache key at a time
        self.pools: Pools | None = None  # an app's, from open_pools() (the CLI makes its own)
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lock = threading.Lock()
        _LIVE.add(self)

    def open_pools(self, url: str) -> Pools:
        """Build this runtime's connection pools for ``url`` (no connection is made yet);
        ``aclose()`` disposes of them."""
        if self.pools is not None:
            raise RuntimeError("the pools are open already")
        self.pools = Pools.open(url, self.settings.database)
        return self.pools

    # --- binding ---------------------------------------------------------------------------

    @contextmanager
    def bound(self) -> Iterator[Runtime]:
        """Make this the runtime ``current()`` answers for the block (this thread/task)."""
        token = _BOUND.set(self)
        try:
            yield self
        finally:
            _BOUND.reset(token)

    def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` with this runtime bound."""
        with self.bound():
            return fn(*args)

    # --- background jobs -------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in the job thread (one job at a time per process, so a heavy
        proposal never starves requests); the thread starts on the first submit."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geo-job")
            return self._executor.submit(self.call, fn, *args)

    # --- periodic tasks --------------------------------------------------------------------

    def start_every(self, name: str, interval_s: float, fn: Callable[[], Any]) -> None:
        """From the event loop: run ``fn()`` in a worker thread every ``interval_s`` until
        ``aclose()``. A failing round is logged; the next one runs on time."""
        if name in self._tasks:
            raise RuntimeError(f"periodic task {name!r} is running already")
        self._tasks[name] = asyncio.create_task(self._every(name, interval_s, fn), name=name)

    async def _every(self, name: str, interval_s: float, fn: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await run_in_threadpool(self.call, fn)
            except Exception:  # noqa: BLE001 - a bad round (database down) must not stop it
                log.exception("%s round failed", name)

    @property
    def periodic(self) -> tuple[str, ...]:
        """Names of the periodic tasks running."""
        return tuple(name for name, task in self._tasks.items() if not task.done())

    # --- life cycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every cache, remembered credential and request count (tests' clean slate).
        Jobs and periodic tasks keep running; requests in flight keep their slots."""
        self.caches.clear()
        self.principals.clear()
        self.rate_limiter.reset()
        for limiter in self.user_rate_limiters.values():
            limiter.reset()
        self.auth_failures.reset()
        self.heavy_work.reset()
        self.clock.release()

    async def aclose(self) -> None:
        """Stop the periodic tasks, let queued and running jobs finish (as a process exit did)
        and stop the job thread, then close the pools."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            await run_in_threadpool(executor.shutdown, wait=True)
        pools, self.pools = self.pools, None
        if pools is not None:
            await pools.dispose()


_BOUND: ContextVar[Runtime | None] = ContextVar("geo_service_runtime", default=None)
_LIVE: weakref.WeakSet[Runtime] = weakref.WeakSet()
_process: Runtime | None = None
_process_lock = threading.Lock()


def current() -> Runtime:
    """The runtime bound to this request, job or task; else the process runtime (built on
    first use from the environment's settings)."""
    bound = _BOUND.get()
    if bound is not None:
        return bound
    global _process
    with _process_lock:
        if _process is None:
            _process = Runtime()
        return _process


def live() -> list[Runtime]:
    """Every runtime alive in this process (each app's, and the process runtime)."""
    return list(_LIVE)


def expensive(scope_user_id: int | None) -> AbstractContextManager[None]:
    """One of the user's slots for expensive work (``GEO_LIMIT_HEAVY_PER_USER`` at once,
    ``GEO_LIMIT_HEAVY_TOTAL`` in the process): a computation a route starts only on a cache
    miss (an OGC layer, a hot spot tile layer) takes it around the computation alone.
    ``RateLimitedError`` (429) / ``ServerBusyError`` (503) when none is free; no slot for
    work without a user (the CLI, jobs)."""
    if scope_user_id is None:
        return nullcontext()
    return current().heavy_work.slot(f"user:{scope_user_id}")


def reset_all() -> None:
    """``reset()`` every runtime alive in this process."""
    for runtime in live():
        runtime.reset()


class RuntimeMiddleware:
    """Bind ``app.state.runtime`` (built by the lifespan) to every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with the app's runtime bound."""
        runtime = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        if runtime is None:
            await self.app(scope, receive, send)
            return
        with runtime.bound():
            await self.app(scope, receive, send)

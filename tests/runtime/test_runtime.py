"""The runtime: one object holds the process state, nothing starts at import, every request
runs with its app's runtime, and one ``reset()`` forgets everything."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path

import cachetools
import pytest
from fastapi.testclient import TestClient

from geo_service.api.app import create_app
from geo_service.runtime import PrincipalCache, Runtime, current, live, reset_all
from geo_service.services.dispatch.routing import forget_graphs
from geo_service.settings import DispatchSettings, Settings
from tests.conftest import as_role


def test_importing_the_app_starts_no_thread_and_builds_no_runtime() -> None:
    code = (
        "import threading, geo_service.api.app, geo_service.cli.main, geo_service.runtime as r; "
        "print(threading.active_count(), len(r.live()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["1", "0"], out.stdout + out.stderr


def test_outside_a_request_services_get_the_process_runtime_once() -> None:
    first = current()
    assert current() is first and first in live()


def test_the_job_thread_starts_on_the_first_submit_and_runs_with_its_runtime() -> None:
    def job_threads() -> int:
        return sum(t.name.startswith("geo-job") for t in threading.enumerate())

    before = job_threads()  # other runtimes of the session may have theirs
    runtime = Runtime(Settings())
    assert job_threads() == before
    assert runtime.submit(current).result(timeout=10) is runtime
    assert job_threads() == before + 1
    asyncio.run(runtime.aclose())
    assert job_threads() == before


def test_reset_forgets_caches_credentials_and_request_counts() -> None:
    runtime = Runtime(Settings())
    runtime.caches.scopes.put(("db", "D01", 1), "scope")
    runtime.caches.tile_layers.put(("db", "heatmap"), "layer")
    runtime.principals.put("gs_secret", "principal")
    runtime.rate_limiter.burst = 1.0
    assert runtime.rate_limiter.take("user:1") == 0.0
    assert runtime.rate_limiter.take("user:1") > 0.0  # the bucket is empty
    runtime.reset()
    assert len(runtime.caches.scopes) == 0 and len(runtime.caches.tile_layers) == 0
    assert runtime.principals.get("gs_secret") is None
    assert runtime.rate_limiter.take("user:1") == 0.0


def test_reset_all_and_forgetting_graphs_reach_every_runtime_of_the_process() -> None:
    one, two = Runtime(Settings()), Runtime(Settings())
    for runtime in (one, two):
        runtime.caches.road_graphs.put("db", ((1, 1, None), None))
        runtime.caches.study_cells.put(("db", 1, 8), [1, 2])
    forget_graphs()
    assert all(len(r.caches.road_graphs) == 0 for r in (one, two))
    assert all(len(r.caches.study_cells) == 1 for r in (one, two))
    reset_all()
    assert all(len(r.caches.study_cells) == 0 for r in (one, two))


def test_a_remembered_credential_ends_at_its_deadline_and_on_forget_all() -> None:
    cache = PrincipalCache(ttl_s=60)
    cache.put("token", "principal", until=time.monotonic() + 0.05)
    cache.put("key", "principal")
    assert cache.get("token") == "principal"
    time.sleep(0.1)
    assert cache.get("token") is None and cache.get("key") == "principal"
    PrincipalCache.forget_all()
    assert cache.get("key") is None
    off = PrincipalCache(ttl_s=0)
    off.put("key", "principal")
    assert off.get("key") is None


def test_periodic_tasks_run_off_the_loop_survive_a_failing_round_and_stop_on_close() -> None:
    runtime = Runtime(Settings())
    rounds: list[Runtime] = []

    def work() -> None:
        rounds.append(current())
        if len(rounds) == 1:
            raise RuntimeError("database down")

    async def scenario() -> tuple[str, ...]:
        runtime.start_every("escalation", 0.01, work)
        with pytest.raises(RuntimeError, match="running already"):
            runtime.start_every("escalation", 0.01, work)
        while len(rounds) < 3:
            await asyncio.sleep(0.01)
        running = runtime.periodic
        await runtime.aclose()
        return running

    assert asyncio.run(scenario()) == ("escalation",)
    assert runtime.periodic == () and all(r is runtime for r in rounds)


def test_each_app_builds_its_runtime_and_pools_in_the_lifespan_and_binds_it_to_requests(
    settings: Settings, role_keys: dict[str, str]
) -> None:
    tuned = settings.model_copy(
        update={"dispatch": DispatchSettings(escalation_interval_s=3600)}, deep=True
    )
    app = create_app(tuned)
    assert not hasattr(app.state, "runtime")  # nothing before the app starts
    with TestClient(app, headers=as_role(role_keys, "dispatcher@community")) as client:
        runtime = app.state.runtime
        assert runtime.periodic == ("escalation", "switch-over")
        assert runtime.pools is not None and app.state.engine is runtime.pools.engine
        assert client.get("/incidents", params={"limit": 1}).status_code == 200
        # the area-bound caller's jurisdiction is cached in this app's runtime only
        assert len(runtime.caches.scopes) == 1
        assert runtime is not current()
        assert len(current().caches.scopes) == 0
        assert runtime.principals.get(role_keys["dispatcher@community"]) is not None
    # the lifespan stopped the escalation loop and closed the pools
    assert runtime.periodic == () and runtime.pools is None


def test_the_session_client_forgets_what_it_cached_between_tests(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert client.get("/areas", params={"level": "district"}).status_code == 200
    assert runtime.principals.get(client.headers["X-API-Key"]) is not None
    runtime.reset()
    assert runtime.principals.get(client.headers["X-API-Key"]) is None


# A memo without a bound is allowed only where its arguments come from a fixed, small set.
# (module, function): why it cannot grow
UNBOUNDED_MEMOS_ALLOWED = {
    ("geo_service/i18n.py", "translations"): "language and domain are the served ones (2 x 2)",
    ("geo_service/web/pages.py", "_environment"): "no arguments",
    ("geo_service/db/sql/__init__.py", "sql_source"): "the names of the package's .sql files",
    ("geo_service/db/sql/__init__.py", "sql"): "the names of the package's .sql files",
    ("geo_service/geo/transformations.py", "_network_off"): "no arguments",
    ("geo_service/ingest/readers.py", "_harden_gdal"): "no arguments",
}


def _memo_bound(decorator: ast.expr) -> str | None:
    """'unbounded' for @cache / @lru_cache(maxsize=None), 'bounded' for another lru_cache,
    None for a decorator that memoises nothing."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if name == "cache":
        return "unbounded"
    if name != "lru_cache":
        return None
    if call is None:
        return "bounded"  # @lru_cache: maxsize 128
    sizes = [k.value for k in call.keywords if k.arg == "maxsize"] + list(call.args[:1])
    unbounded = any(isinstance(s, ast.Constant) and s.value is None for s in sizes)
    return "unbounded" if unbounded else "bounded"


def test_every_cache_of_the_process_is_bounded() -> None:
    """The demo server's memory (issue: 1.08 GB RSS): every cache the services keep is a
    cachetools cache with a size cap, and every function memo is bounded unless its
    arguments come from a fixed set (listed above with the reason)."""
    caches = Runtime(Settings()).caches
    for f in dataclasses.fields(caches):
        cache = getattr(caches, f.name)._cache
        assert isinstance(cache, cachetools.Cache), f.name
        assert 0 < cache.maxsize <= 4096, (f.name, cache.maxsize)
    package = Path(__file__).resolve().parents[2] / "geo_service"
    unbounded = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if any(_memo_bound(d) == "unbounded" for d in node.decorator_list):
                    unbounded.add((str(path.relative_to(package.parent)), node.name))
    assert unbounded == set(UNBOUNDED_MEMOS_ALLOWED), unbounded ^ set(UNBOUNDED_MEMOS_ALLOWED)

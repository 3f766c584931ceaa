"""Fault test: 5,000 idempotent incident posts while the database restarts mid-run.

A client posts incidents with Idempotency-Keys from 8 threads and retries every failure. Half
way through, ``geo-service db stop`` / ``db start`` restart the (separate, embedded) database.
Afterwards the database must hold exactly one incident per key the client saw accepted: none
lost, none duplicated; and the API must have answered the outage with 503s, never a 500.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.engine import make_engine
from geo_service.db.migrate import upgrade_to_head
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.services.access.auth import create_key, create_user

POSTS = 5_000
THREADS = 8
RESTART_AFTER = 1_500
GIVE_UP_S = 240


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    if os.environ.get("GEO_DATABASE_URL"):
        pytest.skip("restarts an embedded cluster of its own; not possible on an external URL")
    data_dir = tmp_path_factory.mktemp("restart") / ".geo-service"
    cluster = EmbeddedCluster(data_dir, log=lambda m: None)
    cluster.start("geo")
    # As `make demo` does: migrate and load as the owner, serve as the application role.
    owner = cluster.url("geo", role="owner")
    url = cluster.url("geo", role="app")
    upgrade_to_head(owner)
    engine = make_engine(owner)
    city = generate_city(
        seed=21, grids=12, incidents=50, households_per_grid=2, end_date=date.today()
    )
    load_city(engine, city)
    with Session(engine) as session:
        user = create_user(
            session, name="fault-client", role="dispatcher", area_code=None, actor="test"
        )
        key = create_key(session, user, actor="test")[1]
        session.commit()
    engine.dispose()
    yield data_dir, url, key, city
    cluster.stop()


def _serve(url: str, data_dir: Path) -> tuple[subprocess.Popen, str]:
    """``geo-service serve`` in its own process (the client threads get this one's GIL)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "GEO_DATABASE_URL": url,
        "GEO_DATA_DIR": str(data_dir),
        "GEO_POOL_SIZE": str(THREADS),
        "GEO_LIMIT_REQUESTS_PER_MINUTE": "1000000",
        "GEO_LIMIT_BURST": "100000",
    }
    exe = Path(sys.executable).parent / "geo-service"
    server = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server, base


def _db(data_dir: Path, command: str) -> None:
    env = {**os.environ, "GEO_DATA_DIR": str(data_dir)}
    env.pop("GEO_DATABASE_URL", None)
    exe = Path(sys.executable).parent / "geo-service"
    done = subprocess.run([str(exe), "db", command], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"db {command}: {done.stdout}{done.stderr}"


def test_no_incident_is_lost_or_duplicated_across_a_database_restart(own_cluster) -> None:  # noqa: ANN001
    data_dir, url, key, city = own_cluster
    server, base = _serve(url, data_dir)
    grids = city.areas[city.areas.level == "grid"]
    points = [(p.x, p.y) for p in grids.geometry.representative_point()]
    keys = [f"fault-{uuid.uuid4()}" for _ in range(POSTS)]
    accepted: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    done = [0]
    local = threading.local()

    def post(i: int) -> None:
        lon, lat = points[i % len(points)]
        body = {
            "category": "sanitation",
            "location": {"lon": lon, "lat": lat},
            "description": f"report {i}",
        }
        if not hasattr(local, "http"):  # one keep-alive connection per client thread
            local.http = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10)
        deadline = time.time() + GIVE_UP_S
        while time.time() < deadline:
            try:
                response = local.http.post(
                    "/incidents", json=body, headers={"Idempotency-Key": keys[i]}
                )
            except httpx.HTTPError:  # connection refused or reset: retry the same key
                time.sleep(0.2)
                continue
            with lock:
                statuses[response.status_code] += 1
            if response.status_code in (200, 201):
                with lock:
                    accepted[keys[i]] = response.json()["id"]
                    done[0] += 1
                return
            time.sleep(0.2)

    restarted = threading.Event()

    def restart_when_due() -> None:
        while done[0] < RESTART_AFTER:
            time.sleep(0.05)
        _db(data_dir, "stop")
        time.sleep(2.0)
        _db(data_dir, "start")
        restarted.set()

    restarter = threading.Thread(target=restart_when_due, daemon=True)
    restarter.start()
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(post, range(POSTS)))
        restarter.join(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert restarted.is_set(), "the database was never restarted"
    assert len(accepted) == POSTS, f"{POSTS - len(accepted)} posts never got through"
    assert statuses[500] == 0, statuses
    assert statuses[503] > 0, f"the outage was never seen: {statuses}"
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT request_key, count(*), min(id::text) FROM incidents "
                "WHERE request_key LIKE 'fault-%' GROUP BY request_key"
            )
        ).all()
    engine.dispose()
    assert len(rows) == POSTS
    assert all(n == 1 for _, n, _ in rows)
    assert {k: i for k, _, i in rows} == accepted


def test_heatmap_read_answers_503_while_the_database_is_down(own_cluster) -> None:  # noqa: ANN001
    """The heatmap's hot read runs on the driver connection, outside SQLAlchemy's execution:
    a dead connection must still be a 503 problem (and be dropped), and the next request
    after the restart must find a fresh one."""
    data_dir, url, key, _city = own_cluster
    server, base = _serve(url, data_dir)
    params = {"res": 8, "format": "json"}
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as http:
            before = http.get("/heatmap/h3", params=params)
            assert before.status_code == 200, before.text
            _db(data_dir, "stop")
            try:
                down = http.get("/heatmap/h3", params=params)
                assert down.status_code == 503, down.text
                assert down.headers["content-type"].startswith("application/problem+json")
            finally:
                _db(data_dir, "start")
            statuses = []
            for _ in range(3):  # a connection the pool had before the restart may fail once
                again = http.get("/heatmap/h3", params=params)
                statuses.append(again.status_code)
                if again.status_code == 200:
                    break
            assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
            assert again.json()["total"] == before.json()["total"]
    finally:
        server.terminate()
        server.wait(timeout=20)

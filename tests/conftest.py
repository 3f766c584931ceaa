"""Test fixtures: a real PostGIS (the embedded cluster, or GEO_DATABASE_URL), migrated once, a
small demo city loaded once, and a clean slate of writes for every test.
"""

from __future__ import annotations

import functools
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.api.app import create_app
from geo_service.db.cluster import EmbeddedCluster
from geo_service.db.engine import (
    make_engine,
    normalise_url,
    recreate_cluster_database,
    recreate_database,
)
from geo_service.db.migrate import upgrade_to_head
from geo_service.demo.city import DemoCity, generate_city
from geo_service.demo.load import load_city
from geo_service.runtime import reset_all
from geo_service.settings import (
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    LimitSettings,
    PhotoSettings,
    Settings,
)
from tests.skip_policy import pytest_runtest_makereport  # noqa: F401 (a skip fails)

REPO = Path(__file__).resolve().parent.parent
# Real data nobody here wrote, beside the checkout (CI has it there too).
SHARED_DATA = Path(os.environ.get("GEO_SHARED_DATA", REPO.parent / "shared" / "data"))
ARTIFACTS = REPO / "tests" / "artifacts"
# Parallel runs on one server (several checkouts or workers) each take their own database.
TEST_DATABASE = os.environ.get("GEO_TEST_DATABASE", "geo_test")
# Read once: tests point GEO_DATABASE_URL at the test database to drive the CLI.
EXTERNAL_URL = os.environ.get("GEO_DATABASE_URL")


@functools.cache
def embedded_cluster() -> EmbeddedCluster | None:
    """The embedded cluster the tests use (started once), or None with GEO_DATABASE_URL."""
    if EXTERNAL_URL:
        return None
    cluster = EmbeddedCluster(Path(os.environ.get("GEO_DATA_DIR", REPO / ".geo-service")))
    cluster.start("geo")
    return cluster


def _server_url() -> str:
    """A URL on the test server: GEO_DATABASE_URL's, or the embedded cluster's superuser's."""
    if EXTERNAL_URL:
        return normalise_url(EXTERNAL_URL)
    cluster = embedded_cluster()
    assert cluster is not None
    return cluster.url("geo", role="admin")


def make_database(name: str) -> str:
    """A new, migrated database ``name`` on the test server (dropped first if it exists); the
    URL of its owner role on the embedded cluster (migrations' and set-up's role)."""
    # Parallel runs with their own GEO_TEST_DATABASE also keep their extra databases apart.
    if TEST_DATABASE != "geo_test" and name != TEST_DATABASE:
        name = f"{name}_{TEST_DATABASE.removeprefix('geo_test_')}"[:63]
    cluster = embedded_cluster()
    if cluster is None:
        return recreate_database(_server_url(), name)
    return recreate_cluster_database(cluster, name)


def role_url(database: str, role: str) -> str:
    """URL of ``database`` as ``role`` (app | owner | purge) on the embedded cluster; with
    GEO_DATABASE_URL, that URL (one role does everything there)."""
    cluster = embedded_cluster()
    if cluster is None:
        assert EXTERNAL_URL is not None
        return normalise_url(EXTERNAL_URL)
    return cluster.url(database, role=role)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def database_url() -> str:
    """Owner's URL of a migrated, empty test database on a real PostGIS (the tests' own set-up
    and direct SQL use it; the app under test connects as the application role)."""
    # With GEO_DATABASE_URL the tests use that database itself; else one of their own.
    if EXTERNAL_URL:
        url = normalise_url(EXTERNAL_URL)
        upgrade_to_head(url)
        return url
    return make_database(TEST_DATABASE)


@pytest.fixture(scope="session")
def app_database_url(database_url: str) -> str:
    """URL of the test database as the application role (what the API and the CLI use)."""
    return role_url(TEST_DATABASE, "app")


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The owner's engine on the test database, for the tests' own set-up and checks."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def purge_engine(database_url: str) -> Iterator[Engine]:
    """An engine as the retention purge role: the only one that may delete audit rows."""
    eng = make_engine(role_url(TEST_DATABASE, "purge"))
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_city() -> DemoCity:
    """A small demo city: 60 grids, 20 households a grid, 4,000 incidents over 365 days."""
    return generate_city(
        seed=7, grids=60, incidents=4000, households_per_grid=20, end_date=date.today()
    )


@pytest.fixture(scope="session")
def loaded_city(engine: Engine, demo_city: DemoCity) -> DemoCity:
    """The small demo city, loaded once into the test database."""
    with engine.connect() as conn:
        has_city = conn.execute(text("SELECT count(*) FROM boundary_versions")).scalar_one()
    if not has_city:
        load_city(engine, demo_city)
    return demo_city


@pytest.fixture
def responders_restored(engine: Engine) -> Iterator[None]:
    """Put the responders' status and positions back after a test that moves existing ones
    (the simulator, the console in a browser): ``clean_writes`` removes new rows only."""
    with engine.connect() as conn:
        saved = conn.execute(
            text("SELECT id, status, ST_AsText(position) AS wkt, position_at FROM responders")
        ).all()
    yield
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE responders SET status = :status, position = ST_GeomFromText(:wkt, 4326), "
                "position_at = :position_at WHERE id = :id"
            ),
            [row._asdict() for row in saved],
        )


@pytest.fixture(autouse=True)
def clean_writes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Undo every write a test makes to the mutable tables (the loaded city stays), and reset
    every runtime (caches, remembered credentials, request counts)."""
    if "engine" not in request.fixturenames and "client" not in request.fixturenames:
        yield
        return
    eng: Engine = request.getfixturevalue("engine")
    purge: Engine = request.getfixturevalue("purge_engine")
    id_tables = (
        "boundary_versions",
        "households",
        "rental_units",
        "responders",
        "users",
        "api_keys",
        "batch_runs",
    )
    with eng.connect() as conn:
        started = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        max_ids = {
            t: conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar_one()
            for t in id_tables
        }
    yield
    with purge.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE at >= :t"), {"t": started})
    with eng.begin() as conn:
        conn.execute(text("DELETE FROM incidents WHERE created_at >= :t"), {"t": started})
        # a responder a test sent to one of those is freed with it, as resolving would
        conn.execute(
            text(
                "UPDATE responders r SET status = 'available' WHERE r.status = 'busy' "
                "AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.responder_id = r.id "
                "AND i.status IN ('dispatched', 'accepted', 'on_scene'))"
            )
        )
        for table, max_id in max_ids.items():
            conn.execute(text(f"DELETE FROM {table} WHERE id > :v"), {"v": max_id})
    # ... and what any runtime remembers of them: caches, credentials, request counts
    reset_all()
    # ... and what the shared client carries: a ?lang= switch sets a language cookie that
    # outranks Accept-Language, and would make every later test's client speak that language
    if "client" in request.fixturenames:
        request.getfixturevalue("client").cookies.clear()


@pytest.fixture(scope="session")
def settings(app_database_url: str, database_url: str) -> Settings:
    """The app under test connects as the application role, like a deployment."""
    # A generous rate limit: the fuzz tests send hundreds of requests with one key.
    return Settings(
        database=DatabaseSettings(database_url=app_database_url, database_owner_url=database_url),
        api=ApiSettings(map_tiles="none"),
        # ... and no failed-credential lock-out or cost limit in the way of other tests (the
        # tests of those limits build apps of their own with tight settings)
        limits=LimitSettings(
            requests_per_minute=100_000,
            burst=10_000,
            auth_failures_per_minute=0,
            heavy_per_user=1000,
            heavy_total=1000,
        ),
        # escalation changes shared rows on its own clock: tests drive it explicitly
        dispatch=DispatchSettings(escalation_interval_s=0),
        # photos go to a directory of the run's own, never into the data directory
        photos=PhotoSettings(dir=Path(tempfile.mkdtemp(prefix="geo-test-photos-"))),
    )


@pytest.fixture(scope="session")
def role_keys(engine: Engine, loaded_city: DemoCity) -> dict[str, str]:
    """An API key per role (the grid worker bound to the busiest grid), plus keys bound to a
    community (``dispatcher@community``) and a district (``analyst@district``).

    The users are the tests' own, so issuing demo keys (which revokes the old demo keys) can
    never invalidate a key a test holds.
    """
    from sqlalchemy.orm import Session

    from geo_service.services.access.auth import create_key, create_user

    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    busiest = loaded_city.households.grid_code.value_counts().index[0]
    community = grids.set_index("code").parent_code[busiest]
    district = busiest.split("-")[0]
    users = (
        ("admin", "admin", None),
        ("dispatcher", "dispatcher", None),
        ("planner", "planner", None),
        ("analyst", "analyst", None),
        ("grid_worker", "grid_worker", busiest),
        ("dispatcher@community", "dispatcher", community),
        ("analyst@district", "analyst", district),
    )
    keys: dict[str, str] = {}
    with Session(engine) as session:
        for label, role, area in users:
            user = create_user(
                session, name=f"test-{label}", role=role, area_code=area, actor="tests"
            )
            keys[label] = create_key(session, user, actor="tests")[1]
        session.commit()
    return keys


@pytest.fixture(scope="session")
def client(
    settings: Settings, loaded_city: DemoCity, role_keys: dict[str, str]
) -> Iterator[TestClient]:
    """A client authenticated as admin (tests of other roles pass their own header)."""
    with TestClient(create_app(settings), headers={"X-API-Key": role_keys["admin"]}) as c:
        yield c


def as_role(role_keys: dict[str, str], role: str) -> dict[str, str]:
    """Headers that authenticate as ``role``."""
    return {"X-API-Key": role_keys[role]}


def bound_user(engine: Engine, role: str, area_code: str) -> dict[str, str]:
    """Headers of a new user of ``role`` bound to the area ``area_code``, named
    ``{role}@{area_code}`` (audit rows name them ``{role}@{area_code} ({role})``)."""
    from sqlalchemy.orm import Session

    from geo_service.services.access.auth import create_key, create_user

    with Session(engine) as session:
        user = create_user(
            session, name=f"{role}@{area_code}", role=role, area_code=area_code, actor="tests"
        )
        key = create_key(session, user, actor="tests")[1]
        session.commit()
    return {"X-API-Key": key}


def version_in_force_id(engine: Engine) -> int:
    """The id of the boundary version in force (the latest published, still open)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT id FROM boundary_versions WHERE status = 'published' "
                    "AND effective_to IS NULL ORDER BY effective_from DESC LIMIT 1"
                )
            ).scalar_one()
        )


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port (for browser tests), its base URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(settings: Settings, loaded_city: DemoCity) -> Iterator[str]:
    """The API served by uvicorn on a free loopback port, for browser tests."""
    with serving(create_app(settings)) as base:
        yield base


def grid_point(city: DemoCity, code: str | None = None) -> tuple[float, float, str]:
    """A point well inside a grid of the city (its representative point), with the code."""
    grids = city.areas[city.areas.level == "grid"]
    row = grids.iloc[0] if code is None else grids[grids.code == code].iloc[0]
    pt = row.geometry.representative_point()
    return pt.x, pt.y, row.code


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    """The one value a statement (bound parameters) returns: a count, a status."""
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def csv_upload(rows: list[dict[str, Any]], name: str = "upload.csv") -> dict[str, Any]:
    """The multipart ``file`` part of an import: ``rows`` as a CSV file named ``name``."""
    import io

    import pandas as pd

    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return {"file": (name, buffer.getvalue().encode(), "text/csv")}


def problem(response) -> dict:  # noqa: ANN001
    """Assert a response is RFC 9457 problem details and return its body."""
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.headers["content-type"],
        response.text,
    )
    body = response.json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
    assert body["status"] == response.status_code
    return body

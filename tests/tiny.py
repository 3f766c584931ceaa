"""The field cases' tiny hierarchy (district D1 with grids G1, G2 in Chicago, from
``../shared/cases/common/``) in a database of its own, in force since 2000, with an admin
client: for tests that need a city holding nothing but what they put in it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session

from geo_service.api.app import create_app
from geo_service.db.engine import make_engine
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.boundaries.publish import publish_version
from geo_service.services.ingest.imports import ImportOptions, import_file
from geo_service.settings import (
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    LimitSettings,
    Settings,
)
from tests.conftest import make_database, role_url
from tests.ingest.helpers import CASES

COMMON = CASES / "common"
IN_FORCE_FROM = datetime(2000, 1, 1, tzinfo=UTC)


@contextmanager
def tiny_city(database: str, tmp: Path) -> Iterator[tuple[Engine, str, TestClient]]:
    """Create database ``database`` holding only the tiny hierarchy; yield its owner engine,
    the application role's URL and an admin's TestClient (rate limits lifted, escalation
    off)."""
    url = make_database(database)
    name = make_url(url).database
    assert name is not None
    engine = make_engine(url)
    district = import_file(
        engine,
        "boundaries",
        COMMON / "tiny_district.geojson",
        ImportOptions(level="district", version_name="tiny", rejects_path=tmp / "d.csv"),
        actor="test",
    )
    assert district.version_id is not None
    import_file(
        engine,
        "boundaries",
        COMMON / "tiny_grids.geojson",
        ImportOptions(
            level="grid",
            parent_level="district",
            version_id=district.version_id,
            rejects_path=tmp / "g.csv",
        ),
        actor="test",
    )
    publish_version(engine, district.version_id, IN_FORCE_FROM, actor="test", force=True)
    with Session(engine) as session:
        user = create_user(session, name="tiny-admin", role="admin", area_code=None, actor="t")
        key = create_key(session, user, actor="t")[1]
        session.commit()
    app_url = role_url(name, "app")
    settings = Settings(
        database=DatabaseSettings(database_url=app_url, database_owner_url=url),
        api=ApiSettings(map_tiles="none"),
        limits=LimitSettings(requests_per_minute=100_000, burst=10_000, auth_failures_per_minute=0),
        dispatch=DispatchSettings(escalation_interval_s=0),
    )
    try:
        with TestClient(create_app(settings), headers={"X-API-Key": key}) as client:
            yield engine, app_url, client
    finally:
        engine.dispose()

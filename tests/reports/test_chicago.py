"""The report on real data: Chicago's police districts and beats with the 2019 crimes sample,
imported as the README's walk-through does (a database of its own), reported in
America/Chicago's local days; every figure equals the independent count of
``test_performance``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session

from geo_service.api.app import create_app
from geo_service.db.engine import make_engine
from geo_service.demo.chicago import import_crimes, import_police_areas
from geo_service.services.access.auth import create_key, create_user
from geo_service.settings import ApiSettings, DatabaseSettings, LimitSettings, Settings
from tests.conftest import SHARED_DATA, make_database, role_url
from tests.reports.test_performance import _count, _incidents, _open_at, _same

CHICAGO = SHARED_DATA / "chicago"
ZONE = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module")
def chicago(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, TestClient]]:
    owner = make_database("geo_test_chicago_reports")
    engine = make_engine(owner)
    tmp = tmp_path_factory.mktemp("chicago_reports")
    import_police_areas(
        engine, CHICAGO, tmp, effective_from=datetime(2019, 1, 1, tzinfo=ZONE), actor="test"
    )
    import_crimes(engine, CHICAGO, tmp, actor="test")
    with Session(engine) as session:
        user = create_user(
            session, name="chicago-admin", role="admin", area_code=None, actor="test"
        )
        key = create_key(session, user, actor="test")[1]
        session.commit()
    name = make_url(owner).database
    settings = Settings(
        database=DatabaseSettings(database_url=role_url(name, "app"), database_owner_url=owner),
        api=ApiSettings(map_tiles="none", timezone="America/Chicago"),
        limits=LimitSettings(requests_per_minute=100_000, burst=10_000),
    )
    with TestClient(create_app(settings), headers={"X-API-Key": key}) as client:
        client.app.state.runtime.clock.set(datetime(2020, 1, 1, tzinfo=ZONE))  # type: ignore[attr-defined]
        yield engine, client
    engine.dispose()


@pytest.mark.parametrize("level", ["district", "grid"])
def test_chicago_figures_equal_an_independent_count(chicago: tuple, level: str) -> None:
    engine, client = chicago
    frame = _incidents(engine)
    since = pd.Timestamp(datetime(2019, 1, 1, tzinfo=ZONE))
    until = pd.Timestamp(datetime(2020, 1, 1, tzinfo=ZONE))
    rows = frame[(frame.reported_at >= since) & (frame.reported_at < until)]
    params: dict = {"level": level, "since": "2019-01-01", "until": "2020-01-01"}
    key = f"{level}_id"
    if level == "grid":  # the beats of the busiest district
        parent = int(rows.district_id.value_counts().index[0])
        params["parent_id"] = parent
        rows = rows[rows.district_id == parent]
    body = client.get("/reports/performance", params=params).json()
    assert body["since"] == "2019-01-01T00:00:00-06:00" and body["timezone"] == "America/Chicago"
    assert len(rows) > (40_000 if level == "district" else 1_500)
    open_rows = _open_at(frame, until).iloc[0:0]  # everything imported closed
    assert sum(a["received"] for a in body["areas"]) == len(rows)
    for area in body["areas"]:
        _same(area, _count(rows[rows[key] == area["id"]], open_rows, until), area["code"])
    _same(body["total"], _count(rows, open_rows, until), "total")
    assert body["total"]["by_source"]["import"] == len(rows)
    # local months of America/Chicago: January 2019 starts at 06:00 UTC
    months = {m["start"]: m["received"] for m in body["trends"]["months"]}
    local_month = rows.reported_at.dt.tz_convert(ZONE).dt.strftime("%Y-%m-01")
    assert months == local_month.value_counts().sort_index().to_dict()

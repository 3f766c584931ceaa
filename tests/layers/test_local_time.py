"""Local time (issue 19): the deployment's zone (GEO_TIMEZONE) says what a day is.

Days of the heatmap's rollups and windows fall at local midnight (an incident at 23:30 and
one at 00:30 Beijing time are in two days); a date alone is local midnight and a time without
an offset local time on every route, garbage is a 422 (400 on Open311); imports read naive
times in the deployment's zone unless told otherwise; and a change of zone rebuilds the
rollups, which record their zone, so a process of another zone refuses (503) instead of
mixing two calendars.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import h3
import h3.api.basic_int as h3i
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from geo_service.api.app import create_app
from geo_service.cli.main import app as cli
from geo_service.db.engine import make_engine
from geo_service.db.migrate import upgrade_to_head
from geo_service.demo.city import DemoCity
from geo_service.errors import InvalidInputError
from geo_service.instants import local_day, local_day_bounds, parse_instant
from geo_service.runtime import Runtime
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.ingest.imports import ImportOptions, import_file
from geo_service.settings import (
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    LimitSettings,
    Settings,
)
from tests.conftest import embedded_cluster, grid_point, make_database, problem, role_url

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHICAGO = ZoneInfo("America/Chicago")
# Beijing time: 23:30 on the last day of August and 00:30 on the first of September (2019: a
# year the demo city has no incidents in), i.e. 15:30 and 16:30 UTC of the same UTC day
LATE = datetime(2019, 8, 31, 23, 30, tzinfo=SHANGHAI)
EARLY = datetime(2019, 9, 1, 0, 30, tzinfo=SHANGHAI)


# --- the parser (pure) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-09-01", datetime(2026, 8, 31, 16, tzinfo=UTC)),  # a date: local midnight
        ("2026-09-01T00:30:00", datetime(2026, 8, 31, 16, 30, tzinfo=UTC)),  # naive: local
        ("2026-09-01 00:30", datetime(2026, 8, 31, 16, 30, tzinfo=UTC)),
        ("2026-09-01t00:30:00.250", datetime(2026, 8, 31, 16, 30, 0, 250000, tzinfo=UTC)),
        ("2026-09-01T00:30:00Z", datetime(2026, 9, 1, 0, 30, tzinfo=UTC)),  # offsets kept
        ("2026-09-01T00:30:00-05:00", datetime(2026, 9, 1, 5, 30, tzinfo=UTC)),
        (date(2026, 9, 1), datetime(2026, 8, 31, 16, tzinfo=UTC)),
        (datetime(2026, 9, 1, 0, 30), datetime(2026, 8, 31, 16, 30, tzinfo=UTC)),
    ],
)
def test_dates_are_local_midnight_and_naive_times_local(given: object, expected: datetime) -> None:
    parsed = parse_instant(given, "since", zone=SHANGHAI)  # type: ignore[arg-type]
    assert parsed.tzinfo is not None and parsed == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("2026-W36-1", "is not a date or time"),  # ISO week date: not RFC 3339
        ("20260901", "is not a date or time"),  # basic format
        ("1788220800", "is not a date or time"),  # unix seconds
        ("yesterday", "is not a date or time"),
        ("2026-02-30", "is not a valid date or time"),
        ("2026-09-01T25:00", "is not a valid date or time"),
        ("1899-12-31", "1900 to 2199"),
        ("0001-01-01T00:00:00+14:00", "1900 to 2199"),
    ],
)
def test_garbage_is_refused_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        parse_instant(given, "since", zone=SHANGHAI)


def test_local_times_the_clocks_skip_or_repeat_need_an_offset() -> None:
    with pytest.raises(InvalidInputError, match="does not exist in America/Chicago"):
        parse_instant("2026-03-08T02:30:00", zone=CHICAGO)
    with pytest.raises(InvalidInputError, match="occurs twice in America/Chicago"):
        parse_instant("2026-11-01T01:30:00", zone=CHICAGO)
    # ... with one they name an instant
    assert parse_instant("2026-11-01T01:30:00-05:00", zone=CHICAGO) == datetime(
        2026, 11, 1, 6, 30, tzinfo=UTC
    )


def test_local_day_bounds_follow_the_zone_calendar() -> None:
    start, end = local_day_bounds(date(2026, 9, 1), SHANGHAI)
    assert (start, end) == (
        datetime(2026, 8, 31, 16, tzinfo=UTC),
        datetime(2026, 9, 1, 16, tzinfo=UTC),
    )
    assert local_day(LATE, SHANGHAI) == date(2019, 8, 31)
    assert local_day(EARLY, SHANGHAI) == date(2019, 9, 1)
    # a day across the end of daylight saving time lasts 25 hours
    start, end = local_day_bounds(date(2026, 11, 1), CHICAGO)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)


# --- the heatmap and its rollups on local days (the shared test city, Asia/Shanghai) --------


def _first_of_a_month(city: DemoCity) -> date:
    """A local day D, the first of a month inside the test city's history (its grids are in
    force then): the night before it is the last of the month before."""
    first = city.incidents.reported_at.min().tz_convert("Asia/Shanghai").date()
    later = first + timedelta(days=40)
    return (later.replace(day=1) + timedelta(days=32)).replace(day=1)


def _local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def _utc(day: date) -> datetime:
    """Local midnight of ``day`` in UTC, worked out here (Shanghai: UTC+8, no DST since 1991)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)


def _buckets(engine: Engine, cell8: int, day: date) -> dict[date, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT bucket, sum(n) FROM incident_total_day WHERE cell = :c "
                    "AND bucket BETWEEN :a AND :b GROUP BY 1"
                ),
                {"c": cell8, "a": day - timedelta(days=2), "b": day + timedelta(days=1)},
            ).all()
        )


def _counted(engine: Engine, since: datetime, until: datetime, category: str | None) -> int:
    """Incidents in [since, until), counted from the incidents themselves."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM incidents WHERE reported_at >= :a AND reported_at < :b "
                "AND (CAST(:c AS text) IS NULL OR category = :c)"
            ),
            {"a": since, "b": until, "c": category},
        ).scalar_one()


@pytest.fixture
def night(
    client: TestClient, loaded_city: DemoCity
) -> Iterator[tuple[date, float, float, dict, dict]]:
    """The day D and two incidents filed over the API in a grid: at 23:30 the night before D
    (with its offset) and at 00:30 on D (a naive local time)."""
    day = _first_of_a_month(loaded_city)
    lon, lat, _ = grid_point(loaded_city)
    filed = []
    for reported_at in (
        _local(day - timedelta(days=1), 23, 30).isoformat(),
        f"{day.isoformat()}T00:30:00",
    ):
        response = client.post(
            "/incidents",
            json={
                "category": "traffic",
                "location": {"lon": lon, "lat": lat},
                "reported_at": reported_at,
            },
        )
        assert response.status_code == 201, response.text
        filed.append(response.json())
    yield day, lon, lat, filed[0], filed[1]


def test_an_incident_at_2330_and_one_at_0030_beijing_time_fall_in_two_local_days(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    day = _first_of_a_month(loaded_city)
    eve = day - timedelta(days=1)
    lon, lat, _ = grid_point(loaded_city)
    cell8 = h3i.latlng_to_cell(lat, lon, 8)
    before = _buckets(engine, cell8, day)
    for when in (_local(eve, 23, 30), _local(day, 0, 30)):
        response = client.post(
            "/incidents",
            json={
                "category": "traffic",
                "location": {"lon": lon, "lat": lat},
                "reported_at": when.isoformat(),
            },
        )
        assert response.status_code == 201, response.text
    after = _buckets(engine, cell8, day)
    added = {d: after.get(d, 0) - before.get(d, 0) for d in after}
    # UTC days would put both in the day before D (15:30 and 16:30 UTC)
    assert {d: n for d, n in added.items() if n} == {eve: 1, day: 1}
    cells = {res: h3.latlng_to_cell(lat, lon, res) for res in range(6, 11)}
    month_before = (day - timedelta(days=1)).replace(day=1)
    month_after = (day + timedelta(days=32)).replace(day=1)
    windows = {  # date-only bounds: local midnights; how many of our two each holds
        (day, day + timedelta(days=1)): 1,
        (eve, day): 1,
        (eve, day + timedelta(days=1)): 2,
        (day, month_after): 1,  # whole months: the monthly rollups
        (month_before, day): 1,
    }
    for (since, until), ours in windows.items():
        for category in (None, "traffic"):  # the totals and the per-category rollups
            expected = _counted(engine, _utc(since), _utc(until), category)
            for res, cell in cells.items():  # day, month and cumulative sources
                params = {
                    "res": res,
                    "since": since.isoformat(),
                    "until": until.isoformat(),
                    "format": "json",
                }
                if category:
                    params["category"] = category
                response = client.get("/heatmap/h3", params=params)
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["total"] == expected, (since, until, res, category)
                mine = {c["h3"]: c["count"] for c in body["cells"]}.get(cell, 0)
                assert mine >= ours, (since, until, res, category)
    # the same day asked with naive local times and with explicit offsets
    naive = client.get(
        "/heatmap/h3",
        params={
            "res": 10,
            "since": f"{day.isoformat()}T00:00:00",
            "until": f"{(day + timedelta(days=1)).isoformat()}T00:00:00",
            "format": "json",
        },
    ).json()
    offsets = client.get(
        "/heatmap/h3",
        params={
            "res": 10,
            "since": _utc(day).isoformat(),
            "until": _utc(day + timedelta(days=1)).isoformat(),
            "format": "json",
        },
    ).json()
    in_day = _counted(engine, _utc(day), _utc(day + timedelta(days=1)), None)
    assert naive["total"] == offsets["total"] == in_day
    # and by area (the grids of the version in force)
    by_area = client.get(
        "/heatmap/grids",
        params={"since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat()},
    )
    assert by_area.status_code == 200, by_area.text
    assert 0 < by_area.json()["total"] <= in_day


# --- date-only and naive parameters on other routes ----------------------------------------


def test_date_only_and_naive_parameters_are_local_on_every_route(
    client: TestClient, engine: Engine, night: tuple[date, float, float, dict, dict]
) -> None:
    day, _, _, late, early = night
    eve, next_day = day - timedelta(days=1), day + timedelta(days=1)
    # the naive report was read as Beijing time; every stored instant comes back in UTC
    at = _utc(day) + timedelta(minutes=30)
    assert early["reported_at"] in (
        at.isoformat().replace("+00:00", "Z"),
        at.isoformat(),
    )
    at = _utc(day) - timedelta(minutes=30)
    assert late["reported_at"] in (at.isoformat().replace("+00:00", "Z"), at.isoformat())
    for since, until in (
        (day.isoformat(), next_day.isoformat()),
        (f"{day}T00:00:00", f"{day}T23:59:59"),
        (f"{day} 00:00", next_day.isoformat()),
    ):
        listed = client.get("/incidents", params={"since": since, "until": until, "limit": 1000})
        assert listed.status_code == 200, listed.text
        ids = [f["id"] for f in listed.json()["features"]]
        assert early["id"] in ids and late["id"] not in ids, (since, until)
    listed = client.get(
        "/incidents", params={"since": eve.isoformat(), "until": day.isoformat(), "limit": 1000}
    )
    ids = [f["id"] for f in listed.json()["features"]]
    assert late["id"] in ids and early["id"] not in ids
    # Open311 (W3C times; a date is local midnight as well)
    requests = client.get(
        "/open311/v2/requests.json",
        params={"start_date": day.isoformat(), "end_date": next_day.isoformat()},
    )
    assert requests.status_code == 200, requests.text
    found = [r["service_request_id"] for r in requests.json()]
    assert early["id"] in found and late["id"] not in found
    # the audit log from a local day; the workload window ending at a local midnight
    audit = client.get("/audit", params={"since": date.today().isoformat()})
    assert audit.status_code == 200, audit.text
    workload = client.get("/workload", params={"until": next_day.isoformat(), "window_days": 2})
    assert workload.status_code == 200, workload.text
    assert workload.json()["until"] == f"{next_day.isoformat()}T00:00:00+08:00"
    hotspots = client.get(
        "/hotspots", params={"since": eve.isoformat(), "until": next_day.isoformat()}
    )
    assert hotspots.status_code == 200, hotspots.text


GARBAGE = ("2019-W35-7", "1567267200", "yesterday", "2019-02-30", "2019-09-01T24:30")


def test_garbage_times_are_a_clear_422_and_write_nothing(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    lon, lat, _ = grid_point(loaded_city)
    for value in GARBAGE:
        for path, name in (
            ("/incidents", "since"),
            ("/heatmap/h3", "until"),
            ("/hotspots", "since"),
            ("/audit", "since"),
            ("/workload", "until"),
            ("/map", "until"),
        ):
            body = problem(client.get(path, params={name: value}))
            assert body["status"] == 422 and body["code"] == "validation-error", (path, body)
            assert "date or time" in body["detail"] and name in body["detail"], body
        body = problem(
            client.post(
                "/incidents",
                json={
                    "category": "traffic",
                    "location": {"lon": lon, "lat": lat},
                    "reported_at": value,
                },
            )
        )
        assert body["status"] == 422 and "reported_at" in body["detail"], body
        # Open311 answers in its own format
        response = client.get("/open311/v2/requests.json", params={"start_date": value})
        assert response.status_code == 400, response.text
        assert "date or time" in response.json()[0]["description"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar_one() == before


# --- imports read naive times in the deployment's zone -------------------------------------


def _naive_csv(tmp_path: Path, lon: float, lat: float, day: date) -> Path:
    path = tmp_path / "naive_times.csv"
    path.write_text(
        f"id,category,reported_at,lon,lat\ntz-1,traffic,{day} 00:30:00,{lon},{lat}\n",
        encoding="utf-8",
    )
    return path


def test_an_import_without_tz_reads_naive_times_in_the_deployment_zone(
    engine: Engine, loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    day = _first_of_a_month(loaded_city)
    path = _naive_csv(tmp_path, lon, lat, day)
    # a deployment in Chicago: the same file's 00:30 is 05:30 or 06:30 UTC
    chicago = Runtime(Settings(api=ApiSettings(map_tiles="none", timezone="America/Chicago")))
    with chicago.bound():
        report = import_file(
            engine,
            "incidents",
            path,
            ImportOptions(source_name="tz-chicago", rejects_path=tmp_path / "r.csv"),
            actor="test",
        )
    assert report.inserted == 1 and report.assumptions["tz"] == "America/Chicago"
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT reported_at FROM incidents WHERE idempotency_key = 'tz-chicago:tz-1'")
        ).scalar_one()
    assert stored == datetime(day.year, day.month, day.day, 0, 30, tzinfo=CHICAGO)


def test_an_upload_without_tz_reads_naive_times_in_the_deployment_zone(
    client: TestClient, engine: Engine, loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    day = _first_of_a_month(loaded_city)
    path = _naive_csv(tmp_path, lon, lat, day)
    response = client.post(
        "/imports/incidents",
        files={"file": ("naive_times.csv", io.BytesIO(path.read_bytes()), "text/csv")},
        data={"source_name": "tz-upload"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    assert response.json()["assumptions"]["tz"] == "Asia/Shanghai"  # the test deployment's
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT reported_at FROM incidents WHERE idempotency_key = 'tz-upload:tz-1'")
        ).scalar_one()
    assert stored == _utc(day) + timedelta(minutes=30)
    # --tz still wins
    again = client.post(
        "/imports/incidents",
        files={"file": ("naive_times.csv", io.BytesIO(path.read_bytes()), "text/csv")},
        data={"source_name": "tz-upload-utc", "tz": "UTC"},
    )
    assert again.status_code == 200 and again.json()["assumptions"]["tz"] == "UTC"


# --- changing the zone rebuilds the rollups; a process of another zone refuses --------------


def _insert(conn, when: datetime, lon: float = 114.3, lat: float = 30.59) -> None:  # noqa: ANN001
    conn.execute(
        text(
            "INSERT INTO incidents (category, priority, reported_at, location, h3, "
            "h3_6, h3_7, h3_8, h3_9, h3_10, source) VALUES ('traffic', 3, :t, "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4326), :h3, :h3_6, :h3_7, :h3_8, :h3_9, :h3_10, "
            "'import')"
        ),
        {
            "t": when,
            "x": lon,
            "y": lat,
            "h3": h3i.latlng_to_cell(lat, lon, 11),
            **{f"h3_{r}": h3i.latlng_to_cell(lat, lon, r) for r in range(6, 11)},
        },
    )


def _by_day(conn, zone: str) -> tuple[dict, dict, dict]:  # noqa: ANN001
    """(rollup days, days of the incidents in ``zone``, rollup months vs incidents')."""
    rolled = dict(
        conn.execute(text("SELECT bucket, sum(n) FROM incident_total_day GROUP BY 1")).all()
    )
    counted = dict(
        conn.execute(
            text("SELECT (reported_at AT TIME ZONE :z)::date, count(*) FROM incidents GROUP BY 1"),
            {"z": zone},
        ).all()
    )
    months = dict(
        conn.execute(text("SELECT bucket, sum(n) FROM incident_rollup_month GROUP BY 1")).all()
    )
    return rolled, counted, months


@pytest.fixture(scope="module")
def zoned_db(database_url: str) -> Iterator[tuple[str, Engine]]:
    """A database of its own (rollups in the test deployment's zone, as migrated), with
    incidents around local midnights in Shanghai and in Chicago."""
    url = make_database("geo_test_local_time")
    engine = make_engine(url)
    with engine.begin() as conn:
        for when in (LATE, EARLY, datetime(2019, 9, 30, 23, 30, tzinfo=CHICAGO)):
            _insert(conn, when)
        _insert(conn, datetime(2019, 10, 1, 0, 30, tzinfo=CHICAGO), lon=114.31)
    yield url, engine
    engine.dispose()


def _app_client(url: str, zone: str) -> TestClient:
    database = url.rsplit("/", 1)[1].split("?")[0]
    engine = make_engine(url)
    with Session(engine) as session:
        name = f"tz-{uuid.uuid4().hex[:8]}"
        user = create_user(session, name=name, role="admin", area_code=None, actor="t")
        key = create_key(session, user, actor="t")[1]
        session.commit()
    engine.dispose()
    settings = Settings(
        database=DatabaseSettings(database_url=role_url(database, "app"), database_owner_url=url),
        api=ApiSettings(map_tiles="none", timezone=zone),
        limits=LimitSettings(requests_per_minute=100_000, burst=10_000, auth_failures_per_minute=0),
        dispatch=DispatchSettings(escalation_interval_s=0),
    )
    return TestClient(create_app(settings), headers={"X-API-Key": key})


def test_a_zone_change_rebuilds_the_rollups_and_other_zones_are_refused(
    zoned_db: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, engine = zoned_db
    shanghai_day = {"res": 8, "since": "2019-09-01", "until": "2019-09-02", "format": "json"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT zone FROM rollup_calendar")).scalar_one() == (
            "Asia/Shanghai"
        )
        rolled, counted, _ = _by_day(conn, "Asia/Shanghai")
        assert rolled == counted and rolled[date(2019, 9, 1)] == 1
    # `geo-service migrate` with another GEO_TIMEZONE rebuilds them in that zone's days
    monkeypatch.setenv("GEO_DATABASE_URL", url)
    monkeypatch.setenv("GEO_TIMEZONE", "America/Chicago")
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "rebuilt the rollups of 4 incidents in America/Chicago days" in result.output
    assert "Asia/Shanghai" in result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT zone FROM rollup_calendar")).scalar_one() == (
            "America/Chicago"
        )
        rolled, counted, months = _by_day(conn, "America/Chicago")
        assert rolled == counted  # Chicago days now: the two Beijing reports share one
        assert rolled[date(2019, 8, 31)] == 2 and rolled[date(2019, 9, 30)] == 1
        assert months == {date(2019, 8, 1): 2, date(2019, 9, 1): 1, date(2019, 10, 1): 1}
        finals = dict(
            conn.execute(
                text("SELECT year, sum(cum[array_upper(cum, 1)]) FROM incident_cum_year GROUP BY 1")
            ).all()
        )
        assert finals[2019] == 4
    again = CliRunner().invoke(cli, ["migrate"])  # the same zone: nothing to rebuild
    assert again.exit_code == 0 and "rebuilt" not in again.output
    # a process still on Shanghai time refuses to read them, naming the fix ...
    with _app_client(url, "Asia/Shanghai") as client:
        for fmt in ("json", "geojson"):
            refused = problem(client.get("/heatmap/h3", params={**shanghai_day, "format": fmt}))
            assert refused["status"] == 503 and refused["code"] == "rollups-zone-mismatch"
            assert "America/Chicago" in refused["detail"] and "migrate" in refused["detail"]
        # ... while a window of less than a day (no rollup read) is still answered
        hour = {"res": 8, "since": "2019-09-01T00:00", "until": "2019-09-01T01:00"}
        assert client.get("/heatmap/h3", params={**hour, "format": "json"}).json()["total"] == 1
    # back to Shanghai: rebuilt again, and the day is answered from the rollups
    rebuilt = upgrade_to_head(url, "Asia/Shanghai")
    assert rebuilt is not None and (rebuilt.old_zone, rebuilt.new_zone) == (
        "America/Chicago",
        "Asia/Shanghai",
    )
    with _app_client(url, "Asia/Shanghai") as client:
        day = client.get("/heatmap/h3", params=shanghai_day)
        assert day.status_code == 200 and day.json()["total"] == 1


def test_a_rebuild_to_an_unknown_zone_or_by_the_application_changes_nothing(
    zoned_db: tuple[str, Engine],
) -> None:
    url, engine = zoned_db
    with engine.connect() as conn:
        zone = conn.execute(text("SELECT zone FROM rollup_calendar")).scalar_one()
        rolled = _by_day(conn, zone)
    with pytest.raises(DBAPIError, match="time zone"):
        upgrade_to_head(url, "Mars/Olympus")
    # the application's role may read the zone but neither rebuild nor change it
    if embedded_cluster() is not None:
        database = url.rsplit("/", 1)[1].split("?")[0]
        app_url = role_url(database, "app").replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(app_url, autocommit=True) as app:
            assert app.execute("SELECT zone FROM rollup_calendar").fetchone() == (zone,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("SELECT incident_rollups_rebuild('UTC')")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("UPDATE rollup_calendar SET zone = 'UTC'")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT zone FROM rollup_calendar")).scalar_one() == zone
        assert _by_day(conn, zone) == rolled


# --- the heatmap page: whole local days, whatever the browser's own zone --------------------


@pytest.mark.browser
def test_heatmap_page_windows_are_local_days_whatever_the_browser_zone(
    live_server: str, engine: Engine, role_keys: dict[str, str]
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium
    from tests.conftest import ARTIFACTS

    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(reported_at) FROM incidents")).scalar_one()
    last_day = local_day(newest, SHANGHAI)  # the test deployment's zone
    asked: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            # a browser in Los Angeles: its zone does not enter the window (English, whose
            # status line the test reads; the Chinese page is tests/api/test_pages_language.py)
            context = browser.new_context(
                viewport={"width": 1200, "height": 900},
                timezone_id="America/Los_Angeles",
                locale="en-US",
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: asked.append(r.url) if "/heatmap/h3" in r.url else None)
            page.goto(f"{live_server}/map/heatmap")
            page.fill("input[name=api_key]", role_keys["analyst"])
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server}/map/heatmap")
            page.wait_for_function(
                "() => document.getElementById('status').textContent.includes('significant')"
            )
            page.select_option("#layer", "heat")
            page.select_option("#window", "7")
            page.wait_for_function(
                "() => document.getElementById('status').textContent.includes('incidents in')"
            )
            label = page.text_content("#until-label")
            status = page.text_content("#status")
            legend = page.text_content("#legend") or ""
            page.screenshot(path=str(ARTIFACTS / "heatmap_local_days.png"))
        finally:
            browser.close()
    assert not errors, errors
    assert label == last_day.isoformat()
    # seven days of a small city repeat quantile breaks: no reversed class ("2 – 1")
    import re

    ranges = [(int(a), int(b)) for a, b in re.findall(r"(\d+) – (\d+)", legend)]
    assert all(a < b for a, b in ranges), legend
    until = last_day + timedelta(days=1)
    week = f"since={(until - timedelta(days=7)).isoformat()}&until={until.isoformat()}"
    assert any(week in url for url in asked), asked
    # the page shows what the API counts for those seven local days
    shown = int((status or "").split()[0])
    assert shown == _counted(engine, _utc(until - timedelta(days=7)), _utc(until), None)

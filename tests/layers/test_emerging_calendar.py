"""Calendar bins of emerging hot spots (issue 16): days, ISO weeks, months, quarters and years
of the deployment's time zone (GEO_TIMEZONE), whole bins only, partial edges reported, a long
history allowed and a cube too big for memory refused with its cost.

Bin edges are checked against pandas' own calendar (``pd.date_range`` with a time zone), in
Asia/Shanghai (the default) and America/Chicago (DST); real Chicago crimes go through the JSON
API and the download over ten years of months and of weeks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from geo_service.api.app import create_app
from geo_service.api.schemas.layers import EmergingLayer
from geo_service.db.engine import make_engine
from geo_service.demo.chicago import import_crimes, import_police_areas
from geo_service.demo.city import DemoCity
from geo_service.errors import InvalidInputError
from geo_service.runtime import Runtime
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.layers.emerging import calendar_bins, emerging
from geo_service.settings import (
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    LimitSettings,
    Settings,
)
from tests.conftest import SHARED_DATA, make_database, problem, role_url

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENTRAL = ZoneInfo("America/Chicago")
NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # Monday 12:00 in Shanghai, Sunday in Chicago
PANDAS_FREQ = {"day": "D", "week": "W-MON", "month": "MS", "quarter": "QS-JAN", "year": "YS"}
CHICAGO = SHARED_DATA / "chicago"


def _iso(values: Iterable[datetime]) -> list[str]:
    return [v.isoformat() for v in values]


def _hours(edges: tuple[datetime, ...]) -> list[float]:
    # in UTC: Python subtracts two datetimes of one zone as wall times
    utc = [e.astimezone(UTC) for e in edges]
    return [(b - a) / timedelta(hours=1) for a, b in itertools.pairwise(utc)]


# --- the calendar (pure) -------------------------------------------------------------------


@pytest.mark.parametrize("zone", [SHANGHAI, CENTRAL], ids=["Asia/Shanghai", "America/Chicago"])
@pytest.mark.parametrize("kind", list(PANDAS_FREQ))
def test_bin_edges_are_the_local_calendar_of_the_zone(kind: str, zone: ZoneInfo) -> None:
    # ten years, as pandas' calendar in the zone has them: local midnights, DST included
    bins = calendar_bins(
        kind, since=datetime(2010, 1, 1), until=datetime(2020, 1, 1), zone=zone, now=NOW
    )
    expected = pd.date_range("2010-01-01", "2020-01-01", freq=PANDAS_FREQ[kind], tz=zone.key)
    assert _iso(bins.edges) == _iso(expected.to_pydatetime())
    assert bins.count == {"day": 3652, "week": 521, "month": 120, "quarter": 40, "year": 10}[kind]
    # 2010-01-01 is a Friday: the weeks start on the Monday after, and that is reported
    start = {
        "from": "2010-01-01T00:00:00+08:00",
        "to": "2010-01-04T00:00:00+08:00",
        "why": "partial bin",
    }
    end = "2020-01-01T00:00:00+08:00"
    if zone is SHANGHAI:
        assert bins.trimmed == (
            {
                "start": start,
                "end": {"from": "2019-12-30T00:00:00+08:00", "to": end, "why": "partial bin"},
            }
            if kind == "week"
            else None
        )


def test_ten_years_of_months_start_exactly_at_local_midnight_of_since() -> None:
    bins = calendar_bins(
        "month", since=datetime(2010, 1, 1), until=datetime(2020, 1, 1), zone=SHANGHAI, now=NOW
    )
    assert (bins.count, bins.edges[0].isoformat(), bins.edges[-1].isoformat()) == (
        120,
        "2010-01-01T00:00:00+08:00",
        "2020-01-01T00:00:00+08:00",
    )
    # the same instant with an offset of its own: the same bins
    aware = calendar_bins(
        "month",
        since=datetime(2009, 12, 31, 16, tzinfo=UTC),
        until=datetime(2019, 12, 31, 16, tzinfo=UTC),
        zone=SHANGHAI,
        now=NOW,
    )
    assert aware.edges == bins.edges and aware.trimmed is None


def test_dst_days_weeks_and_months_are_calendar_periods_not_durations() -> None:
    days = calendar_bins(
        "day", since=datetime(2024, 3, 8), until=datetime(2024, 3, 13), zone=CENTRAL, now=NOW
    )
    assert _hours(days.edges) == [24, 24, 23, 24, 24]  # 10 March 2024: the clocks went forward
    autumn = calendar_bins(
        "day", since=datetime(2024, 11, 1), until=datetime(2024, 11, 6), zone=CENTRAL, now=NOW
    )
    assert _hours(autumn.edges) == [24, 24, 25, 24, 24]  # 3 November 2024: back
    weeks = calendar_bins(
        "week", since=datetime(2024, 2, 26), until=datetime(2024, 3, 25), zone=CENTRAL, now=NOW
    )
    assert _iso(weeks.edges) == [
        "2024-02-26T00:00:00-06:00",
        "2024-03-04T00:00:00-06:00",
        "2024-03-11T00:00:00-05:00",
        "2024-03-18T00:00:00-05:00",
        "2024-03-25T00:00:00-05:00",
    ]
    months = calendar_bins(
        "month", since=datetime(2024, 1, 1), until=datetime(2025, 1, 1), zone=CENTRAL, now=NOW
    )
    assert months.count == 12
    assert [e.isoformat() for e in months.edges[2:4]] == [
        "2024-03-01T00:00:00-06:00",
        "2024-04-01T00:00:00-05:00",
    ]
    # a day whose midnight the clocks skip starts when they resume (Santiago, 11 Sep 2022)
    santiago = calendar_bins(
        "day",
        since=datetime(2022, 9, 9),
        until=datetime(2022, 9, 13),
        zone=ZoneInfo("America/Santiago"),
        now=NOW,
    )
    assert santiago.edges[2].isoformat() == "2022-09-11T01:00:00-03:00"


@pytest.mark.parametrize(
    ("kind", "since", "until", "first", "last", "count"),
    [
        ("week", "2024-01-03", "2024-03-01", "2024-01-08", "2024-02-26", 7),
        ("quarter", "2023-02-15", "2024-11-20", "2023-04-01", "2024-10-01", 6),
        ("year", "2010-01-01", "2019-06-30", "2010-01-01", "2019-01-01", 9),
        ("day", "2024-02-26T12:00", "2024-03-02", "2024-02-27", "2024-03-02", 4),  # leap day
    ],
)
def test_partial_edges_are_left_out_and_reported(
    kind: str, since: str, until: str, first: str, last: str, count: int
) -> None:
    bins = calendar_bins(
        kind,
        since=datetime.fromisoformat(since),
        until=datetime.fromisoformat(until),
        zone=SHANGHAI,
        now=NOW,
    )
    local = [datetime.fromisoformat(v).replace(tzinfo=SHANGHAI).isoformat() for v in (since, until)]
    edges = [datetime.fromisoformat(v).replace(tzinfo=SHANGHAI).isoformat() for v in (first, last)]
    assert (bins.count, bins.edges[0].isoformat(), bins.edges[-1].isoformat()) == (count, *edges)
    trimmed = bins.trimmed
    assert trimmed is not None
    assert trimmed["start"] == (
        None if local[0] == edges[0] else {"from": local[0], "to": edges[0], "why": "partial bin"}
    )
    assert trimmed["end"] == (
        None if local[1] == edges[1] else {"from": edges[1], "to": local[1], "why": "partial bin"}
    )


@pytest.mark.parametrize(
    ("kind", "zone", "since", "until", "count"),
    [
        ("month", SHANGHAI, "2025-11-01T00:00:00+08:00", "2026-11-01T00:00:00+08:00", 12),
        ("week", SHANGHAI, "2025-12-01T00:00:00+08:00", "2026-11-30T00:00:00+08:00", 52),
        ("day", SHANGHAI, "2025-11-30T00:00:00+08:00", "2026-11-30T00:00:00+08:00", 365),
        ("quarter", SHANGHAI, "2024-10-01T00:00:00+08:00", "2026-10-01T00:00:00+08:00", 8),
        ("year", SHANGHAI, "2016-01-01T00:00:00+08:00", "2026-01-01T00:00:00+08:00", 10),
        # still Sunday 29 November in Chicago: the current ISO week began on the 23rd
        ("week", CENTRAL, "2025-11-24T00:00:00-06:00", "2026-11-23T00:00:00-06:00", 52),
    ],
)
def test_the_default_window_ends_where_the_current_bin_starts(
    kind: str, zone: ZoneInfo, since: str, until: str, count: int
) -> None:
    bins = calendar_bins(kind, zone=zone, now=NOW)
    assert (bins.edges[0].isoformat(), bins.edges[-1].isoformat(), bins.count) == (
        since,
        until,
        count,
    )
    assert bins.trimmed is None


def test_bad_windows_and_local_times_that_do_not_exist_are_refused() -> None:
    for kwargs, message in (
        ({"kind": "fortnight"}, "bin must be one of day, week, month, quarter, year"),
        ({"since": datetime(2024, 3, 10, 2, 30)}, "does not exist in America/Chicago"),
        ({"since": datetime(2024, 11, 3, 1, 30)}, "occurs twice in America/Chicago"),
        ({"since": datetime(2025, 2, 1)}, "since must be before until"),
        ({"kind": "year", "since": datetime(2022, 1, 1)}, r"at least 4 whole year bins.*holds 3"),
    ):
        arguments = {"kind": "month", "until": datetime(2025, 1, 1), "zone": CENTRAL, **kwargs}
        with pytest.raises(InvalidInputError, match=message):
            calendar_bins(now=NOW, **arguments)  # type: ignore[arg-type]


# --- the API on the demo city --------------------------------------------------------------


def _data_window(engine: Engine) -> tuple[datetime, datetime]:
    """The demo city's first and last local days (its incidents, not the clock)."""
    with engine.connect() as conn:
        first, last = conn.execute(
            text("SELECT min(reported_at), max(reported_at) FROM incidents")
        ).one()
    return (
        datetime.combine(first.astimezone(SHANGHAI).date(), datetime.min.time()),
        datetime.combine(last.astimezone(SHANGHAI).date(), datetime.min.time()),
    )


def test_bad_bin_names_are_422_problems(client: TestClient) -> None:
    for path in ("/hotspots/emerging", "/hotspots/emerging/download"):
        for name in ("fortnight", "months", "Month", ""):
            body = problem(client.get(path, params={"res": 7, "bin": name}))
            assert body["status"] == 422 and "bin" in str(body), (path, name)


def test_api_and_download_analyse_the_same_whole_weeks(
    client: TestClient, engine: Engine, loaded_city: DemoCity, tmp_path: Path
) -> None:
    first, last = _data_window(engine)
    params = {"res": 7, "bin": "week", "since": first.isoformat(), "until": last.isoformat()}
    served = client.get("/hotspots/emerging", params=params)
    assert served.status_code == 200, served.text[:300]
    EmergingLayer.model_validate(served.json())  # the declared response model, trimmed included
    parameters = served.json()["parameters"]
    monday = pd.offsets.Week(weekday=0).rollforward(pd.Timestamp(first, tz="Asia/Shanghai"))
    end = pd.offsets.Week(weekday=0).rollback(pd.Timestamp(last, tz="Asia/Shanghai"))
    assert parameters["start"] == monday.isoformat()
    assert parameters["end"] == end.isoformat()
    assert parameters["bins"] == (end - monday).days // 7
    assert parameters["timezone"] == "Asia/Shanghai"
    trimmed = parameters["trimmed"]
    assert (trimmed["start"] is None) == (monday == pd.Timestamp(first, tz="Asia/Shanghai"))
    if trimmed["end"] is not None:
        assert trimmed["end"] == {
            "from": end.isoformat(),
            "to": parameters["until"],
            "why": "partial bin",
        }
    counts = {f["properties"]["h3"]: f["properties"]["count"] for f in served.json()["features"]}
    with engine.connect() as conn:
        expected = conn.execute(
            text("SELECT count(*) FROM incidents WHERE reported_at >= :a AND reported_at < :b"),
            {"a": monday.to_pydatetime(), "b": end.to_pydatetime()},
        ).scalar_one()
    assert sum(counts.values()) == expected > 0
    assert parameters["cost"]["cells"] == len(counts)
    assert parameters["cost"]["values"] == len(counts) * parameters["bins"]
    # the download answers the same bins: the GeoJSON file carries them, the GeoPackage the
    # same counts per cell
    geojson = client.get("/hotspots/emerging/download", params={**params, "format": "geojson"})
    assert geojson.status_code == 200
    assert geojson.json()["parameters"] == parameters
    gpkg = client.get("/hotspots/emerging/download", params={**params, "format": "gpkg"})
    assert gpkg.status_code == 200
    path = tmp_path / "emerging.gpkg"
    path.write_bytes(gpkg.content)
    frame = gpd.read_file(path)
    assert dict(zip(frame["h3"], frame["count"].astype(int), strict=True)) == counts


def test_a_cube_too_big_for_memory_is_refused_with_its_cost(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo data spans a year (bins are cut to the data): with a 4 MB budget a year of
    # days at res 10 over every cell of the city is too big, and the refusal states its cost.
    import geo_service.services.layers.emerging as emerging_module

    monkeypatch.setattr(emerging_module, "MAX_CUBE_BYTES", 4_000_000)
    params = {"res": 10, "bin": "day"}
    for path in ("/hotspots/emerging", "/hotspots/emerging/download"):
        body = problem(client.get(path, params=params))
        assert body["status"] == 413, body
        cost = body["cost"]
        assert 300 <= cost["bins"] <= 365 and cost["cells"] > 1000
        assert cost["values"] == cost["cells"] * cost["bins"]
        assert cost["memory_bytes"] > cost["limit_bytes"]
        assert f"{cost['cells']:,} cells x {cost['bins']:,} bins" in body["detail"]


# --- real data: Chicago crimes, ten years of months and of weeks -------------------------


@pytest.fixture(scope="module")
def chicago(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, TestClient, Settings]]:
    """Chicago's police beats (in force since 2000) and the 2019 crimes sample, served by an
    app whose calendar is America/Chicago."""
    url = make_database("geo_test_calendar")
    name = make_url(url).database
    assert name is not None
    engine = make_engine(url)
    tmp = tmp_path_factory.mktemp("calendar")
    import_police_areas(
        engine,
        CHICAGO,
        tmp,
        effective_from=datetime(2000, 1, 1, tzinfo=UTC),
        version_name="Chicago police",
        actor="test",
    )
    crimes = import_crimes(engine, CHICAGO, tmp, actor="test")
    assert crimes.inserted > 40_000
    # The sample holds 2019 only; a fifteenth of the crimes (by cell) and the first are
    # copied into each year 2010..2018 at the same local date and time, so ten years hold
    # real places and seasons.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO incidents (category, priority, status, source, reported_at, "
                "location, h3, h3_6, h3_7, h3_8, h3_9, h3_10, grid_id) "
                "SELECT category, priority, status, source, "
                "(reported_at AT TIME ZONE 'America/Chicago' - make_interval(years => y)) "
                "AT TIME ZONE 'America/Chicago', location, h3, h3_6, h3_7, h3_8, h3_9, h3_10, "
                "grid_id FROM incidents, generate_series(1, 9) AS y "
                "WHERE h3 % 15 = 0 OR reported_at = (SELECT min(reported_at) FROM incidents)"
            )
        )
    with Session(engine) as session:
        user = create_user(session, name="calendar-admin", role="admin", area_code=None, actor="t")
        key = create_key(session, user, actor="t")[1]
        session.commit()
    settings = Settings(
        database=DatabaseSettings(database_url=role_url(name, "app"), database_owner_url=url),
        api=ApiSettings(map_tiles="none", timezone="America/Chicago"),
        limits=LimitSettings(requests_per_minute=100_000, burst=10_000, auth_failures_per_minute=0),
        dispatch=DispatchSettings(escalation_interval_s=0),
    )
    with TestClient(create_app(settings), headers={"X-API-Key": key}) as client:
        yield engine, client, settings
    engine.dispose()


@pytest.mark.skipif(not CHICAGO.is_dir(), reason="shared Chicago data not present")
def test_ten_years_of_months_on_chicago_crimes_start_at_local_midnight(chicago) -> None:  # noqa: ANN001
    engine, client, _ = chicago
    params = {"res": 8, "bin": "month", "since": "2010-01-01", "until": "2020-01-01"}
    served = client.get("/hotspots/emerging", params=params)
    assert served.status_code == 200, served.text[:300]
    body = served.json()
    parameters = body["parameters"]
    assert parameters["bins"] == 120
    assert parameters["start"] == "2010-01-01T00:00:00-06:00"
    assert parameters["end"] == "2020-01-01T00:00:00-06:00"
    assert parameters["trimmed"] is None and parameters["timezone"] == "America/Chicago"
    assert parameters["cost"]["bins"] == 120
    with engine.connect() as conn:
        in_decade = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    counts = [f["properties"]["count"] for f in body["features"]]
    assert sum(counts) == in_decade  # every crime of 2010..2019 is in one of the 120 months
    patterns = {f["properties"]["pattern"] for f in body["features"]}
    assert any(p.endswith("Hot Spot") for p in patterns), patterns
    download = client.get("/hotspots/emerging/download", params={**params, "format": "geojson"})
    assert download.json()["parameters"] == parameters


@pytest.mark.skipif(not CHICAGO.is_dir(), reason="shared Chicago data not present")
def test_ten_years_of_iso_weeks_on_chicago_crimes(chicago) -> None:  # noqa: ANN001
    engine, _, settings = chicago
    # 2010-01-04 and 2019-12-23 are Mondays: 520 whole weeks, nothing trimmed
    with Runtime(settings).bound(), Session(engine) as session:
        layer = emerging(
            session,
            res=8,
            bin="week",
            since=datetime(2010, 1, 4),
            until=datetime(2019, 12, 23),
            now=NOW,
        )
    parameters = layer["parameters"]
    assert (parameters["bins"], parameters["trimmed"]) == (520, None)
    assert parameters["start"] == "2010-01-04T00:00:00-06:00"
    assert parameters["end"] == "2019-12-23T00:00:00-06:00"
    assert parameters["cost"] == {
        "cells": len(layer["features"]),
        "bins": 520,
        "values": len(layer["features"]) * 520,
        "memory_bytes": parameters["cost"]["memory_bytes"],
        "limit_bytes": parameters["cost"]["limit_bytes"],
    }
    with engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT count(*) FROM incidents WHERE reported_at >= :start AND reported_at < :end"
            ),
            {
                "start": datetime(2010, 1, 4, tzinfo=CENTRAL),
                "end": datetime(2019, 12, 23, tzinfo=CENTRAL),
            },
        ).scalar_one()
    assert sum(f["properties"]["count"] for f in layer["features"]) == expected


@pytest.mark.skipif(not CHICAGO.is_dir(), reason="shared Chicago data not present")
@pytest.mark.parametrize(
    ("since", "until"), [("2019-03-04", "2019-03-18"), ("2019-10-28", "2019-11-11")]
)
def test_chicago_days_across_dst_hold_exactly_their_local_dates(
    chicago, since: str, until: str
) -> None:  # noqa: ANN001
    # The sample's times are local dates (midnight in Chicago), so they lie on the bin edges:
    # an edge an hour off across the clock change would take in or leave out a whole day.
    engine, client, _ = chicago
    params = {"res": 8, "bin": "day", "since": since, "until": until}
    body = client.get("/hotspots/emerging", params=params).json()
    assert (body["parameters"]["bins"], body["parameters"]["trimmed"]) == (14, None)
    with engine.connect() as conn:
        expected = conn.execute(
            text(
                "SELECT count(*) FROM incidents WHERE (reported_at AT TIME ZONE "
                "'America/Chicago')::date >= CAST(:a AS date) AND (reported_at AT TIME ZONE "
                "'America/Chicago')::date < CAST(:b AS date)"
            ),
            {"a": since, "b": until},
        ).scalar_one()
    assert sum(f["properties"]["count"] for f in body["features"]) == expected > 0


@pytest.mark.skipif(not CHICAGO.is_dir(), reason="shared Chicago data not present")
def test_bins_the_data_cannot_fill_are_left_out_and_said(chicago) -> None:  # noqa: ANN001
    # The crimes run from 2010-01-01 to 2019-12-31: bins before the first and after the last
    # would count as quiet ones (review, issue 16), so they are left out and said.
    _, client, _ = chicago
    years = {"res": 8, "bin": "year", "since": "2000-01-01", "until": "2035-01-01"}
    parameters = client.get("/hotspots/emerging", params=years).json()["parameters"]
    assert parameters["bins"] == 10
    assert parameters["start"] == "2010-01-01T00:00:00-06:00"
    assert parameters["end"] == "2020-01-01T00:00:00-06:00"
    assert parameters["trimmed"]["start"] == {
        "from": "2000-01-01T00:00:00-06:00",
        "to": "2010-01-01T00:00:00-06:00",
        "why": "before the first incident",
    }
    assert parameters["trimmed"]["end"]["why"] == "after the last incident"
    assert parameters["data"]["first"].startswith("2010-01-01")
    assert parameters["data"]["last"].startswith("2019-12-3")
    # bins that have not ended are left out too (now: NOW, 2026)
    quarters = {"res": 8, "bin": "quarter", "since": "2017-01-01", "until": "2035-01-01"}
    parameters = client.get("/hotspots/emerging", params=quarters).json()["parameters"]
    assert (parameters["bins"], parameters["end"]) == (12, "2020-01-01T00:00:00-06:00")
    # a window the data does not reach: refused, naming the data's span
    before = {"res": 8, "bin": "month", "since": "2001-01-01", "until": "2009-12-01"}
    refused = problem(client.get("/hotspots/emerging", params=before))
    assert refused["status"] == 422 and "at least 4" in refused["detail"]
    assert "2010-01-01" in refused["detail"] and "2019-12-3" in refused["detail"]


@pytest.mark.skipif(not CHICAGO.is_dir(), reason="shared Chicago data not present")
def test_the_data_span_reported_is_inside_the_window(chicago) -> None:  # noqa: ANN001
    # The crimes run on after 2014: ``data.last`` names the last incident analysed, never one
    # after ``until`` (the default window showed this morning's incident, after its midnight).
    engine, client, _ = chicago
    window = {"res": 8, "bin": "month", "since": "2012-01-01", "until": "2015-01-01"}
    parameters = client.get("/hotspots/emerging", params=window).json()["parameters"]
    assert (parameters["bins"], parameters["trimmed"]) == (36, None)
    with engine.connect() as conn:
        first, last = conn.execute(
            text(
                "SELECT min(reported_at), max(reported_at) FROM incidents "
                "WHERE reported_at >= '2012-01-01T00:00-06:00' "
                "AND reported_at < '2015-01-01T00:00-06:00'"
            )
        ).one()
        after = conn.execute(
            text("SELECT count(*) FROM incidents WHERE reported_at >= '2015-01-01T00:00-06:00'")
        ).scalar_one()
    assert after > 0  # the data does run on past the window
    assert parameters["data"] == {
        "first": first.astimezone(CENTRAL).isoformat(),
        "last": last.astimezone(CENTRAL).isoformat(),
    }
    assert parameters["data"]["last"] < parameters["until"] == "2015-01-01T00:00:00-06:00"
    assert parameters["data"]["first"] >= parameters["since"]

"""The yearly cumulative arrays (migration 0007) stay exact through inserts in new and old
years, updates that move incidents or only change their status, and deletes."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import h3.api.basic_int as h3i
import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.services.layers.heatmap import (
    HeatmapQuery,
    h3_counts,
    h3_heatmap_json,
    prepare_years,
)
from tests.conftest import grid_point


def _check_arrays(conn) -> int:  # noqa: ANN001
    """Every stored array equals the running count recomputed from the incidents."""
    per_day = Counter()
    for cell, day, n in conn.execute(
        text(
            # the arrays hold each point's own res-8 cell (0021), not its res-11 cell's parent,
            # by local day of the zone the rollups are built in (0028: GEO_TIMEZONE's)
            "SELECT h3_8, (reported_at AT TIME ZONE (SELECT zone FROM rollup_calendar))::date, "
            "count(*) FROM incidents GROUP BY 1, 2"
        )
    ):
        per_day[(cell, day)] = n
    rows = conn.execute(text("SELECT cell, year, cum FROM incident_cum_year")).all()
    top = max(year for _, year, _ in rows)
    stored = {(cell, year): cum for cell, year, cum in rows}
    cells = {cell for cell, _ in per_day}
    for cell in cells:
        first = min(day.year for c, day in per_day if c == cell)
        total = 0
        for year in range(first, top + 1):
            days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
            daily = np.array(
                [per_day.get((cell, date(year, 1, 1) + timedelta(d)), 0) for d in range(days)]
            )
            expected = total + np.cumsum(daily)
            assert stored.get((cell, year)) == expected.tolist(), (cell, year)
            total = int(expected[-1])
    return len(cells)


def _insert(conn, lon: float, lat: float, when: datetime, n: int = 1) -> list[str]:  # noqa: ANN001
    return (
        conn.execute(
            text(
                "INSERT INTO incidents (category, priority, reported_at, location, h3, "
                "h3_6, h3_7, h3_8, h3_9, h3_10, source) "
                "SELECT 'traffic', 3, :t, ST_SetSRID(ST_MakePoint(:x, :y), 4326), "
                ":h3, :h3_6, :h3_7, :h3_8, :h3_9, :h3_10, 'import' "
                "FROM generate_series(1, :n) RETURNING id::text"
            ),
            {
                "t": when,
                "x": lon,
                "y": lat,
                "n": n,
                "h3": h3i.latlng_to_cell(lat, lon, 11),
                **{f"h3_{r}": h3i.latlng_to_cell(lat, lon, r) for r in range(6, 11)},
            },
        )
        .scalars()
        .all()
    )


def test_cumulative_arrays_follow_every_write(engine: Engine, loaded_city: DemoCity) -> None:
    lon, lat, _ = grid_point(loaded_city)
    with engine.begin() as conn:
        assert _check_arrays(conn) > 0  # the backfill
        latest = conn.execute(text("SELECT max(year) FROM incident_cum_year")).scalar_one()
        ahead = datetime(latest + 2, 3, 1, 12, tzinfo=UTC)  # two new years at once
        # before any cell's first: the last minute of a local year (days are local, 0028)
        zone = ZoneInfo(conn.execute(text("SELECT zone FROM rollup_calendar")).scalar_one())
        early = datetime(latest - 3, 12, 31, 23, 59, tzinfo=zone)
        ids = _insert(conn, lon, lat, ahead, 3) + _insert(conn, lon + 0.01, lat, early, 2)
        _check_arrays(conn)
        # one partition per year (migration 0013), made by the triggers for the new years
        homes = conn.execute(
            text("SELECT DISTINCT year, tableoid::regclass::text FROM incident_cum_year")
        ).all()
        assert {home for _, home in homes} == {f"incident_cum_year_y{y}" for y, _ in homes}
        assert {latest + 2, latest - 3} <= {y for y, _ in homes}
        conn.execute(  # move one across years, change only the status of another
            text("UPDATE incidents SET reported_at = :t WHERE id = CAST(:i AS uuid)"),
            {"t": datetime(latest, 6, 1, tzinfo=UTC), "i": ids[0]},
        )
        conn.execute(
            text("UPDATE incidents SET status = 'closed' WHERE id = CAST(:i AS uuid)"),
            {"i": ids[1]},
        )
        conn.execute(text("DELETE FROM incidents WHERE id = CAST(:i AS uuid)"), {"i": ids[3]})
        _check_arrays(conn)
        with Session(bind=conn) as session:  # any window: the arrays agree with counting
            for since, until in (
                (early - timedelta(days=1), ahead + timedelta(days=400)),
                (datetime(latest, 1, 1, tzinfo=UTC), datetime(latest, 12, 31, tzinfo=UTC)),
                (early, early + timedelta(days=1)),
                (ahead + timedelta(days=1), ahead + timedelta(days=30)),
            ):
                query = HeatmapQuery(res=8, since=since, until=until)
                got = h3_counts(session, query)
                listed = json.loads(h3_heatmap_json(session, query))  # the API's format=json
                assert {h3i.str_to_int(c["h3"]): c["count"] for c in listed["cells"]} == got
                assert listed["total"] == sum(got.values())
                expected = dict(
                    conn.execute(
                        text(
                            "SELECT h3_8, count(*) FROM incidents "
                            "WHERE reported_at >= :a AND reported_at < :b GROUP BY 1"
                        ),
                        {"a": since, "b": until},
                    ).all()
                )
                assert got == expected, (since, until)
        conn.rollback()


def test_years_are_prepared_ahead(engine: Engine) -> None:
    """Start-up makes this year's and next year's partitions, so a new year's first incident
    needs no DDL in its writer's transaction; twice is the same as once."""

    def made() -> set[str]:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT inhrelid::regclass::text FROM pg_inherits "
                        "WHERE inhparent = 'incident_cum_year'::regclass"
                    )
                ).scalars()
            )

    assert {"incident_cum_year_y2091", "incident_cum_year_y2092"}.isdisjoint(made())
    try:
        prepare_years(engine, date(2091, 7, 1))
        prepare_years(engine, date(2091, 7, 1))
        assert {"incident_cum_year_y2091", "incident_cum_year_y2092"} <= made()
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS incident_cum_year_y2091"))
            conn.execute(text("DROP TABLE IF EXISTS incident_cum_year_y2092"))

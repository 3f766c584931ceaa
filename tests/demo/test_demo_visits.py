"""The demo's household visits (issue 20): a grid worker's round per household, so the visit
coverage of the managers' reports and of ``/households/visits/coverage`` has a history."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text

from geo_service.db.engine import make_engine
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city, record_generated_visits
from tests.conftest import make_database


def test_generated_visits_are_rounds_drawn_from_each_household(database_url: str) -> None:
    engine = make_engine(make_database("geo_test_demo_visits"))
    try:
        city = generate_city(
            seed=7, grids=12, incidents=50, households_per_grid=40, end_date=date(2026, 6, 1)
        )
        load_city(engine, city)
        last = date(2026, 6, 1)
        with engine.begin() as conn:
            written = record_generated_visits(conn, first=last - timedelta(days=364), last=last)
            rows = conn.execute(
                text("SELECT household_id, visited_on, outcome FROM household_visits")
            ).all()
            households = conn.execute(text("SELECT count(*) FROM households")).scalar_one()
            within_90 = conn.execute(
                text(
                    "SELECT count(DISTINCT household_id) FROM household_visits "
                    "WHERE visited_on > :d"
                ),
                {"d": last - timedelta(days=90)},
            ).scalar_one()
            audited = conn.execute(
                text("SELECT count(*) FROM audit_log WHERE action = 'generate_visits'")
            ).scalar_one()
        assert written == len(rows) > households  # rounds of 30..179 days over a year
        assert all(last - timedelta(days=364) <= r.visited_on <= last for r in rows)
        assert {r.outcome for r in rows} == {"met", "no_answer"}
        assert 0.4 < within_90 / households < 0.95  # a realistic coverage, not all or none
        assert audited == 1
        # the same days whenever generated: a later run over the next days only adds those
        with engine.begin() as conn:
            more = record_generated_visits(
                conn, first=last + timedelta(days=1), last=last + timedelta(days=30)
            )
            again = conn.execute(
                text("SELECT count(*) FROM household_visits WHERE visited_on <= :d"), {"d": last}
            ).scalar_one()
            conn.execute(text("DELETE FROM household_visits"))
            redrawn = record_generated_visits(conn, first=last - timedelta(days=364), last=last)
        assert 0 < more < written and again == written and redrawn == written
        with engine.begin() as conn:
            assert record_generated_visits(conn, first=last, last=last - timedelta(days=1)) == 0
    finally:
        engine.dispose()

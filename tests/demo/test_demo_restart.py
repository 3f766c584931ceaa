"""A demo served again days later (issue 17): the history of the time it was off is filled
from the city's own seed, so "the last 30 days" stays full and the open backlog is the
recent one. ``now`` is given; nothing reads the wall clock."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.demo.load import backfill_history
from geo_service.vocabulary import OPEN_INCIDENT_STATUSES
from tests.demo.test_demo_consistency import broken_rules

SIZES = {"seed": 7, "grids": 60, "incidents": 4000, "households_per_grid": 20}  # conftest's city


def test_a_restarted_demo_gets_the_history_of_the_days_it_was_off(
    engine: Engine, loaded_city: DemoCity
) -> None:
    with engine.connect() as conn:
        newest, before = conn.execute(
            text("SELECT max(reported_at), count(*) FROM incidents")
        ).one()
    now = loaded_city.end + timedelta(days=10)
    added = backfill_history(engine, now=now, **SIZES)
    per_day = SIZES["incidents"] / 365
    with engine.connect() as conn:
        gap = conn.execute(
            text(
                """
                SELECT count(*), min(reported_at), max(reported_at),
                  count(*) FILTER (WHERE status = ANY(:open) AND reported_at < :day_before),
                  count(*) FILTER (WHERE i.grid_id IS NULL OR NOT ST_Covers(a.geom, i.location)),
                  count(*) FILTER (WHERE reported_at > :ten_days_before)
                FROM incidents i LEFT JOIN areas a ON a.id = i.grid_id
                WHERE i.reported_at > :newest
                """
            ),
            {
                "newest": newest,
                "day_before": now - timedelta(days=1),
                "ten_days_before": now - timedelta(days=10),
                "open": list(OPEN_INCIDENT_STATUSES),
            },
        ).one()
        total = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
        # the added history agrees with itself too: its work in flight has its responders, busy
        assert broken_rules(conn) == {}
        audited = conn.execute(
            text("SELECT diff FROM audit_log WHERE action = 'backfill_demo_history'")
        ).scalar_one()
    count, first, last, old_open, outside, last_10_days = gap
    assert added == count == total - before
    assert newest < first and last <= now
    # the ten days are as full as an average ten days of the generated year (Poisson noise)
    assert 0.7 * 10 * per_day < last_10_days < 1.3 * 10 * per_day, last_10_days
    assert old_open == 0  # the open backlog is the recent one
    assert outside == 0  # every incident in the grid that holds it
    assert audited["added"] == added
    # served again at once (within BACKFILL_AFTER of the newest incident): nothing to fill.
    # Timed from the newest incident, not from ``now``: this small city has about one incident
    # in two hours, so whether one falls in the half hour after ``now`` is chance.
    assert backfill_history(engine, now=last + timedelta(minutes=30), **SIZES) == 0


def test_a_city_of_other_sizes_or_seed_is_not_continued(
    engine: Engine, loaded_city: DemoCity
) -> None:
    now = loaded_city.end + timedelta(days=10)
    assert backfill_history(engine, now=now, **{**SIZES, "seed": 8}) == 0
    assert backfill_history(engine, now=now, **{**SIZES, "grids": 61}) == 0
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM audit_log WHERE action = 'backfill_demo_history'")
            ).scalar_one()
            == 0
        )

"""Migration 0035 fills the escalation history from what exists: the audit log's escalate
rows (who, when, why) and, where those do not explain an incident's level, one row per level
it passed."""

from __future__ import annotations

from datetime import date

from alembic import command
from sqlalchemy import text

from geo_service.db.engine import make_engine
from geo_service.db.migrate import alembic_config, upgrade_to_head
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from tests.conftest import make_database


def test_migration_0035_backfills_from_the_audit_log_and_the_levels(database_url: str) -> None:
    url = make_database("geo_test_backfill35")
    engine = make_engine(url)
    city = generate_city(
        seed=23, grids=12, incidents=400, households_per_grid=3, end_date=date(2026, 6, 1)
    )
    load_city(engine, city)
    command.downgrade(alembic_config(url), "0033")  # as it was before the history
    with engine.begin() as conn:
        levels = dict(conn.execute(text("SELECT id::text, escalation_level FROM incidents")).all())
        climbed = sorted(i for i, level in levels.items() if level >= 2)
        assert climbed and sum(levels.values()) > len(climbed)  # the demo city escalates
        witnessed = climbed[0]  # its first climb is in the audit log, by hand
        conn.execute(
            text(
                "INSERT INTO audit_log (who, action, entity, entity_id, diff, at) VALUES "
                "('li.wei (dispatcher)', 'escalate', 'incident', :i, CAST(:d AS jsonb), "
                "'2026-05-30T10:00:00+08:00')"
            ),
            {
                "i": witnessed,
                "d": '{"before": {"escalation_level": 0}, "after": {"escalation_level": 1, '
                '"escalated_to": "community"}, "reason": "a fight in the corridor"}',
            },
        )
    upgrade_to_head(url)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT incident_id::text AS i, from_level, to_level, at, who, reason "
                    "FROM incident_escalations ORDER BY incident_id, to_level"
                )
            )
            .mappings()
            .all()
        )
    engine.dispose()
    by_incident: dict[str, list] = {}
    for r in rows:
        by_incident.setdefault(r["i"], []).append(r)
    # every incident: one climb to each level up to its own, none for the others
    assert {i: len(v) for i, v in by_incident.items()} == {
        i: level for i, level in levels.items() if level > 0
    }
    assert all(
        [(r["from_level"], r["to_level"]) for r in v] == [(k, k + 1) for k in range(len(v))]
        for v in by_incident.values()
    )
    first, second = by_incident[witnessed][:2]
    assert (first["who"], first["reason"]) == ("li.wei (dispatcher)", "a fight in the corridor")
    assert first["at"].isoformat() == "2026-05-30T02:00:00+00:00"
    assert second["who"] == "migration 0035"

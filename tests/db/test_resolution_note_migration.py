"""Migration 0038 adds ``incidents.resolution_note`` (nullable, at most 2000 characters) and
its downgrade drops it again; upgraded anew, existing incidents have none."""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DataError

from geo_service.db.engine import make_engine
from geo_service.db.migrate import alembic_config, upgrade_to_head
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from tests.conftest import make_database


def _columns(engine, table: str) -> set[str]:  # noqa: ANN001
    with engine.connect() as conn:
        return set(
            conn.execute(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
                {"t": table},
            ).scalars()
        )


def test_migration_0038_adds_and_drops_the_resolution_note(database_url: str) -> None:
    url = make_database("geo_test_note38")
    engine = make_engine(url)
    try:
        city = generate_city(
            seed=5, grids=12, incidents=50, households_per_grid=2, end_date=date(2026, 6, 1)
        )
        load_city(engine, city)
        assert "resolution_note" in _columns(engine, "incidents")
        with engine.begin() as conn:
            conn.execute(text("UPDATE incidents SET resolution_note = 'done' WHERE true"))
        with pytest.raises(DataError), engine.begin() as conn:
            conn.execute(text("UPDATE incidents SET resolution_note = repeat('x', 2001)"))
        command.downgrade(alembic_config(url), "0037")
        assert "resolution_note" not in _columns(engine, "incidents")
        upgrade_to_head(url)
        with engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT count(*) FROM incidents WHERE resolution_note IS NOT NULL")
                ).scalar_one()
                == 0
            )
    finally:
        engine.dispose()

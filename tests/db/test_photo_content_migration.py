"""Migration 0039 adds ``incident_photos.content_sha256`` and its unique index per incident
(the same bytes on one incident are one photo); its downgrade drops both, and upgraded anew,
photos stored before have no hash."""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from geo_service.db.engine import make_engine
from geo_service.db.migrate import alembic_config, upgrade_to_head
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from tests.conftest import make_database

_PHOTO = (
    "INSERT INTO incident_photos (incident_id, storage_key, content_type, width, height, bytes, "
    "thumbnail_bytes{extra}) SELECT id, :key, 'image/jpeg', 1, 1, 1, 1{value} FROM incidents "
    "ORDER BY id LIMIT 1"
)


def test_migration_0039_adds_and_drops_the_photo_content_hash(database_url: str) -> None:
    url = make_database("geo_test_photo39")
    engine = make_engine(url)
    try:
        city = generate_city(
            seed=5, grids=12, incidents=50, households_per_grid=2, end_date=date(2026, 6, 1)
        )
        load_city(engine, city)
        with_hash = _PHOTO.format(extra=", content_sha256", value=", :h")
        with engine.begin() as conn:
            conn.execute(text(with_hash), {"key": "a/1.jpg", "h": "ab" * 32})
            conn.execute(text(_PHOTO.format(extra="", value="")), {"key": "a/2.jpg"})
            conn.execute(text(_PHOTO.format(extra="", value="")), {"key": "a/3.jpg"})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(with_hash), {"key": "a/4.jpg", "h": "ab" * 32})
        command.downgrade(alembic_config(url), "0038")
        with engine.connect() as conn:
            columns = set(
                conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = 'incident_photos'"
                    )
                ).scalars()
            )
        assert "content_sha256" not in columns
        upgrade_to_head(url)
        with engine.connect() as conn:
            hashes = conn.execute(text("SELECT content_sha256 FROM incident_photos")).scalars()
            assert list(hashes) == [None, None, None]
    finally:
        engine.dispose()

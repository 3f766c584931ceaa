"""The declarative base every table belongs to, and the one spatial reference of stored data."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

# Every stored geometry is WGS84, except the tile caches kept in web mercator (3857).
SRID = 4326
WEB_MERCATOR = 3857


class Base(DeclarativeBase):
    """Declarative base of all tables; ``Base.metadata`` is the whole schema (Alembic's target)."""

"""Layers room: incident rollups, cumulative counts, H3 cell polygons and the tile-layer cache.

The rollups and ``incident_cum_year`` are kept by statement-level triggers on ``incidents``
(migrations 0004, 0006, 0007, 0013, 0021, 0028: exact cells of res 6..10 in one key, each
resolution a range of it); the trigger functions live in the migrations, not here.
``incident_cum_year`` is partitioned by year; its partitions (``incident_cum_year_y<year>``)
are created on demand and are not part of the metadata (migrations/env.py excludes them).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from geo_service.db.models.base import SRID, WEB_MERCATOR, Base

# Partitions of incident_cum_year: one per year, made by incident_cum_year_cover() (0013).
CUM_YEAR_PARTITION_PATTERN = r"incident_cum_year_y\d+"


class IncidentRollupDay(Base):
    """Incidents per local day (of ``rollup_calendar.zone``, 0028) x category x priority x
    each point's exact cells (0021): ``cell`` at res 10, ``c9`` .. ``c6`` the coarser
    resolutions (H3 does not nest, so they are key columns, not parents); a read at res r
    groups by that column."""

    __tablename__ = "incident_rollup_day"
    __table_args__ = (
        PrimaryKeyConstraint("cell", "bucket", "category", "priority", "c9", "c8", "c7", "c6"),
        Index("ix_incident_rollup_day_bucket", "bucket"),
    )

    cell: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(SmallInteger)
    n: Mapped[int] = mapped_column(Integer)
    c9: Mapped[int] = mapped_column(BigInteger)
    c8: Mapped[int] = mapped_column(BigInteger)
    c7: Mapped[int] = mapped_column(BigInteger)
    c6: Mapped[int] = mapped_column(BigInteger)


class IncidentRollupMonth(Base):
    """Incidents per local month x category x priority x exact cells: ``cell`` at res 8,
    ``c7``, ``c6`` (0021)."""

    __tablename__ = "incident_rollup_month"
    __table_args__ = (
        PrimaryKeyConstraint("cell", "bucket", "category", "priority", "c7", "c6"),
        Index("ix_incident_rollup_month_bucket", "bucket"),
    )

    cell: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(SmallInteger)
    n: Mapped[int] = mapped_column(Integer)
    c7: Mapped[int] = mapped_column(BigInteger)
    c6: Mapped[int] = mapped_column(BigInteger)


class IncidentTotalDay(Base):
    """Incidents per local day (``rollup_calendar.zone``) x exact cells (``cell`` res 8,
    ``c7``, ``c6``; 0021): the unfiltered heatmap."""

    __tablename__ = "incident_total_day"
    __table_args__ = (PrimaryKeyConstraint("bucket", "cell", "c7", "c6"),)

    cell: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[date] = mapped_column(Date)
    n: Mapped[int] = mapped_column(Integer)
    c7: Mapped[int] = mapped_column(BigInteger)
    c6: Mapped[int] = mapped_column(BigInteger)


class IncidentTotalMonth(Base):
    """Incidents per local month x exact cells (``cell`` res 8, ``c7``, ``c6``; 0021): the
    unfiltered heatmap."""

    __tablename__ = "incident_total_month"
    __table_args__ = (PrimaryKeyConstraint("bucket", "cell", "c7", "c6"),)

    cell: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[date] = mapped_column(Date)
    n: Mapped[int] = mapped_column(Integer)
    c7: Mapped[int] = mapped_column(BigInteger)
    c6: Mapped[int] = mapped_column(BigInteger)


class IncidentCumYear(Base):
    """Cumulative incidents per res-8 cell and local year: ``cum[i]`` counts up to local day
    ``i`` (of ``rollup_calendar.zone``)."""

    __tablename__ = "incident_cum_year"
    __table_args__ = (
        PrimaryKeyConstraint("cell", "year"),
        # max(year) (the latest year) stays an index probe per partition
        Index("ix_incident_cum_year_year", "year"),
        {"postgresql_partition_by": "RANGE (year)"},
    )

    cell: Mapped[int] = mapped_column(BigInteger)
    year: Mapped[int] = mapped_column(Integer)
    cum: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class RollupCalendar(Base):
    """The IANA time zone whose days and months the rollups and ``incident_cum_year`` count
    (one row, migration 0028): the trigger functions read it, ``incident_rollups_rebuild``
    sets it, and the heatmap checks it against ``GEO_TIMEZONE`` in each statement."""

    __tablename__ = "rollup_calendar"
    __table_args__ = (CheckConstraint("id", name="rollup_calendar_id_check"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    zone: Mapped[str] = mapped_column(Text)
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class H3Cell(Base):
    """An H3 cell's polygon, filled on first use, so tiles join cells to geometry in SQL."""

    __tablename__ = "h3_cells"
    __table_args__ = (PrimaryKeyConstraint("res", "cell"),)

    res: Mapped[int] = mapped_column(SmallInteger)
    cell: Mapped[int] = mapped_column(BigInteger)
    geom: Mapped[Any] = mapped_column(Geometry("POLYGON", srid=SRID, spatial_index=False))


class TileLayer(Base):
    """One materialised computed tile layer (a cache: UNLOGGED, rebuilt on demand)."""

    __tablename__ = "tile_layers"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    made: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# The cells of a tile layer, hexagons in web mercator (no primary key: a cache written and
# dropped per layer key).
tile_layer_cells = Table(
    "tile_layer_cells",
    Base.metadata,
    Column("key", Text, ForeignKey("tile_layers.key", ondelete="CASCADE"), nullable=False),
    Column("h3", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("z", Double),
    Column("p_fdr", Double),
    Column("class", Text),
    Column("geom", Geometry("POLYGON", srid=WEB_MERCATOR, spatial_index=False), nullable=False),
    Index("ix_tile_layer_cells_key", "key"),
    Index("ix_tile_layer_cells_geom", "geom", postgresql_using="gist"),
    prefixes=["UNLOGGED"],
)

"""Boundaries room: versions of the area hierarchy, their polygons and the publish crosswalks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo_service.db.models.base import SRID, Base
from geo_service.vocabulary import AREA_LEVELS, VERSION_STATUSES, sql_in


class BoundaryVersion(Base):
    """A set of area polygons with a lifecycle: draft -> published -> retired."""

    __tablename__ = "boundary_versions"
    __table_args__ = (
        CheckConstraint(sql_in("status", VERSION_STATUSES), name="ck_version_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    effective_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    effective_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Area(Base):
    """One polygon of the hierarchy district > street > community > grid in one version."""

    __tablename__ = "areas"
    __table_args__ = (
        UniqueConstraint("version_id", "code", name="uq_area_version_code"),
        CheckConstraint(sql_in("level", AREA_LEVELS), name="ck_area_level"),
        CheckConstraint("ST_IsValid(geom)", name="ck_area_geom_valid"),
        CheckConstraint("jsonb_typeof(names) = 'object'", name="ck_area_names_object"),
        Index("ix_areas_version_level", "version_id", "level"),
        Index("ix_areas_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("boundary_versions.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    # The source's code when it is unique only within the parent: ``code`` is then
    # "<parent code>/<local code>" (migration 0020); NULL when the code alone is the code.
    local_code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    # the name per language (BCP 47 tag -> name, migration 0036); ``name`` stays as given
    names: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE")
    )
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))
    area_m2: Mapped[float] = mapped_column(Double)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class BoundaryCrosswalk(Base):
    """How many entities of each old grid moved to each new grid when a version was published."""

    __tablename__ = "boundary_crosswalks"
    __table_args__ = (Index("ix_crosswalk_versions", "from_version_id", "to_version_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    from_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("boundary_versions.id", ondelete="CASCADE")
    )
    to_version_id: Mapped[int] = mapped_column(
        ForeignKey("boundary_versions.id", ondelete="CASCADE")
    )
    entity: Mapped[str] = mapped_column(String(32))
    old_grid_id: Mapped[int | None] = mapped_column(Integer)
    new_grid_id: Mapped[int | None] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    # Sum of the moved records' disclosure keys (households and rental units only).
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

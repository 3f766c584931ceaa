"""Batch room: background jobs, batch runs over the exported dataset and their results."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from geo_service.db.models.base import WEB_MERCATOR, Base
from geo_service.vocabulary import BATCH_ENGINES, BATCH_KINDS, JOB_STATUSES, sql_in


class Job(Base):
    """Long work (boundary proposals, imports) run in the background with progress and result."""

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint(sql_in("status", JOB_STATUSES), name="ck_job_status"),)

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    progress: Mapped[float] = mapped_column(Double, server_default="0")
    message: Mapped[str | None] = mapped_column(Text)
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # who started it: GET /jobs/{id} answers them and admins only (0016)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class BatchRun(Base):
    """One batch computation over the GeoParquet dataset (local or on a Dask cluster)."""

    __tablename__ = "batch_runs"
    __table_args__ = (
        # unnamed in migration 0012: PostgreSQL's own names
        CheckConstraint(sql_in("kind", BATCH_KINDS), name="batch_runs_kind_check"),
        CheckConstraint(sql_in("engine", BATCH_ENGINES), name="batch_runs_engine_check"),
        Index("ix_batch_runs_kind", "kind", text("id DESC")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    engine: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    partitions: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Double)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BatchCell(Base):
    """A heatmap, hot-spot or emerging-pattern result per H3 cell, hexagon in web mercator."""

    __tablename__ = "batch_cells"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "cell"),
        Index("ix_batch_cells_geom", "geom", postgresql_using="gist"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("batch_runs.id", ondelete="CASCADE"))
    cell: Mapped[int] = mapped_column(BigInteger)
    h3: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(BigInteger)
    z: Mapped[float | None] = mapped_column(Double)
    p: Mapped[float | None] = mapped_column(Double)
    p_fdr: Mapped[float | None] = mapped_column(Double)
    cell_class: Mapped[str | None] = mapped_column("class", Text)
    pattern: Mapped[str | None] = mapped_column(Text)
    trend_z: Mapped[float | None] = mapped_column(Double)
    trend_p: Mapped[float | None] = mapped_column(Double)
    geom: Mapped[Any] = mapped_column(Geometry("POLYGON", srid=WEB_MERCATOR, spatial_index=False))


class BatchWorkload(Base):
    """A workload run's result per grid."""

    __tablename__ = "batch_workload"
    __table_args__ = (PrimaryKeyConstraint("run_id", "grid_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("batch_runs.id", ondelete="CASCADE"))
    grid_id: Mapped[int] = mapped_column(Integer)
    incident_hours: Mapped[float] = mapped_column(Double)
    incidents: Mapped[int] = mapped_column(BigInteger)
    households: Mapped[int] = mapped_column(BigInteger)
    rental_units: Mapped[int] = mapped_column(BigInteger)
    area_km2: Mapped[float] = mapped_column(Double)
    workload_index: Mapped[float] = mapped_column("index", Double)


# A re-attribution run's moves per (entity, old grid, new grid): no key of its own.
batch_crosswalk = Table(
    "batch_crosswalk",
    Base.metadata,
    Column("run_id", Integer, ForeignKey("batch_runs.id", ondelete="CASCADE"), nullable=False),
    Column("entity", Text, nullable=False),
    Column("old_grid_id", Integer),
    Column("new_grid_id", Integer),
    Column("count", BigInteger, nullable=False),
    Index("ix_batch_crosswalk_run", "run_id"),
)

"""GeoAlchemy2 models of the schema. Every geometry is WGS84 (SRID 4326) with a GiST index.

The Alembic migrations create these tables; the models are the query layer's view of them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SRID = 4326

AREA_LEVELS = ("district", "street", "community", "grid")
VERSION_STATUSES = ("draft", "published", "retired")
INCIDENT_STATUSES = (
    "reported",
    "dispatched",
    "accepted",
    "on_scene",
    "resolved",
    "closed",
    "cancelled",
)
OPEN_INCIDENT_STATUSES = ("reported", "dispatched", "accepted", "on_scene")
INCIDENT_SOURCES = ("citizen", "grid_worker", "hotline", "sensor", "import")
RENTAL_STATUSES = ("registered", "expired", "unregistered")
RESPONDER_KINDS = ("grid_worker", "patrol", "mediator", "fire", "medical")
RESPONDER_STATUSES = ("available", "busy", "off_duty")
ROLES = ("admin", "dispatcher", "planner", "analyst", "grid_worker")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base of all tables."""


class BoundaryVersion(Base):
    """A set of area polygons with a lifecycle: draft -> published -> retired."""

    __tablename__ = "boundary_versions"
    __table_args__ = (CheckConstraint(_in("status", VERSION_STATUSES), name="ck_version_status"),)

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
        CheckConstraint(_in("level", AREA_LEVELS), name="ck_area_level"),
        CheckConstraint("ST_IsValid(geom)", name="ck_area_geom_valid"),
        Index("ix_areas_version_level", "version_id", "level"),
        Index("ix_areas_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("boundary_versions.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))
    area_m2: Mapped[float] = mapped_column(Double)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class Category(Base):
    """One incident category of the configurable taxonomy."""

    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint("default_priority BETWEEN 1 AND 4", name="ck_category_priority"),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column("group", String(64))
    default_priority: Mapped[int] = mapped_column(SmallInteger)
    handling_effort_min: Mapped[int] = mapped_column(Integer)
    response_target_s: Mapped[int | None] = mapped_column(Integer)
    resolution_target_min: Mapped[int | None] = mapped_column(Integer)


class Incident(Base):
    """A reported matter at a point, attributed to the grid in force when it was reported."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 4", name="ck_incident_priority"),
        CheckConstraint(_in("status", INCIDENT_STATUSES), name="ck_incident_status"),
        CheckConstraint(_in("source", INCIDENT_SOURCES), name="ck_incident_source"),
        Index("ix_incidents_reported_at", "reported_at"),
        Index("ix_incidents_grid_reported", "grid_id", "reported_at"),
        Index("ix_incidents_h3", "h3"),
        Index("ix_incidents_category_reported", "category", "reported_at"),
        # one open incident per responder; one incident per (user, Idempotency-Key) (0016)
        Index(
            "ux_incidents_open_responder",
            "responder_id",
            unique=True,
            postgresql_where=text(
                "responder_id IS NOT NULL AND status IN "
                "('reported', 'dispatched', 'accepted', 'on_scene')"
            ),
        ),
        Index(
            "ux_incidents_request_key",
            "request_user_id",
            "request_key",
            unique=True,
            postgresql_where=text("request_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    # Importers' natural keys (``import:<sha1>``): global, the same record imported twice is
    # one incident. A client's Idempotency-Key is ``request_key``, unique per user (0016).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_key: Mapped[str | None] = mapped_column(String(200))
    request_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    priority: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), server_default="reported")
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), server_default="citizen")
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    h3: Mapped[int] = mapped_column(BigInteger)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # dispatch (migration 0009)
    responder_id: Mapped[int | None] = mapped_column(
        ForeignKey("responders.id", ondelete="SET NULL")
    )
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalation_level: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    possible_duplicate_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Household(Base):
    """A household at its building: only what grid work needs, nothing that identifies people."""

    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint("household_size BETWEEN 1 AND 50", name="ck_household_size"),
        Index("ix_households_grid", "grid_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    household_size: Mapped[int] = mapped_column(SmallInteger)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="SET NULL"))
    h3: Mapped[int] = mapped_column(BigInteger)
    elderly_living_alone: Mapped[bool] = mapped_column(Boolean, server_default="false")
    needs_assistance: Mapped[bool] = mapped_column(Boolean, server_default="false")
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The cell-key method's record key (services/access/disclosure.py); drawn by the database, never
    # returned by any API.
    dc_key: Mapped[int] = mapped_column(
        BigInteger, server_default=text("floor(random() * 4294967296)::bigint")
    )


class RentalUnit(Base):
    """A rented dwelling (or group of them) registered at one address."""

    __tablename__ = "rental_units"
    __table_args__ = (
        CheckConstraint(_in("status", RENTAL_STATUSES), name="ck_rental_status"),
        CheckConstraint("unit_count >= 1", name="ck_rental_unit_count"),
        CheckConstraint("occupants >= 0", name="ck_rental_occupants"),
        Index("ix_rental_units_grid", "grid_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    unit_count: Mapped[int] = mapped_column(Integer)
    occupants: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    landlord_ref: Mapped[str | None] = mapped_column(String(64))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="SET NULL"))
    h3: Mapped[int] = mapped_column(BigInteger)
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The cell-key method's record key (services/access/disclosure.py); drawn by the database, never
    # returned by any API.
    dc_key: Mapped[int] = mapped_column(
        BigInteger, server_default=text("floor(random() * 4294967296)::bigint")
    )


class Responder(Base):
    """A grid worker or unit that can be sent to incidents."""

    __tablename__ = "responders"
    __table_args__ = (
        CheckConstraint(_in("kind", RESPONDER_KINDS), name="ck_responder_kind"),
        CheckConstraint(_in("status", RESPONDER_STATUSES), name="ck_responder_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    callsign: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    home_grid_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), server_default="available")
    position: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    position_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))


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
    key_sum: Mapped[int | None] = mapped_column(Numeric)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    """Someone who uses the API: a role and, optionally, the area they are bound to."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="ck_user_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str | None] = mapped_column(String(64))
    responder_id: Mapped[int | None] = mapped_column(
        ForeignKey("responders.id", ondelete="SET NULL")
    )
    disabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    """An API key: shown once at creation, stored as the SHA-256 of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A browser sign-in: the cookie holds a random id, this row its SHA-256 (issue 13)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who changed what, when: one row per write."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"), Index("ix_audit_at", "at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    who: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    diff: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

"""Intake room: the category taxonomy and incidents (with their dispatch lifecycle columns)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from geo_service.db.models.base import SRID, Base
from geo_service.vocabulary import (
    INCIDENT_OUTCOMES,
    INCIDENT_SOURCES,
    INCIDENT_STATUSES,
    OPEN_INCIDENT_STATUSES,
    RESOLUTION_CODES,
    sql_in,
)

# The predicate of the partial indexes over open incidents (few, read all the time).
_OPEN = sql_in("status", OPEN_INCIDENT_STATUSES)


class Category(Base):
    """One incident category of the configurable taxonomy."""

    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint("default_priority BETWEEN 1 AND 4", name="ck_category_priority"),
        CheckConstraint("jsonb_typeof(names) = 'object'", name="ck_category_names_object"),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column("group", String(64))
    default_priority: Mapped[int] = mapped_column(SmallInteger)
    handling_effort_min: Mapped[int] = mapped_column(Integer)
    response_target_s: Mapped[int | None] = mapped_column(Integer)
    resolution_target_min: Mapped[int | None] = mapped_column(Integer)
    # per language (BCP 47 tag -> name); ``name`` is the English one (migration 0029)
    names: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Incident(Base):
    """A reported matter at a point, attributed to the grid in force when it was reported."""

    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 4", name="ck_incident_priority"),
        CheckConstraint(sql_in("status", INCIDENT_STATUSES), name="ck_incident_status"),
        CheckConstraint(sql_in("source", INCIDENT_SOURCES), name="ck_incident_source"),
        CheckConstraint("escalation_level BETWEEN 0 AND 3", name="ck_incident_escalation"),
        CheckConstraint(sql_in("outcome", INCIDENT_OUTCOMES), name="ck_incident_outcome"),
        CheckConstraint(
            sql_in("resolution_code", RESOLUTION_CODES), name="ck_incident_resolution_code"
        ),
        Index("ix_incidents_reported_at", "reported_at"),
        Index("ix_incidents_grid_reported", "grid_id", "reported_at"),
        Index("ix_incidents_h3", "h3"),
        Index("ix_incidents_category_reported", "category", "reported_at"),
        Index("ix_incidents_responder", "responder_id"),
        # open incidents: the dispatcher's map and escalation read them all the time (0009)
        Index("ix_incidents_open", "reported_at", postgresql_where=text(_OPEN)),
        Index(
            "ix_incidents_open_category",
            "location",
            postgresql_using="gist",
            postgresql_where=text(_OPEN),
        ),
        # one open incident per responder; one incident per (user, Idempotency-Key) (0016)
        Index(
            "ux_incidents_open_responder",
            "responder_id",
            unique=True,
            postgresql_where=text(f"responder_id IS NOT NULL AND {_OPEN}"),
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
    # the point's own cell at each served resolution, h3.latlng_to_cell (0021): H3 does not
    # nest exactly, so these are not parents of ``h3`` (geo.h3cells.exact_cells)
    h3_6: Mapped[int] = mapped_column(BigInteger)
    h3_7: Mapped[int] = mapped_column(BigInteger)
    h3_8: Mapped[int] = mapped_column(BigInteger)
    h3_9: Mapped[int] = mapped_column(BigInteger)
    h3_10: Mapped[int] = mapped_column(BigInteger)
    grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="SET NULL", deferrable=True, initially="IMMEDIATE")
    )
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
    # what the managers' reports read (0030): a dispute's mediation outcome, set on resolve,
    # and how often the incident was reopened after it was resolved or closed
    outcome: Mapped[str | None] = mapped_column(String(16))
    reopened_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    reopened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # how a resolve settled it (migration 0033)
    resolution_code: Mapped[str | None] = mapped_column(String(16))
    # what was done, in the resolver's words (migration 0038); shown as the description is
    resolution_note: Mapped[str | None] = mapped_column(String(2000))


class IncidentActionKey(Base):
    """A lifecycle action sent with an ``Idempotency-Key``: the same user sending the same
    key again gets the incident as it is, and nothing is done twice (migration 0033)."""

    __tablename__ = "incident_action_keys"
    __table_args__ = (Index("ix_incident_action_keys_incident", "incident_id"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("incidents.id", ondelete="CASCADE")
    )
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IncidentPhoto(Base):
    """A photo of an incident: the file (re-encoded without EXIF, and its thumbnail) is in the
    photo store under ``storage_key``; the row goes with its incident (migration 0033)."""

    __tablename__ = "incident_photos"
    __table_args__ = (
        Index("ix_incident_photos_incident", "incident_id"),
        Index(
            "ux_incident_photos_request_key",
            "uploaded_by",
            "request_key",
            unique=True,
            postgresql_where=text("request_key IS NOT NULL"),
        ),
        # the same upload twice (an offline queue without an Idempotency-Key) is one photo
        Index(
            "ux_incident_photos_content",
            "incident_id",
            "content_sha256",
            unique=True,
            postgresql_where=text("content_sha256 IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    incident_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("incidents.id", ondelete="CASCADE")
    )
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    thumbnail_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    request_key: Mapped[str | None] = mapped_column(String(200))
    # hex SHA-256 of the bytes as uploaded (migration 0039; photos stored before have none)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ServiceRequestDetail(Base):
    """What an Open311 client sent with a service request beyond the incident itself
    (GeoReport v2 POST fields): the address as the citizen wrote it, a link to a photo, the
    answers to the service definition's attributes, and the jurisdiction. Contact fields are
    never stored (migration 0022)."""

    __tablename__ = "service_request_details"
    __table_args__ = (
        CheckConstraint(
            "media_url IS NULL OR media_url ~ '^https?://'", name="ck_service_request_media_url"
        ),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    address_string: Mapped[str | None] = mapped_column(String(500))
    media_url: Mapped[str | None] = mapped_column(String(2000))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    jurisdiction_id: Mapped[str | None] = mapped_column(String(200))


class IncidentEscalation(Base):
    """One climb of an incident up the hierarchy (grid 0 > community 1 > street 2 >
    district 3): from and to which level, when, by whom and why; written with the incident's
    change by the escalate action (API, the phone page, the console) and the automatic
    escalation of overdue incidents, backfilled by migration 0035. The managers' reports count
    escalations by level from it; the row goes with its incident."""

    __tablename__ = "incident_escalations"
    __table_args__ = (
        Index("ix_incident_escalations_incident", "incident_id"),
        CheckConstraint(
            "from_level >= 0 AND to_level > from_level AND to_level <= 3",
            name="ck_incident_escalation_levels",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("incidents.id", ondelete="CASCADE")
    )
    from_level: Mapped[int] = mapped_column(SmallInteger)
    to_level: Mapped[int] = mapped_column(SmallInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    who: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)

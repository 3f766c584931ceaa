"""Dispatch room: responders, response targets per priority and the road network."""

from __future__ import annotations

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
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from geo_service.db.models.base import SRID, Base
from geo_service.vocabulary import RESPONDER_KINDS, RESPONDER_STATUSES, sql_in


class Responder(Base):
    """A grid worker or unit that can be sent to incidents."""

    __tablename__ = "responders"
    __table_args__ = (
        CheckConstraint(sql_in("kind", RESPONDER_KINDS), name="ck_responder_kind"),
        CheckConstraint(sql_in("status", RESPONDER_STATUSES), name="ck_responder_status"),
        # exact nearest-responder queries in metres (0009)
        Index(
            "ix_responders_geography",
            text("(position::geography)"),
            postgresql_using="gist",
        ),
        # workers of a grid; and the check of a grid id changed by publishing (0027)
        Index("ix_responders_home_grid", "home_grid_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    callsign: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    home_grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="SET NULL", deferrable=True, initially="IMMEDIATE")
    )
    status: Mapped[str] = mapped_column(String(16), server_default="available")
    # unknown until the responder first reports a position
    position: Mapped[Any | None] = mapped_column(
        Geometry("POINT", srid=SRID, spatial_index=True), nullable=True
    )
    position_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    skills: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    # a station (fire, police): its position is where it stands, never stale (0023)
    fixed: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class ResponseTarget(Base):
    """How soon an incident of a priority must be dispatched (seconds)."""

    __tablename__ = "response_targets"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 4", name="ck_target_priority"),
        CheckConstraint("dispatch_s > 0", name="ck_target_positive"),
    )

    priority: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    dispatch_s: Mapped[int] = mapped_column(Integer)


class RoadSegment(Base):
    """One noded road segment (a LineString between two intersections) with speed and direction."""

    __tablename__ = "road_segments"
    __table_args__ = (
        CheckConstraint("speed_kmh > 0 AND speed_kmh <= 200", name="ck_road_speed"),
        CheckConstraint("oneway IN (-1, 0, 1)", name="ck_road_oneway"),
        CheckConstraint("length_m >= 0", name="ck_road_length"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    road_class: Mapped[str | None] = mapped_column("class", String(32))
    speed_kmh: Mapped[float] = mapped_column(Double)
    # 1: only from the first vertex to the last; -1: only the other way; 0: both
    oneway: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    length_m: Mapped[float] = mapped_column(Double)
    geom: Mapped[Any] = mapped_column(Geometry("LINESTRING", srid=SRID, spatial_index=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

"""Residents room: households and rental units, located and attributed to a grid."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from geo_service.db.models.base import SRID, Base
from geo_service.vocabulary import RENTAL_STATUSES, VISIT_OUTCOMES, sql_in


class Household(Base):
    """A household at its building: only what grid work needs, nothing that identifies people."""

    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint("household_size BETWEEN 1 AND 50", name="ck_household_size"),
        UniqueConstraint("external_ref", name="uq_households_external_ref"),
        Index("ix_households_grid", "grid_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    household_size: Mapped[int] = mapped_column(SmallInteger)
    grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="SET NULL", deferrable=True, initially="IMMEDIATE")
    )
    h3: Mapped[int] = mapped_column(BigInteger)
    # the home's own cell at each resolution its aggregates and planning atoms serve,
    # h3.latlng_to_cell (0025): H3 does not nest, so not parents of ``h3``
    # (geo.h3cells.exact_cells with RESIDENT_RESOLUTIONS)
    h3_5: Mapped[int] = mapped_column(BigInteger)
    h3_6: Mapped[int] = mapped_column(BigInteger)
    h3_7: Mapped[int] = mapped_column(BigInteger)
    h3_8: Mapped[int] = mapped_column(BigInteger)
    h3_9: Mapped[int] = mapped_column(BigInteger)
    h3_10: Mapped[int] = mapped_column(BigInteger)
    # NULL: the source did not say (migration 0019), never read as false.
    elderly_living_alone: Mapped[bool | None] = mapped_column(Boolean)
    needs_assistance: Mapped[bool | None] = mapped_column(Boolean)
    external_ref: Mapped[str | None] = mapped_column(String(200))
    # where to knock (building, unit, door), as the source gives it; NULL: not given (0034).
    # A row field: shown to admins and the grid's own worker only, never in an aggregate.
    address: Mapped[str | None] = mapped_column(String(200))


class HouseholdVisit(Base):
    """A grid worker's visit to a household: the day, what came of it, and the two service
    flags as found (migration 0033); rows go with their household."""

    __tablename__ = "household_visits"
    __table_args__ = (
        CheckConstraint(sql_in("outcome", VISIT_OUTCOMES), name="ck_household_visit_outcome"),
        Index("ix_household_visits_household", "household_id", "visited_on"),
        Index(
            "ux_household_visits_request_key",
            "recorded_by",
            "request_key",
            unique=True,
            postgresql_where=text("request_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    visited_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(16))
    elderly_living_alone: Mapped[bool | None] = mapped_column(Boolean)
    needs_assistance: Mapped[bool | None] = mapped_column(Boolean)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    request_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RentalUnit(Base):
    """A rented dwelling (or group of them) registered at one address."""

    __tablename__ = "rental_units"
    __table_args__ = (
        CheckConstraint(sql_in("status", RENTAL_STATUSES), name="ck_rental_status"),
        CheckConstraint("unit_count >= 1", name="ck_rental_unit_count"),
        CheckConstraint("occupants >= 0", name="ck_rental_occupants"),
        UniqueConstraint("external_ref", name="uq_rental_units_external_ref"),
        Index("ix_rental_units_grid", "grid_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    location: Mapped[Any] = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    unit_count: Mapped[int] = mapped_column(Integer)
    occupants: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    landlord_ref: Mapped[str | None] = mapped_column(String(64))
    grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="SET NULL", deferrable=True, initially="IMMEDIATE")
    )
    h3: Mapped[int] = mapped_column(BigInteger)
    # own cells at res 5..10, as households (0025)
    h3_5: Mapped[int] = mapped_column(BigInteger)
    h3_6: Mapped[int] = mapped_column(BigInteger)
    h3_7: Mapped[int] = mapped_column(BigInteger)
    h3_8: Mapped[int] = mapped_column(BigInteger)
    h3_9: Mapped[int] = mapped_column(BigInteger)
    h3_10: Mapped[int] = mapped_column(BigInteger)
    external_ref: Mapped[str | None] = mapped_column(String(200))


class DisclosureSecret(Base):
    """The deployment's secret behind ``disclosure_key(identity)`` (one row, migration 0018)."""

    __tablename__ = "disclosure_secret"
    __table_args__ = (CheckConstraint("id = 1", name="disclosure_secret_id_check"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    secret: Mapped[bytes] = mapped_column(LargeBinary)

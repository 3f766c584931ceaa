"""Contracts of the residents room: household rows and published aggregates."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from geo_service.api.schemas.geojson import AreaGeometry, Feature, FeatureCollection, Polygon
from geo_service.api.schemas.strict import Exact


class HouseholdRow(Exact):
    """One household (rows are shown to admins and the grid's own worker only)."""

    id: int
    lon: float
    lat: float
    household_size: int
    elderly_living_alone: bool | None = Field(description="null: the source did not say")
    needs_assistance: bool | None = Field(description="null: the source did not say")
    address: str | None = Field(
        default=None,
        description="where to knock (building, unit, door) as imported; null: not given",
    )


class HouseholdRowsPublic(Exact):
    """``GET /households``: a page of one grid's households, by id."""

    grid_id: int
    data: list[HouseholdRow]
    next_after_id: int | None = Field(description="pass as ``after_id`` for the next page")


COUNTS_NOTE = (
    "Counts as published: exact for those who may see the rows, else rounded to multiples of "
    "the base, and null (named in ``suppressed``) where a record set rounds to 0."
)


class AreaCountsProperties(Exact):
    """The published counts of one area."""

    id: int
    code: str
    name: str
    households: int | None = Field(description=COUNTS_NOTE)
    residents: int | None
    rental_units: int | None
    suppressed: list[str] = Field(description="the fields published as null")


class AreaCountsFeature(Feature[AreaGeometry, AreaCountsProperties]):
    """An area's outline (simplified) with its counts (``id`` is the area id)."""

    id: int


class CellCountsProperties(Exact):
    """The published counts of one H3 cell."""

    h3: str = Field(description="H3 cell index, hexadecimal string form")
    households: int | None = Field(description=COUNTS_NOTE)
    residents: int | None
    rental_units: int | None
    suppressed: list[str] = Field(description="the fields published as null")


class CellCountsFeature(Feature[Polygon, CellCountsProperties]):
    """An H3 cell's hexagon with its counts (``id`` is the H3 index)."""

    id: str


class HouseholdAggregatePublic(FeatureCollection[AreaCountsFeature | CellCountsFeature]):
    """``GET /households/aggregate``: areas of one ``level``, or the H3 cells of ``res``."""


# --- household visits (issue 20) ------------------------------------------------------------


class VisitCreate(BaseModel):
    """A visit to a household, as recorded at the door."""

    model_config = ConfigDict(extra="forbid")

    visited_on: date = Field(description="the day of the visit (not after today)")
    outcome: Literal["met", "no_answer", "refused", "moved"]
    elderly_living_alone: bool | None = Field(
        default=None, description="as found; null leaves the stored flag"
    )
    needs_assistance: bool | None = Field(
        default=None, description="as found; null leaves the stored flag"
    )


class VisitPublic(Exact):
    """A recorded visit."""

    id: int
    household_id: int
    visited_on: date
    outcome: str
    elderly_living_alone: bool | None
    needs_assistance: bool | None
    created_at: str


class HouseholdVisitRow(HouseholdRow):
    """A household with its last visit (rows: admins and the grid's own worker only)."""

    last_visit_on: date | None = Field(description="null: never visited")
    last_outcome: str | None
    visits: int
    due: bool = Field(description="not visited within period_days")


class HouseholdVisitsPublic(Exact):
    """``GET /households/visits``: one grid's households, longest unvisited first."""

    grid_id: int
    today: date = Field(description="today in GEO_TIMEZONE")
    period_days: int
    due: int = Field(description="households not visited within period_days")
    count: int
    data: list[HouseholdVisitRow]


class GridCoverage(Exact):
    """Households visited within the period, in one grid."""

    grid_id: int
    code: str
    name: str
    households: int | None = Field(description=COUNTS_NOTE)
    visited: int | None = Field(description=COUNTS_NOTE)
    coverage: float | None = Field(description="visited / households, from the counts shown")
    exact: bool = Field(description="true when the counts are exact (you see the rows)")


class VisitCoveragePublic(Exact):
    """``GET /households/visits/coverage``: per grid in your area."""

    today: date
    period_days: int
    grids: list[GridCoverage]

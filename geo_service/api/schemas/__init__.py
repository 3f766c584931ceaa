"""Request and response models of the API: the models shared by several rooms here, each
room's own in ``api/schemas/<room>.py``; GeoJSON generics in ``geojson.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field, model_validator

from geo_service.api.params import CrsName, Instant
from geo_service.api.schemas.geojson import Timestamp
from geo_service.api.schemas.strict import Exact
from geo_service.i18n import gettext

CrsParam = CrsName  # case-insensitive (``api.params.CrsName``)
INT32_MAX = 2_147_483_647
INT64_MAX = 9_223_372_036_854_775_807
# Row ids as the database stores them: ids outside these ranges are 422, not a 500.
AreaIdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
VersionIdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
AreaIdQuery = Annotated[int | None, Query(ge=1, le=INT32_MAX)]
RowIdQuery = Annotated[int | None, Query(ge=0, le=INT64_MAX)]


class Health(BaseModel):
    """Liveness and database readiness."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    postgis: str | None = None


class AreaRef(BaseModel):
    """A short reference to an area."""

    id: int
    code: str
    name: str


class LookupResult(BaseModel):
    """The areas holding a point, one per level."""

    grid: AreaRef
    community: AreaRef | None = None
    street: AreaRef | None = None
    district: AreaRef | None = None


class PointGeometry(BaseModel):
    """A GeoJSON Point."""

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3)


class LonLat(BaseModel):
    """A location given as lon/lat."""

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class IncidentCreate(BaseModel):
    """A new incident report."""

    model_config = {"extra": "forbid"}

    category: str = Field(min_length=1, max_length=64)
    priority: int | None = Field(default=None, ge=1, le=4, description="1 = most urgent")
    description: str | None = Field(default=None, max_length=4000)
    location: PointGeometry | LonLat
    crs: CrsParam = "wgs84"
    reported_at: Instant | None = None  # default now; naive: local time (GEO_TIMEZONE)
    source: Literal["citizen", "grid_worker", "hotline", "sensor", "import"] | None = Field(
        default=None,
        description="where the report came from, among those the caller may claim (403 "
        "otherwise): a dispatcher or admin citizen (the default), hotline, grid_worker or "
        "sensor; a grid worker grid_worker (their default); an account of an intake channel "
        "its channel; import only through the importer",
    )

    @model_validator(mode="after")
    def _check_location(self) -> IncidentCreate:
        lon, lat = self.lon_lat()
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(gettext("location must be lon in [-180, 180], lat in [-90, 90]"))
        return self

    def lon_lat(self) -> tuple[float, float]:
        """The location as (lon, lat) in ``crs``."""
        if isinstance(self.location, PointGeometry):
            return self.location.coordinates[0], self.location.coordinates[1]
        return self.location.lon, self.location.lat


class EscalationPublic(Exact):
    """One climb of an incident up the hierarchy (grid > community > street > district): the
    same object in ``GET /incidents/{id}`` (``escalations``) and in
    ``GET /incidents/{id}/escalations`` (``services.intake.escalations`` builds it)."""

    from_level: int = Field(ge=0, le=2, description="0 grid, 1 community, 2 street, 3 district")
    to_level: int = Field(ge=1, le=3)
    escalated_from: str = Field(description="from_level's name: grid, community or street")
    escalated_to: str = Field(description="to_level's name: community, street or district")
    at: Timestamp
    who: str | None = Field(
        description="who escalated: the caller as the audit log names them, or the scheduler; "
        "null for roles that may not read it"
    )
    by: str | None = Field(description="the same as who")
    reason: str | None = Field(
        description="why, in the reader's language when the service wrote it (reason_code "
        "set), as typed when a person did; null for roles that may not read it"
    )
    reason_code: str | None = Field(
        description="a stable code of a reason the service wrote: not_accepted_in_time, "
        "not_resolved_in_time, no_reason_given, recorded_from_level; null for a person's "
        "own words"
    )


class IncidentEscalationPublic(EscalationPublic):
    """A climb as ``GET /incidents/{id}`` embeds it: every field of ``EscalationPublic``, but
    ``from_level``/``to_level`` by name, as this read first published them (kept: a
    contract); ``escalated_from``/``escalated_to`` carry the names in both reads."""

    from_level: str = Field(description="grid, community or street")  # type: ignore[assignment]
    to_level: str = Field(description="community, street or district")  # type: ignore[assignment]


class IncidentPublic(Exact):
    """An incident as the API returns it (every member, always present)."""

    id: str
    category: str
    priority: int
    status: str
    description: str | None
    source: str
    reported_at: datetime
    created_at: datetime
    updated_at: datetime
    lon: float
    lat: float
    h3: str
    grid: AreaRef | None
    responder_id: int | None
    escalation_level: int
    escalated_to: str
    possible_duplicate_of: str | None
    resolution_code: str | None = Field(
        description="how a resolve settled it: settled, referred, no_issue, duplicate, other"
    )
    resolution_note: str | None = Field(
        description="what was done, as the resolver wrote it (resolve's note); null for roles "
        "that may not read the description"
    )
    escalations: list[IncidentEscalationPublic] = Field(
        description="the escalation history, oldest first (one row per level climbed)"
    )
    dispatched_at: datetime | None
    accepted_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    escalated_at: datetime | None


class Problem(BaseModel):
    """An RFC 9457 problem document; extra members carry details (e.g. ``errors``)."""

    model_config = {"extra": "allow"}

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {}},
    }


# Documented on every route: the errors any request may meet.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request"),
    401: _problem("No valid credentials"),
    403: _problem("Role or area does not allow this"),
    404: _problem("Not found"),
    409: _problem("Conflicts with the current state"),
    413: _problem("Request too large"),
    422: _problem("Invalid input"),
    429: _problem("Rate limit exceeded"),
    503: _problem("Database unavailable or query too slow"),
}

"""Contracts of the dispatch room: responders (positions, status, listing, nearest), an
incident's candidates, and the body of a lifecycle action.

Request bodies are declared once here with their limits; the services trust them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from geo_service.api.params import Instant
from geo_service.api.schemas import CrsParam, EscalationPublic
from geo_service.api.schemas.geojson import Feature, FeatureCollection, Point, Timestamp
from geo_service.api.schemas.strict import Exact
from geo_service.services.dispatch.responders import MAX_BATCH

ResponderKind = Literal["grid_worker", "patrol", "mediator", "fire", "medical"]
ResponderStatus = Literal["available", "busy", "off_duty"]
RankedBy = Literal["distance", "travel_time"]

# --- requests ------------------------------------------------------------------------------


class PositionIn(BaseModel):
    """One position fix."""

    id: int = Field(description="responder id")
    lon: float
    lat: float
    at: Instant = Field(description="when the fix was taken, with a timezone offset")


class PositionBatch(BaseModel):
    """A batch of fixes, in ``crs`` (gcj02/bd09 from Chinese map SDKs are converted)."""

    crs: CrsParam = "wgs84"
    positions: list[PositionIn] = Field(min_length=1, max_length=MAX_BATCH)


class ResponderPatch(BaseModel):
    """Fields a dispatcher (or, for status, the responder) may change."""

    status: ResponderStatus | None = None
    skills: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=50, description="replaces the list: at most 50, 1..64 characters"
    )
    fixed: bool | None = Field(
        default=None, description="a station: its position never goes stale (dispatchers)"
    )
    force: bool = Field(
        default=False,
        description="with status off_duty: take the responder off duty although it has taken "
        "incidents on (accepted, on scene; dispatchers only: the incidents stay with it until "
        "reassigned); without it that is a 409 naming them",
    )


class ActionBody(BaseModel):
    """Optional details of a lifecycle action."""

    responder_id: int | None = Field(default=None, description="for dispatch: who to send")
    note: str | None = Field(default=None, max_length=2000)
    outcome: Literal["settled", "unsettled"] | None = Field(
        default=None,
        description="for resolve: how a dispute ended (settled: the parties agreed), counted "
        "in /reports/performance",
    )
    resolution_code: Literal["settled", "referred", "no_issue", "duplicate", "other"] | None = (
        Field(
            default=None,
            description="for resolve: how it was settled (kept on the incident); 422 elsewhere",
        )
    )


# --- responses -----------------------------------------------------------------------------


class PositionsReport(Exact):
    """What a batch of positions did."""

    received: int
    updated: int = Field(description="fixes newer than the stored position")
    ignored: int = Field(description="fixes older than the stored position (late delivery)")


class ResponderPublic(Exact):
    """A responder with its last position."""

    id: int
    callsign: str
    kind: ResponderKind
    status: ResponderStatus
    skills: list[str]
    home_grid_id: int | None
    home_grid_code: str | None
    lon: float | None = Field(
        description="WGS84, or the crs asked for where the route takes one; null before the "
        "first position"
    )
    lat: float | None
    position_at: Timestamp | None
    position_age_s: float | None = Field(description="seconds since the position was taken")
    fixed: bool = Field(description="a station: its position never goes stale")


class ResponderProperties(ResponderPublic):
    """A responder as a feature's properties."""

    stale: bool = Field(
        description="no position, or one older than the stale limit (never for fixed ones)"
    )


class ResponderFeature(Feature[Point | None, ResponderProperties]):
    """A responder as a GeoJSON Feature (geometry null before the first position)."""

    id: int


class RespondersPublic(FeatureCollection[ResponderFeature]):
    """``GET /responders``: the responders in your area, by id."""


class NearestResponder(ResponderPublic):
    """A ranked responder: distance, and an ETA by straight line or by road."""

    distance_m: float = Field(description="geodesic distance on the WGS84 ellipsoid")
    eta_s: float
    eta_basis: Literal["straight_line", "road_network"]
    walk_m: float | None = Field(
        default=None, description="by road: the walk to and from the network"
    )
    drive_s: float | None = Field(default=None, description="by road: time on the network")


class NotOffered(Exact):
    """Why responders of the query's kind, skill and area were not offered (counts by the
    first reason that rules each out)."""

    matching: int = Field(description="responders of this kind and skill in your area")
    busy: int
    off_duty: int
    no_position: int
    stale: int = Field(description="available, but the last position is too old")
    too_far: int = Field(description="beyond max_distance_m")
    offered: int
    message: str = Field(description="one plain sentence")


class NearestPublic(Exact):
    """``GET /responders/nearest``: the k nearest available responders, best first."""

    by: RankedBy
    candidates: list[NearestResponder]
    not_offered: NotOffered | None = Field(
        default=None, description="when fewer than k are offered: who was ruled out, and why"
    )


class Candidate(NearestResponder):
    """A responder offered for an incident."""

    own_grid_worker: bool = Field(description="the worker of the incident's own grid")


class CandidatesPublic(Exact):
    """``GET /incidents/{id}/candidates``: who to send, best first."""

    incident_id: str
    priority: int
    target_s: int = Field(description="the dispatch target of the incident's priority")
    by: RankedBy
    policy: str
    kinds: list[ResponderKind] | None = Field(
        default=None,
        description="the kinds of responder offered: those the incident's category needs, or "
        "the one asked for with kind (null: any kind)",
    )
    candidates: list[Candidate]


class EscalationsPublic(Exact):
    """``GET /incidents/{id}/escalations``: oldest first."""

    data: list[EscalationPublic]
    count: int

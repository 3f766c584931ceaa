"""Incidents: ``POST /incidents`` (idempotent), ``GET /incidents``, ``GET /incidents/{id}``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from geo_service.api.deps import ActorDep, SessionDep, SettingsDep, require
from geo_service.api.params import Instant, OutputCrs
from geo_service.api.responses import geojson_in_crs
from geo_service.api.schemas import (
    PROBLEM_RESPONSES,
    AreaIdQuery,
    IncidentCreate,
    IncidentPublic,
)
from geo_service.api.schemas.dispatch import (
    ActionBody,
    CandidatesPublic,
    EscalationsPublic,
    ResponderKind,
)
from geo_service.api.schemas.intake import IncidentsPublic
from geo_service.errors import InvalidInputError
from geo_service.geo.crs import rows_from_wgs84
from geo_service.i18n import format_message, gettext
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox
from geo_service.services.dispatch import lifecycle as dispatch_service
from geo_service.services.intake import incidents as incident_service

router = APIRouter(prefix="/incidents", tags=["incidents"])


@router.post(
    "",
    status_code=201,
    response_model=IncidentPublic,
    response_description="the incident, created",
    responses={
        200: {
            "model": IncidentPublic,
            "description": "replay of an earlier request with the same key: the first incident",
        }
    },
)
def create_incident(
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("incidents:write"))],
    body: IncidentCreate,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    """Report an incident. Retrying with the same ``Idempotency-Key`` returns the first one."""
    lon, lat = body.lon_lat()
    new = incident_service.NewIncident(
        category=body.category,
        lon=lon,
        lat=lat,
        crs=body.crs,
        priority=body.priority,
        description=body.description,
        reported_at=body.reported_at,
        source=incident_service.claimed_source(session, scope, body.source),
    )
    item, created = incident_service.create_incident(
        session,
        new,
        idempotency_key=idempotency_key,
        actor=actor,
        scope=scope,
        radius_m=settings.dispatch.duplicate_radius_m,
        window_s=settings.dispatch.duplicate_window_s,
    )
    headers = {"Location": f"/incidents/{item['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    payload = IncidentPublic.model_validate(item).model_dump(mode="json")
    return JSONResponse(payload, status_code=201 if created else 200, headers=headers)


@router.get(
    "", response_model=IncidentsPublic, response_description="a page of incidents as GeoJSON"
)
def read_incidents(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    category: str | None = None,
    status: Annotated[
        str | None, Query(description="one state, or several comma separated", max_length=200)
    ] = None,
    grid_id: AreaIdQuery = None,
    overdue: Annotated[
        bool | None, Query(description="open incidents past their response target (or not)")
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
    crs: OutputCrs = "wgs84",
) -> dict[str, Any]:
    """Incidents newest first as GeoJSON; follow ``next_cursor`` for the next page."""
    page = limit or settings.api.default_page_size
    if page > settings.api.max_page_size:
        raise InvalidInputError(
            format_message(
                "limit may be at most {max_page_size}", max_page_size=settings.api.max_page_size
            )
        )
    flt = incident_service.IncidentFilter(
        bbox=BBox.parse(bbox, max_km2=settings.limits.bbox_km2) if bbox else None,
        since=since,
        until=until,
        category=category,
        status=status,
        grid_id=grid_id,
        overdue=overdue,
    )
    items, next_cursor = incident_service.list_incidents(
        session, flt, limit=page, cursor=cursor, scope=scope
    )
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [incident_service.incident_feature(i) for i in items],
        "next_cursor": next_cursor,
        "links": [],
    }
    if next_cursor:
        body["links"].append(
            {
                "rel": "next",
                "type": "application/geo+json",
                "href": str(request.url.include_query_params(cursor=next_cursor)),
            }
        )
    return geojson_in_crs(body, crs)


@router.get("/{incident_id}", response_model=IncidentPublic, response_description="the incident")
def read_incident(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    incident_id: uuid.UUID,
    crs: OutputCrs = "wgs84",
) -> dict[str, Any]:
    """One incident, its ``lon``/``lat`` in ``crs`` (degrees, WGS84 by default)."""
    (item,) = rows_from_wgs84(
        [incident_service.get_incident(session, incident_id, scope=scope)], crs
    )
    return item


@router.get(
    "/{incident_id}/escalations",
    response_model=EscalationsPublic,
    response_description="each climb, oldest first",
)
def read_escalations(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:describe"))],
    incident_id: uuid.UUID,
) -> dict[str, Any]:
    """The incident's escalation history: from and to which level, when, by whom, why
    (roles that read incidents with their descriptions, in their area: 403 for analysts and
    planners, 404 for an incident outside your area or none)."""
    return dispatch_service.escalation_history(session, incident_id, scope=scope)


@router.get(
    "/{incident_id}/candidates",
    response_model=CandidatesPublic,
    response_model_exclude_unset=True,  # walk_m/drive_s only when ranked by road
    response_description="responders to send, best first",
)
def read_candidates(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("responders:read"))],
    incident_id: uuid.UUID,
    k: Annotated[int, Query(ge=1, le=100)] = 5,
    kind: ResponderKind | None = None,
    skill: Annotated[str | None, Query(max_length=64)] = None,
    by: Literal["distance", "travel_time"] = "distance",
    crs: OutputCrs = "wgs84",
) -> dict[str, Any]:
    """Who to send: the grid's own worker first when within the response target, then the
    nearest available others; their ``lon``/``lat`` in ``crs`` (WGS84 by default)."""
    found = dispatch_service.candidates(
        session,
        incident_id,
        k=k,
        kind=kind,
        skill=skill,
        scope=scope,
        stale_s=settings.dispatch.stale_position_s,
        by=by,
        walking_speed_mps=settings.dispatch.walking_speed_mps,
    )
    return {**found, "candidates": rows_from_wgs84(found["candidates"], crs)}


@router.post(
    "/{incident_id}/{action}",
    response_model=IncidentPublic,
    response_description="the incident after the action",
    responses={
        409: {
            **PROBLEM_RESPONSES[409],
            "description": "the incident's state does not allow this action",
        }
    },
)
def post_action(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    actor: ActorDep,
    incident_id: uuid.UUID,
    action: Literal[
        "dispatch", "accept", "arrive", "resolve", "close", "cancel", "escalate", "reopen"
    ],
    body: ActionBody | None = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="sent again, the same action is done once (per user); "
            "409 idempotency-key-reused on another incident or action",
        ),
    ] = None,
) -> dict[str, Any]:
    """Move an incident through its lifecycle; 409 when its state does not allow ``action``.
    ``resolution_code`` goes with ``resolve`` only (422 elsewhere)."""
    body = body or ActionBody()
    if action == "escalate":
        if body.resolution_code is not None:
            raise InvalidInputError(gettext("escalate takes no resolution_code: it is for resolve"))
        return dispatch_service.escalate_one(
            session,
            incident_id,
            scope=scope,
            actor=actor,
            reason=body.note,
            idempotency_key=idempotency_key,
        )
    return dispatch_service.transition(
        session,
        incident_id,
        action,
        scope=scope,
        actor=actor,
        responder_id=body.responder_id,
        note=body.note,
        outcome=body.outcome,
        resolution_code=body.resolution_code,
        idempotency_key=idempotency_key,
    )

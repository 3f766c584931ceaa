"""Incidents: ``POST /incidents`` (idempotent), ``GET /incidents``, ``GET /incidents/{id}``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from geo_service.api.deps import ActorDep, SessionDep, SettingsDep, require
from geo_service.api.schemas import (
    AreaIdQuery,
    FeatureCollection,
    IncidentCreate,
    IncidentPublic,
)
from geo_service.errors import InvalidInputError
from geo_service.services import incidents as incident_service
from geo_service.services.access import Scope
from geo_service.services.areas import BBox

router = APIRouter(prefix="/incidents", tags=["incidents"])


@router.post(
    "",
    status_code=201,
    response_model=IncidentPublic,
    responses={200: {"description": "replay of an earlier request with the same key"}},
)
def create_incident(
    session: SessionDep,
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
        source=body.source,
    )
    item, created = incident_service.create_incident(
        session, new, idempotency_key=idempotency_key, actor=actor, scope=scope
    )
    headers = {"Location": f"/incidents/{item['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    payload = IncidentPublic.model_validate(item).model_dump(mode="json")
    return JSONResponse(payload, status_code=201 if created else 200, headers=headers)


@router.get("", response_model=FeatureCollection)
def read_incidents(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    category: str | None = None,
    status: str | None = None,
    grid_id: AreaIdQuery = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Incidents newest first as GeoJSON; follow ``next_cursor`` for the next page."""
    page = limit or settings.api.default_page_size
    if page > settings.api.max_page_size:
        raise InvalidInputError(f"limit may be at most {settings.api.max_page_size}")
    flt = incident_service.IncidentFilter(
        bbox=BBox.parse(bbox, max_km2=settings.limits.bbox_km2) if bbox else None,
        since=since,
        until=until,
        category=category,
        status=status,
        grid_id=grid_id,
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
    return body


@router.get("/{incident_id}", response_model=IncidentPublic)
def read_incident(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:read"))],
    incident_id: uuid.UUID,
) -> dict[str, Any]:
    """One incident."""
    return incident_service.get_incident(session, incident_id, scope=scope)

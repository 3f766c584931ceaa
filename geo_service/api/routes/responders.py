"""Live responders: ``POST /responders/positions``, ``PATCH /responders/{id}``,
``GET /responders``, ``GET /responders/nearest``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from geo_service.api.deps import (
    ActorDep,
    PrincipalDep,
    ScopeDep,
    SessionDep,
    SettingsDep,
    get_scope,
    require,
)
from geo_service.api.params import OutputCrs
from geo_service.api.responses import GeoJSONResponse, geojson_in_crs
from geo_service.api.schemas import CrsParam
from geo_service.api.schemas.dispatch import (
    NearestPublic,
    PositionBatch,
    PositionsReport,
    RankedBy,
    ResponderKind,
    ResponderPatch,
    ResponderPublic,
    RespondersPublic,
    ResponderStatus,
)
from geo_service.errors import InvalidInputError, PermissionDeniedError
from geo_service.geo.crs import rows_from_wgs84, to_wgs84
from geo_service.i18n import format_message, gettext
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox
from geo_service.services.dispatch import responders as service
from geo_service.services.dispatch.lifecycle import needed_kinds
from geo_service.services.dispatch.routing import nearest_by_travel_time

router = APIRouter(prefix="/responders", tags=["responders"])
ReadScope = Annotated[Scope, Depends(require("responders:read"))]


@router.post(
    "/positions",
    response_model=PositionsReport,
    response_description="how many fixes were stored and how many were older than stored",
)
async def post_positions(
    request: Request, principal: PrincipalDep, actor: ActorDep, body: PositionBatch
) -> dict[str, int]:
    """Store a batch of positions (all or nothing; a fix older than the stored one is
    ignored). A grid worker may send only their own; a responder off duty shares none (409).

    The hottest write (every device every 30 s): it runs on the event loop, on the asyncio
    pool, and looks up the caller's area only for an area-bound dispatcher.
    """
    scope = Scope(principal)
    if not (scope.can("responders:write") or scope.can("responders:self")):
        raise PermissionDeniedError(
            format_message("role {role!r} may not report positions", role=principal.role)
        )
    if principal.area_code is not None and scope.can("responders:write"):
        scope = await get_scope(request, principal)
    fixes = [service.Position(p.id, p.lon, p.lat, p.at) for p in body.positions]
    async with request.app.state.async_engine.connect() as conn:
        return await service.record_positions(conn, fixes, crs=body.crs, scope=scope, actor=actor)


@router.get(
    "",
    response_class=GeoJSONResponse,
    response_model=RespondersPublic,
    response_description="responders as GeoJSON",
)
def read_responders(
    session: SessionDep,
    settings: SettingsDep,
    scope: ReadScope,
    status: ResponderStatus | None = None,
    kind: ResponderKind | None = None,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (WGS84)")] = None,
    crs: OutputCrs = "wgs84",
) -> GeoJSONResponse:
    """Responders in your area with status, kind, position and position age (``stale`` when
    older than ``GEO_DISPATCH_STALE_POSITION_S``)."""
    box = BBox.parse(bbox, max_km2=settings.limits.bbox_km2) if bbox else None
    body = service.list_responders(
        session,
        status=status,
        kind=kind,
        bbox=box,
        scope=scope,
        stale_s=settings.dispatch.stale_position_s,
    )
    return GeoJSONResponse(geojson_in_crs(body, crs))


@router.get(
    "/nearest",
    response_model=NearestPublic,
    response_model_exclude_unset=True,  # walk_m/drive_s only when ranked by road
    response_description="the nearest available responders, best first",
)
def read_nearest(
    session: SessionDep,
    settings: SettingsDep,
    scope: ReadScope,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    k: Annotated[int, Query(ge=1, le=service.MAX_K)] = 5,
    kind: ResponderKind | None = None,
    skill: Annotated[str | None, Query(max_length=64)] = None,
    by: RankedBy = "distance",
    max_distance_m: Annotated[float | None, Query(gt=0, le=500_000)] = None,
    crs: CrsParam = "wgs84",
    category: Annotated[
        str | None,
        Query(
            max_length=64,
            description="offer only the kinds of responder this category needs (as an "
            "incident's candidates do); 422 for an unknown category",
        ),
    ] = None,
) -> dict[str, Any]:
    """The k nearest available responders with a fresh position, ranked exactly by geodesic
    distance (``by=distance``) or by road travel time (``by=travel_time``). ``crs`` is the
    system of the point asked about and of the candidates' ``lon``/``lat`` answered (a
    GCJ-02 map SDK sends and draws GCJ-02); distances are measured in WGS84."""
    (x,), (y,) = to_wgs84([lon], [lat], crs)
    needs = needed_kinds(session, category) if category is not None else None
    query = service.NearestQuery(
        lon=float(x),
        lat=float(y),
        k=k,
        kind=kind,
        skill=skill,
        max_distance_m=max_distance_m,
        kinds=needs,
    )
    stale_s = settings.dispatch.stale_position_s
    if by == "travel_time":
        found = nearest_by_travel_time(
            session,
            query,
            scope=scope,
            stale_s=stale_s,
            walking_speed_mps=settings.dispatch.walking_speed_mps,
        )
    else:
        found = service.nearest(session, query, scope=scope, stale_s=stale_s)
    body: dict[str, Any] = {"by": by, "candidates": rows_from_wgs84(found, crs)}
    if len(found) < k:  # fewer than asked for: say who was ruled out, and why
        body["not_offered"] = service.why_none(
            session, query, scope=scope, stale_s=stale_s, found=len(found)
        )
    return body


@router.patch(
    "/{responder_id}", response_model=ResponderPublic, response_description="the responder"
)
def patch_responder(
    session: SessionDep, scope: ScopeDep, actor: ActorDep, responder_id: int, body: ResponderPatch
) -> dict[str, Any]:
    """Change status, skills and/or ``fixed``. A grid worker may change only their own
    status. Going off duty while holding incidents it has accepted or is on scene of is a 409
    naming them, unless a dispatcher sends ``force``."""
    if body.status is None and body.skills is None and body.fixed is None:
        raise InvalidInputError(gettext("nothing to change: send status, skills and/or fixed"))
    if not (scope.can("responders:write") or scope.can("responders:self")):
        raise PermissionDeniedError(
            format_message("role {role!r} may not change responders", role=scope.principal.role)
        )
    return service.update_responder(
        session,
        responder_id,
        status=body.status,
        skills=body.skills,
        fixed=body.fixed,
        force=body.force,
        scope=scope,
        actor=actor,
    )

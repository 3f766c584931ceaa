"""Areas of the boundary hierarchy: listing, point lookup, and per-area statistics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from geoalchemy2.functions import ST_AsGeoJSON, ST_Intersects
from sqlalchemy import JSON, Select, String, Text, and_, cast, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session, aliased

from geo_service.db.engine import fetch_one
from geo_service.db.models import (
    Area,
    BoundaryVersion,
    Household,
    Incident,
    RentalUnit,
)
from geo_service.errors import (
    InvalidInputError,
    NotFoundError,
    OutsideCityError,
    PermissionDeniedError,
)
from geo_service.geo.bbox import BBox  # noqa: F401 - the bbox type's old home, still imported
from geo_service.geo.crs import to_wgs84
from geo_service.i18n import area_name, format_message, gettext, names_language
from geo_service.services.access import disclosure
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.vocabulary import AREA_LEVELS, OPEN_INCIDENT_STATUSES

GEOJSON_DECIMALS = 7  # ~1 cm


def localized_name(table: Any = Area) -> Any:
    """SQL for an area's name in the current language (``areas.names``), else ``name``: the
    expression every answer and page that shows an area's name to a human selects."""
    return func.coalesce(table.names.op("->>")(literal(names_language(), String)), table.name)


def _feature_collection(query: Select) -> Select:
    """Wrap a query with columns id/code/name/level/parent_id/geom into one GeoJSON text."""
    sub = query.subquery()
    feature = func.json_build_object(
        "type",
        "Feature",
        "id",
        sub.c.id,
        "geometry",
        cast(ST_AsGeoJSON(sub.c.geom, GEOJSON_DECIMALS), JSON),
        "properties",
        func.json_build_object(
            "id",
            sub.c.id,
            "code",
            sub.c.code,
            "local_code",
            func.coalesce(sub.c.local_code, sub.c.code),
            "name",
            sub.c.name,
            "names",
            sub.c.names,
            "display_name",
            sub.c.display_name,
            "level",
            sub.c.level,
            "parent_id",
            sub.c.parent_id,
            "version_id",
            sub.c.version_id,
        ),
    )
    return select(
        func.json_build_object(
            "type",
            "FeatureCollection",
            "features",
            func.coalesce(func.json_agg(feature), text("'[]'::json")),
        ).cast(Text)
    ).select_from(sub)


def require_grid_filter(session: Session, grid_id: int, scope: Scope | None) -> None:
    """Refuse a ``grid_id`` filter that names no grid, rather than answer an empty page: 404
    for an id that names no area (or one outside the caller's area, worded the same: no
    probing), 422 for an area of another level; as ``parent_id`` on ``/areas``, ``/reports``
    and ``/workload``."""
    level = session.execute(select(Area.level).where(Area.id == grid_id)).scalar_one_or_none()
    hidden = scope is not None and not (scope.has_area(grid_id) or scope.has_grid(grid_id))
    if level is None or hidden:
        raise NotFoundError(format_message("area {id} does not exist", id=grid_id))
    if level != "grid":
        raise InvalidInputError(format_message("area {id} is not a grid", id=grid_id))


def list_areas_geojson(
    session: Session,
    *,
    level: str | None = None,
    parent_id: int | None = None,
    bbox: BBox | None = None,
    version: int | None = None,
    scope: Scope | None = None,
) -> str:
    """Areas as GeoJSON FeatureCollection text, built inside PostGIS."""
    if level is not None and level not in AREA_LEVELS:
        raise InvalidInputError(
            format_message("level must be one of {values}", values=", ".join(AREA_LEVELS))
        )
    current = version_in_force(session)
    version_id = version if version is not None else current
    if version is not None and session.get(BoundaryVersion, version) is None:
        raise NotFoundError(
            format_message("boundary version {version} does not exist", version=version)
        )
    restricted = scope is not None and not scope.unrestricted
    if restricted and version_id != current:
        raise PermissionDeniedError(gettext("users bound to an area see the current version only"))
    if parent_id is not None and (
        session.get(Area, parent_id) is None
        or (restricted and scope and not scope.has_area(parent_id))
    ):  # an unknown parent is a mistake, not an empty answer (as on /incidents, /reports)
        raise NotFoundError(format_message("area {id} does not exist", id=parent_id))
    query = (
        select(
            Area.id,
            Area.code,
            Area.local_code,
            Area.name,
            Area.names,
            localized_name().label("display_name"),
            Area.level,
            Area.parent_id,
            Area.version_id,
            Area.geom,
        )
        .where(Area.version_id == version_id)
        .order_by(Area.id)
    )
    if level is not None:
        query = query.where(Area.level == level)
    if parent_id is not None:
        query = query.where(Area.parent_id == parent_id)
    if bbox is not None:
        query = query.where(ST_Intersects(Area.geom, bbox.envelope()))
    if restricted and scope is not None:
        query = query.where(Area.id.in_(scope.area_ids or ()))
    return session.execute(_feature_collection(query)).scalar_one()


def lookup_point(
    session: Session,
    lon: float,
    lat: float,
    *,
    crs: str = "wgs84",
    at: datetime | None = None,
    scope: Scope | None = None,
) -> dict[str, dict[str, Any]]:
    """The grid, community, street and district holding a point, in the version in force:
    :func:`lookup_point_async`'s statement on a session."""
    (wlon,), (wlat,) = to_wgs84([lon], [lat], crs)
    row = session.execute(_LOOKUP, {"lon": float(wlon), "lat": float(wlat), "at": at}).one()
    return _looked_up(tuple(row), lon, lat, crs, at, scope)


# The version in force (or, for a given moment, scheduled to be), the grid holding the point
# and its chain of parents, in one statement: the point lookup is the API's hottest read.
_LOOKUP = text(
    """
    WITH RECURSIVE v AS (
        SELECT id FROM boundary_versions
        WHERE (status IN ('published', 'retired')
               OR (status = 'scheduled' AND CAST(:at AS timestamptz) IS NOT NULL))
          AND effective_from <= coalesce(CAST(:at AS timestamptz), now())
          AND (effective_to IS NULL
               OR effective_to > coalesce(CAST(:at AS timestamptz), now()))
        ORDER BY effective_from DESC LIMIT 1),
    g AS (
        SELECT a.id FROM areas a, v
        WHERE a.version_id = v.id AND a.level = 'grid'
          AND ST_Intersects(a.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
        ORDER BY a.id LIMIT 1),
    chain AS (
        SELECT id, code, name, level, parent_id FROM areas WHERE id = (SELECT id FROM g)
        UNION ALL
        SELECT a.id, a.code, a.name, a.level, a.parent_id FROM areas a
        JOIN chain c ON a.id = c.parent_id)
    SELECT (SELECT id FROM v), (SELECT id FROM g),
           (SELECT json_object_agg(level, json_build_object('id', id, 'code', code,
                                                             'name', name, 'level', level))
            FROM chain)
    """
)


async def lookup_point_async(
    conn: AsyncConnection,
    lon: float,
    lat: float,
    *,
    crs: str = "wgs84",
    at: datetime | None = None,
    scope: Scope | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`lookup_point` in one round trip on an autocommit connection of the asyncio pool
    (``GET /areas/lookup``): ``{level: {id, code, name, level}}`` from the grid up. Raises
    NotFoundError (no version in force), OutsideCityError (404: no grid holds the point),
    PermissionDeniedError (403: a grid outside the caller's area)."""
    (wlon,), (wlat,) = to_wgs84([lon], [lat], crs)
    row = await fetch_one(conn, _LOOKUP, {"lon": float(wlon), "lat": float(wlat), "at": at})
    return _looked_up(row, lon, lat, crs, at, scope)


def _looked_up(
    row: tuple[Any, ...],
    lon: float,
    lat: float,
    crs: str,
    at: datetime | None,
    scope: Scope | None,
) -> dict[str, dict[str, Any]]:
    version_id, grid, chain = row
    if version_id is None:
        when = at.isoformat() if at is not None else "now"
        raise NotFoundError(format_message("no boundary version is in force at {when}", when=when))
    if grid is None:
        raise OutsideCityError(
            format_message(
                "({lon}, {lat}) [{crs}] lies outside every grid of boundary version {version}",
                lon=lon,
                lat=lat,
                crs=crs,
                version=version_id,
            ),
            lon=lon,
            lat=lat,
        )
    if scope is not None:
        scope.require_grid(grid, gettext("that point"))
    return dict(chain)


def ancestors(session: Session, area_id: int) -> list[dict[str, Any]]:
    """The area and its parents up to the district, each as id/code/name/level."""
    chain = (
        select(Area.id, Area.code, Area.name, Area.level, Area.parent_id)
        .where(Area.id == area_id)
        .cte("chain", recursive=True)
    )
    parent = aliased(Area)
    chain = chain.union_all(
        select(parent.id, parent.code, parent.name, parent.level, parent.parent_id).join(
            chain, parent.id == chain.c.parent_id
        )
    )
    rows = session.execute(select(chain.c.id, chain.c.code, chain.c.name, chain.c.level))
    return [dict(r._mapping) for r in rows]


def descendant_grids(area_id: int):  # noqa: ANN201
    """A CTE of the ids of the grids at or below ``area_id``."""
    tree = select(Area.id, Area.level).where(Area.id == area_id).cte("tree", recursive=True)
    child = aliased(Area)
    tree = tree.union_all(select(child.id, child.level).join(tree, child.parent_id == tree.c.id))
    return select(tree.c.id).where(tree.c.level == "grid")


def get_area(
    session: Session, area_id: int, *, scope: Scope | None = None, min_count: int = 5
) -> dict[str, Any]:
    """One area as a GeoJSON Feature with its counts of households, residents, rental units
    and open incidents. Household and rental-unit counts are published through
    ``disclosure`` (base ``min_count``) for everyone but admins and the grid's own worker, so a
    grid shows here what it shows in ``/households/aggregate``.
    """
    row = session.execute(
        select(Area, ST_AsGeoJSON(Area.geom, GEOJSON_DECIMALS)).where(Area.id == area_id)
    ).first()
    if row is None:
        raise NotFoundError(format_message("area {id} does not exist", id=area_id))
    area, geometry = row
    if scope is not None and not (scope.has_area(area_id) or scope.has_grid(area_id)):
        raise NotFoundError(
            format_message("area {id} does not exist", id=area_id)
        )  # as a missing id: no probing
    grids = descendant_grids(area_id)
    households, residents = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Household.household_size), 0),
        ).where(Household.grid_id.in_(grids))
    ).one()
    rentals = session.execute(
        select(func.count()).where(RentalUnit.grid_id.in_(grids))
    ).scalar_one()
    open_incidents = session.execute(
        select(func.count()).where(
            and_(Incident.grid_id.in_(grids), Incident.status.in_(OPEN_INCIDENT_STATUSES))
        )
    ).scalar_one()
    return {
        "type": "Feature",
        "id": area.id,
        "geometry": json.loads(geometry),
        "properties": {
            "id": area.id,
            "code": area.code,
            "local_code": area.local_code or area.code,
            "name": area.name,
            "names": dict(area.names or {}),
            "display_name": area_name(area.names, area.name),
            "level": area.level,
            "parent_id": area.parent_id,
            "version_id": area.version_id,
            "area_m2": area.area_m2,
            "stats": _stats(
                session,
                area_id,
                scope,
                min_count,
                {"households": households, "residents": int(residents), "rental_units": rentals},
            )
            | {"open_incidents": open_incidents},
        },
    }


def _stats(
    session: Session,
    area_id: int,
    scope: Scope | None,
    min_count: int,
    counts: dict[str, int],
) -> dict[str, Any]:
    if scope is None:  # an internal caller
        return counts
    grid_ids = session.execute(descendant_grids(area_id)).scalars().all()
    key = disclosure.identity_key(session, disclosure.area_identity(area_id))
    return disclosure.publish_or_exact(
        counts,
        exact=disclosure.sees_exact(scope, grid_ids),
        household_key=key,
        rental_key=key,
        base=min_count,
    )

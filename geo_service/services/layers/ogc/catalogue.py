"""The collections of the OGC API: which exist, who sees them, and their extents.

Collection metadata follows OGC API - Features - Part 1: Core (OGC 17-069r4, /req/core/
sfc-md-*: ``id``, ``links`` with ``rel="items"``, ``extent`` with ``spatial.bbox`` and
``temporal.interval``) and Part 2: Coordinate Reference Systems by Reference (OGC 18-058r1,
/req/crs/fc-md-crs-list, /req/crs/fc-md-storageCrs: ``crs`` and ``storageCrs``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import NotFoundError
from geo_service.i18n import format_message
from geo_service.services.access.scope import Scope
from geo_service.services.batch.request import CELL_KINDS
from geo_service.services.boundaries.versions import city_extent

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
SUPPORTED_CRS = (CRS84, EPSG4326)
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
AREA_COLLECTIONS = {
    "districts": "district",
    "streets": "street",
    "communities": "community",
    "grids": "grid",
}
# Layers computed from incidents on request, paged from one cached result (``computed``).
LAYER_COLLECTIONS = {
    "heatmap-h3-res8": "Incident counts per H3 resolution-8 cell (filter time with datetime)",
    "hotspots-h3-res8": "Getis-Ord Gi* hot spots per H3 resolution-8 cell, FDR-corrected",
    "emerging-hotspots-h3-res8": "Emerging hot spot patterns per H3 resolution-8 cell, "
    "calendar months (datetime: the window; default the 12 whole months before the month of "
    "the latest incident)",
}
INCIDENTS = "incidents"
BATCH_COLLECTIONS = {f"batch-{k}": k for k in CELL_KINDS}
# What needs more than ``layers:read`` to be seen at all (absent otherwise: 404, not listed).
INCIDENTS_PERMISSION = "incidents:read"


def landing(base: str) -> dict[str, Any]:
    """The landing page (/req/core/root-success): links to the API, conformance, data."""
    return {
        "title": "geo-service",
        "description": "City grids, incidents, heatmaps and hot spot layers (OGC API - Features)",
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/"},
            {
                "rel": "service-desc",
                "type": "application/vnd.oai.openapi+json;version=3.0",
                "href": f"{base}/openapi.json",
            },
            {"rel": "conformance", "type": "application/json", "href": f"{base}/conformance"},
            {"rel": "data", "type": "application/json", "href": f"{base}/collections"},
        ],
    }


def kind_of(session: Session, cid: str, scope: Scope | None) -> str:
    """``area``, ``layer``, ``incidents`` or ``batch`` for a collection the caller may see.

    Raises
    ------
    NotFoundError
        No such collection, or one the caller may not see (incidents without
        ``incidents:read``; batch layers, city-wide products, for callers bound to an area;
        a batch kind with no run yet).
    """
    if cid in AREA_COLLECTIONS:
        return "area"
    if cid in LAYER_COLLECTIONS:
        return "layer"
    if cid == INCIDENTS and (scope is None or scope.can(INCIDENTS_PERMISSION)):
        return "incidents"
    if cid in BATCH_COLLECTIONS and (scope is None or scope.unrestricted):
        return "batch"
    raise NotFoundError(format_message("no collection {cid!r}", cid=cid))


def _visible(session: Session, scope: Scope | None) -> list[tuple[str, str, str]]:
    """(id, title, kind) of the collections the caller may see, in listing order."""
    out = [
        (cid, f"{level.capitalize()} boundaries (current version)", "area")
        for cid, level in AREA_COLLECTIONS.items()
    ]
    out += [(cid, title, "layer") for cid, title in LAYER_COLLECTIONS.items()]
    if scope is None or scope.can(INCIDENTS_PERMISSION):
        out.append(
            (INCIDENTS, "Incidents (points; no descriptions, addresses or people)", INCIDENTS)
        )
    if scope is None or scope.unrestricted:
        # batch layers (geo-service analytics run): listed once a run of the kind exists
        for kind, run_id in session.execute(
            text("SELECT kind, max(id) FROM batch_runs WHERE kind = ANY(:k) GROUP BY kind"),
            {"k": list(BATCH_COLLECTIONS.values())},
        ).all():
            out.append((f"batch-{kind}", f"Batch {kind} layer (newest run, {run_id})", "batch"))
    return out


def spatial_extent(session: Session, scope: Scope | None) -> list[float] | None:
    """[minx, miny, maxx, maxy] (CRS84) of what the caller may see: the city's areas in force,
    or a jurisdiction's own areas; None when there are none."""
    if scope is None or scope.unrestricted:
        return city_extent(session)
    row = session.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) AS e FROM areas WHERE id = ANY(:ids)) x"
        ),
        {"ids": sorted(scope.area_ids or ())},
    ).one()
    return None if row[0] is None else [float(v) for v in row]


def incident_time_range(
    session: Session, scope: Scope | None
) -> tuple[datetime, datetime] | tuple[None, None]:
    """The first and last ``reported_at`` of the incidents the caller may see (two index
    reads on ``ix_incidents_reported_at`` / ``ix_incidents_grid_reported``)."""
    if scope is None or scope.unrestricted:
        row = session.execute(text("SELECT min(reported_at), max(reported_at) FROM incidents"))
    else:
        row = session.execute(
            text(
                "SELECT min(reported_at), max(reported_at) FROM incidents "
                "WHERE grid_id = ANY(:grids)"
            ),
            {"grids": sorted(scope.grid_ids or ())},
        )
    first, last = row.one()
    return (None, None) if first is None else (first, last)


def _collection(
    base: str,
    cid: str,
    title: str,
    spatial: list[float] | None,
    interval: tuple[datetime, datetime] | tuple[None, None] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cid,
        "title": title,
        "itemType": "feature",
        "crs": list(SUPPORTED_CRS),
        "storageCrs": CRS84,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/collections/{cid}"},
            {
                "rel": "items",
                "type": "application/geo+json",
                "href": f"{base}/collections/{cid}/items",
            },
        ],
    }
    extent: dict[str, Any] = {}
    if spatial:
        extent["spatial"] = {"bbox": [spatial], "crs": CRS84}
    if interval is not None and interval[0] is not None and interval[1] is not None:
        extent["temporal"] = {
            "interval": [[interval[0].isoformat(), interval[1].isoformat()]],
            "trs": GREGORIAN,
        }
    if extent:
        out["extent"] = extent
    return out


def collections(session: Session, base: str, scope: Scope | None = None) -> dict[str, Any]:
    """Every collection the caller may see, with its spatial and temporal extents
    (/req/core/fc-md-success, /req/core/fc-md-extent)."""
    spatial = spatial_extent(session, scope)
    timed = incident_time_range(session, scope)
    items = [
        _collection(base, cid, title, spatial, timed if kind in ("layer", INCIDENTS) else None)
        for cid, title, kind in _visible(session, scope)
    ]
    return {
        "collections": items,
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}/collections"}],
    }


def collection(session: Session, base: str, cid: str, scope: Scope | None = None) -> dict[str, Any]:
    """One collection's metadata (/req/core/sfc-md-success); 404 when absent or not visible."""
    kind_of(session, cid, scope)
    for item in collections(session, base, scope)["collections"]:
        if item["id"] == cid:
            return item
    raise NotFoundError(format_message("no collection {cid!r}", cid=cid))

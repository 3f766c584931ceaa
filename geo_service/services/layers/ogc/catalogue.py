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
from geo_service.i18n import N_, format_message, gettext
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
# The titles and descriptions are marked for the catalogue and said in the request's language.
AREA_TITLES = {
    "districts": N_("District boundaries (current version)"),
    "streets": N_("Street boundaries (current version)"),
    "communities": N_("Community boundaries (current version)"),
    "grids": N_("Grid boundaries (current version)"),
}
AREA_DESCRIPTION = N_(
    "The areas of this level in the boundary version in force: code, name as imported, names "
    "per language and display_name in the request's language, parent and size"
)
# Layers computed from incidents on request, paged from one cached result (``computed``).
LAYER_COLLECTIONS = {
    "heatmap-h3-res8": N_("Incident counts per H3 resolution-8 cell (filter time with datetime)"),
    "hotspots-h3-res8": N_("Getis-Ord Gi* hot spots per H3 resolution-8 cell, FDR-corrected"),
    "emerging-hotspots-h3-res8": N_(
        "Emerging hot spot patterns per H3 resolution-8 cell, calendar months (datetime: the "
        "window; default the 12 whole months before the month of the latest incident)"
    ),
}
LAYER_DESCRIPTIONS = {
    "heatmap-h3-res8": N_("How many incidents were reported in each cell"),
    "hotspots-h3-res8": N_(
        "Cells where incidents cluster (hot) or are rare (cold): z, p, p_fdr and class, with "
        "class_label in the request's language"
    ),
    "emerging-hotspots-h3-res8": N_(
        "How each cell's hot spot changes over calendar months: pattern, with pattern_label "
        "in the request's language"
    ),
}
INCIDENTS = "incidents"
BATCH_COLLECTIONS = {f"batch-{k}": k for k in CELL_KINDS}
# What needs more than ``layers:read`` to be seen at all (absent otherwise: 404, not listed).
INCIDENTS_PERMISSION = "incidents:read"


def landing(base: str) -> dict[str, Any]:
    """The landing page (/req/core/root-success): links to the API, conformance, data."""
    return {
        # the product's name, the same in every language
        "title": "geo-service",
        "description": gettext(
            "City grids, incidents, heatmaps and hot spot layers (OGC API - Features)"
        ),
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


def _visible(session: Session, scope: Scope | None) -> list[tuple[str, str, str, str]]:
    """(id, title, description, kind) of the collections the caller may see, in listing
    order, in the request's language."""
    out = [
        (cid, gettext(AREA_TITLES[cid]), gettext(AREA_DESCRIPTION), "area")
        for cid in AREA_COLLECTIONS
    ]
    out += [
        (cid, gettext(title), gettext(LAYER_DESCRIPTIONS[cid]), "layer")
        for cid, title in LAYER_COLLECTIONS.items()
    ]
    if scope is None or scope.can(INCIDENTS_PERMISSION):
        out.append(
            (
                INCIDENTS,
                gettext("Incidents (points; no descriptions, addresses or people)"),
                gettext(
                    "Incidents as points: category, priority, status, source, when reported "
                    "and grid"
                ),
                INCIDENTS,
            )
        )
    if scope is None or scope.unrestricted:
        # batch layers (geo-service analytics run): listed once a run of the kind exists
        for kind, run_id in session.execute(
            text("SELECT kind, max(id) FROM batch_runs WHERE kind = ANY(:k) GROUP BY kind"),
            {"k": list(BATCH_COLLECTIONS.values())},
        ).all():
            out.append(
                (
                    f"batch-{kind}",
                    format_message(
                        "Batch {kind} layer (newest run, {run_id})", kind=kind, run_id=run_id
                    ),
                    format_message(
                        "The cells of the newest analytics run of kind {kind}", kind=kind
                    ),
                    "batch",
                )
            )
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
    description: str,
    spatial: list[float] | None,
    interval: tuple[datetime, datetime] | tuple[None, None] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cid,
        "title": title,
        "description": description,
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
        _collection(
            base, cid, title, description, spatial, timed if kind in ("layer", INCIDENTS) else None
        )
        for cid, title, description, kind in _visible(session, scope)
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

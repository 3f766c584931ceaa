"""OGC API - Features (Part 1: Core, GeoJSON): collections of areas, heatmap and hot spots.

Layers are read through the same services as the rest of the API, so access control and the
privacy rules apply unchanged. Items are paged with ``limit``/``offset`` and ``next`` links.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
from h3.api.basic_int import str_to_int
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import cells_in_bbox
from geo_service.instants import check_instant
from geo_service.services.access.scope import Scope
from geo_service.services.batch.runs import CELL_KINDS, latest_run, run_features
from geo_service.services.boundaries.versions import city_extent, version_in_force
from geo_service.services.layers.heatmap import HeatmapQuery, h3_heatmap
from geo_service.services.layers.hotspots import HotspotQuery, h3_hotspots

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
AREA_COLLECTIONS = {
    "districts": "district",
    "streets": "street",
    "communities": "community",
    "grids": "grid",
}
BATCH_COLLECTIONS = {f"batch-{k}": k for k in CELL_KINDS}
LAYER_COLLECTIONS = {
    "heatmap-h3-res8": "Incident counts per H3 resolution-8 cell (filter time with datetime)",
    "hotspots-h3-res8": "Getis-Ord Gi* hot spots per H3 resolution-8 cell, FDR-corrected",
}


def landing(base: str) -> dict[str, Any]:
    """The landing page."""
    return {
        "title": "geo-service",
        "description": "City grids, incident heatmaps and hot spot layers (OGC API - Features)",
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


def _collection(base: str, cid: str, title: str, extent: list[float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cid,
        "title": title,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/collections/{cid}"},
            {
                "rel": "items",
                "type": "application/geo+json",
                "href": f"{base}/collections/{cid}/items",
            },
        ],
    }
    if extent:
        out["extent"] = {"spatial": {"bbox": [extent], "crs": CRS84}}
    return out


def collections(session: Session, base: str) -> dict[str, Any]:
    """All collections."""
    extent = city_extent(session)
    items = [
        _collection(base, cid, f"{level.capitalize()} boundaries (current version)", extent)
        for cid, level in AREA_COLLECTIONS.items()
    ]
    items += [_collection(base, cid, title, extent) for cid, title in LAYER_COLLECTIONS.items()]
    # batch layers (geo-service analytics run): listed once a run of the kind exists
    for kind, run_id in session.execute(
        text("SELECT kind, max(id) FROM batch_runs WHERE kind = ANY(:k) GROUP BY kind"),
        {"k": list(BATCH_COLLECTIONS.values())},
    ).all():
        title = f"Batch {kind} layer (newest run, {run_id})"
        items.append(_collection(base, f"batch-{kind}", title, extent))
    return {
        "collections": items,
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}/collections"}],
    }


def collection(session: Session, base: str, cid: str) -> dict[str, Any]:
    """One collection's metadata."""
    for item in collections(session, base)["collections"]:
        if item["id"] == cid:
            return item
    raise NotFoundError(f"no collection {cid!r}")


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None]:
    """An RFC 3339 instant or interval (``a/b``, open ends as ``..``) as [since, until)."""
    if value is None:
        return None, None

    def one(part: str) -> datetime | None:
        if part in ("", ".."):
            return None
        try:
            parsed = datetime.fromisoformat(part.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(f"datetime {part!r} is not RFC 3339") from None
        return check_instant(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))

    if "/" in value:
        a, b = value.split("/", 1)
        return one(a), one(b)
    instant = one(value)
    return instant, instant


def items(
    session: Session,
    base: str,
    cid: str,
    *,
    bbox: BBox | None,
    datetime_: str | None,
    limit: int,
    offset: int,
    scope: Scope | None,
) -> dict[str, Any]:
    """A page of a collection's features."""
    if cid in AREA_COLLECTIONS:
        features, matched = _area_items(session, AREA_COLLECTIONS[cid], bbox, limit, offset, scope)
    elif cid in LAYER_COLLECTIONS:
        since, until = parse_datetime(datetime_)
        if since is not None and since == until:
            raise InvalidInputError("give a datetime interval (start/end) for this layer")
        if cid.startswith("heatmap"):
            layer = h3_heatmap(
                session, HeatmapQuery(res=8, since=since, until=until, bbox=bbox), scope=scope
            )
        else:
            layer = h3_hotspots(session, HotspotQuery(res=8, since=since, until=until), scope=scope)
            if bbox is not None:
                layer["features"] = _features_in_bbox(layer["features"], bbox)
        matched = len(layer["features"])
        features = layer["features"][offset : offset + limit]
    elif cid in BATCH_COLLECTIONS:
        if scope is not None:
            scope.require_unrestricted("batch layers")
        run_id = latest_run(session, BATCH_COLLECTIONS[cid])
        features, matched = run_features(session, run_id, bbox=bbox, limit=limit, offset=offset)
    else:
        raise NotFoundError(f"no collection {cid!r}")
    links = [
        {
            "rel": "self",
            "type": "application/geo+json",
            "href": f"{base}/collections/{cid}/items?limit={limit}&offset={offset}",
        }
    ]
    if offset + len(features) < matched:
        links.append(
            {
                "rel": "next",
                "type": "application/geo+json",
                "href": f"{base}/collections/{cid}/items?limit={limit}"
                f"&offset={offset + limit}"
                + (f"&bbox={bbox.minx},{bbox.miny},{bbox.maxx},{bbox.maxy}" if bbox else "")
                + (f"&datetime={datetime_}" if datetime_ else ""),
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).isoformat(),
        "links": links,
    }


def _features_in_bbox(features: list[dict[str, Any]], bbox: BBox) -> list[dict[str, Any]]:
    """The H3 cell features whose hexagon intersects the box."""
    cells = np.array([str_to_int(f["properties"]["h3"]) for f in features], dtype=np.int64)
    inside = cells_in_bbox(cells, bbox)
    return [f for f, keep in zip(features, inside.tolist(), strict=True) if keep]


def _area_items(
    session: Session, level: str, bbox: BBox | None, limit: int, offset: int, scope: Scope | None
) -> tuple[list[dict[str, Any]], int]:
    params: dict[str, Any] = {
        "v": version_in_force(session),
        "level": level,
        "limit": limit,
        "offset": offset,
    }
    where = "version_id = :v AND level = :level"
    if bbox is not None:
        where += " AND ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"
        params.update(x0=bbox.minx, y0=bbox.miny, x1=bbox.maxx, y1=bbox.maxy)
    if scope is not None and not scope.unrestricted:
        where += " AND id = ANY(:ids)"
        params["ids"] = sorted(scope.area_ids or ())
    matched = session.execute(
        text(f"SELECT count(*) FROM areas WHERE {where}"), params
    ).scalar_one()
    rows = session.execute(
        text(
            f"SELECT id, code, name, level, parent_id, area_m2, ST_AsGeoJSON(geom, 7) AS g "
            f"FROM areas WHERE {where} ORDER BY id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    features = [
        {
            "type": "Feature",
            "id": r.id,
            "geometry": json.loads(r.g),
            "properties": {
                "code": r.code,
                "name": r.name,
                "level": r.level,
                "parent_id": r.parent_id,
                "area_m2": r.area_m2,
            },
        }
        for r in rows
    ]
    return features, matched


def item(session: Session, cid: str, fid: str, scope: Scope | None) -> dict[str, Any]:
    """One feature of an area collection."""
    if cid not in AREA_COLLECTIONS or not fid.isdigit():
        raise NotFoundError(f"no feature {fid!r} in {cid!r}")
    row = session.execute(
        text(
            "SELECT id, code, name, level, parent_id, area_m2, ST_AsGeoJSON(geom, 7) AS g "
            "FROM areas WHERE id = :i AND level = :level AND version_id = :v"
        ),
        {"i": int(fid), "level": AREA_COLLECTIONS[cid], "v": version_in_force(session)},
    ).first()
    if row is None or (scope is not None and not scope.has_area(row.id)):
        raise NotFoundError(f"no feature {fid!r} in {cid!r}")
    return {
        "type": "Feature",
        "id": row.id,
        "geometry": json.loads(row.g),
        "properties": {
            "code": row.code,
            "name": row.name,
            "level": row.level,
            "parent_id": row.parent_id,
            "area_m2": row.area_m2,
        },
    }

"""Pages of a collection's features and single features, with their links, in CRS84 or
EPSG:4326.

Requirements followed (OGC API - Features - Part 1: Core, OGC 17-069r4; Part 2, OGC 18-058r1):
/req/core/fc-links (``self``, ``next`` when more follow, ``prev`` when not the first page, a
``collection`` link), /req/core/fc-response (``numberMatched``, ``numberReturned``,
``timeStamp``), /req/core/f-links (a feature's ``self`` and ``collection`` links),
/req/core/fc-bbox-response (a feature is in a ``bbox`` when its geometry intersects it),
/req/core/fc-time-response (``datetime`` on the incidents' ``reported_at``), /req/crs/
fc-crs-valid-value and /req/crs/ogc-crs-header (EPSG:4326 coordinates are latitude first).
Links keep every query parameter the client gave; only ``offset`` changes between pages.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import h3.api.basic_str as h3s
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError, NotFoundError
from geo_service.geo.bbox import BBox
from geo_service.i18n import format_message, gettext, names_language
from geo_service.instants import check_instant
from geo_service.runtime import current
from geo_service.services.access.scope import Scope
from geo_service.services.batch.runs import latest_run, run_features
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.layers.labels import labelled_feature
from geo_service.services.layers.ogc.catalogue import (
    AREA_COLLECTIONS,
    BATCH_COLLECTIONS,
    CRS84,
    EPSG4326,
    kind_of,
)
from geo_service.services.layers.ogc.computed import computed_layer

GEOJSON = "application/geo+json"


# RFC 3339 section 5.6: full-date, or date-time with seconds and an offset (a time without an
# offset is read as the deployment's local time, as everywhere in the API). ISO 8601 forms
# RFC 3339 does not have (weeks, ordinal days, basic format) are refused.
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None]:
    """An OGC API ``datetime`` (RFC 3339 instant or interval ``a/b``, open ends as ``..`` or
    empty) as [since, until): an instant t is (t, t); a date is its whole local day in
    ``GEO_TIMEZONE`` (``2026-06-01`` alone, or as an interval's end, takes in all of that
    day: the standard's intervals are closed); a time without an offset is local time.

    Raises
    ------
    InvalidInputError
        Not RFC 3339, a year outside 1900-2199, or an interval ending before it starts
        (/req/core/query-param-invalid).

    >>> parse_datetime("2024-01-01T00:00:00Z/..")[0].isoformat()
    '2024-01-01T00:00:00+00:00'
    >>> parse_datetime("2024-01-01T00:00:00Z/2024-02-01T00:00:00Z")[1].isoformat()
    '2024-02-01T00:00:00+00:00'
    """
    if value is None:
        return None, None
    zone = ZoneInfo(current().settings.api.timezone)

    def one(part: str, *, end: bool) -> datetime | None:
        if part in ("", ".."):
            return None
        if _FULL_DATE.fullmatch(part):
            try:
                day = date.fromisoformat(part)
            except ValueError:
                raise InvalidInputError(
                    format_message("datetime {part!r} is not a date", part=part)
                ) from None
            day = day + timedelta(days=1) if end else day
            return check_instant(datetime(day.year, day.month, day.day, tzinfo=zone))
        if not _DATE_TIME.fullmatch(part):
            raise InvalidInputError(
                format_message(
                    "datetime {part!r} is not RFC 3339 (e.g. 2026-06-01T08:00:00Z or 2026-06-01)",
                    part=part,
                )
            )
        try:
            parsed = datetime.fromisoformat(part.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidInputError(
                format_message("datetime {part!r} is not RFC 3339", part=part)
            ) from None
        return check_instant(parsed if parsed.tzinfo else parsed.replace(tzinfo=zone))

    if "/" in value:
        a, b = value.split("/", 1)
        since, until = one(a, end=False), one(b, end=True)
        if since is not None and until is not None and since > until:
            raise InvalidInputError(gettext("the datetime interval ends before it starts"))
        return since, until
    if _FULL_DATE.fullmatch(value):  # a day: from its first instant to the next day's
        return one(value, end=False), one(value, end=True)
    instant = one(value, end=False)
    if instant is None:
        raise InvalidInputError(gettext("datetime '..' needs the other end of an interval"))
    return instant, instant


def check_crs(crs: str | None) -> str:
    """The output CRS (default CRS84); 400 for one not offered (/req/crs/fc-crs-valid-value)."""
    chosen = (crs or CRS84).strip()
    if chosen not in (CRS84, EPSG4326):
        raise InvalidInputError(
            format_message("crs must be {crs84} or {epsg4326}", crs84=CRS84, epsg4326=EPSG4326)
        )
    return chosen


def _swap(coords: Any) -> Any:
    # A position is a list of numbers; rings and parts nest them. Written by hand because a
    # geometry library would parse and rebuild every feature only to swap two numbers.
    if coords and isinstance(coords[0], int | float):
        return [coords[1], coords[0], *coords[2:]]
    return [_swap(c) for c in coords]


def in_crs(feature: dict[str, Any], crs: str) -> dict[str, Any]:
    """``feature`` in ``crs``: unchanged for CRS84, latitude first for EPSG:4326 (a copy; the
    cached layers are shared)."""
    if crs == CRS84 or feature.get("geometry") is None:
        return feature
    geometry = feature["geometry"]
    return {**feature, "geometry": {**geometry, "coordinates": _swap(geometry["coordinates"])}}


def _href(path: str, query: Sequence[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(list(query))}" if query else path


def page_links(
    base: str,
    cid: str,
    query: Sequence[tuple[str, str]],
    *,
    offset: int,
    limit: int,
    returned: int,
    matched: int,
) -> list[dict[str, str]]:
    """``self``, ``collection``, and ``next``/``prev`` when they exist, each keeping every
    query parameter given (bbox, bbox-crs, datetime, crs, limit, f) with its own ``offset``."""
    path = f"{base}/collections/{quote(cid)}/items"
    kept = [(k, v) for k, v in query if k != "offset"]
    links = [
        {"rel": "self", "type": GEOJSON, "href": _href(path, query)},
        {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{cid}"},
    ]
    if offset + returned < matched:
        links.append(
            {
                "rel": "next",
                "type": GEOJSON,
                "href": _href(path, [*kept, ("offset", str(offset + limit))]),
            }
        )
    if offset > 0:
        prev = max(0, offset - limit)
        links.append(
            {"rel": "prev", "type": GEOJSON, "href": _href(path, [*kept, ("offset", str(prev))])}
        )
    return links


def items(
    session: Session,
    base: str,
    cid: str,
    *,
    bbox: BBox | None,
    datetime_: str | None,
    crs: str | None = None,
    limit: int,
    offset: int,
    query: Sequence[tuple[str, str]] = (),
    scope: Scope | None,
) -> dict[str, Any]:
    """A page of a collection's features (GeoJSON FeatureCollection) with ``numberMatched``,
    ``numberReturned``, ``timeStamp`` and links (/req/core/fc-response).

    Raises
    ------
    NotFoundError
        No such collection for this caller.
    InvalidInputError
        A bad ``datetime`` or ``crs``, or an instant for a layer computed over a window.
    """
    out_crs = check_crs(crs)
    since, until = parse_datetime(datetime_)
    kind = kind_of(session, cid, scope)
    stamp = datetime.now(UTC)
    if kind == "area":
        features, matched = _area_items(session, AREA_COLLECTIONS[cid], bbox, limit, offset, scope)
    elif kind == "layer":
        layer = computed_layer(session, cid, since=since, until=until, scope=scope)
        # the page is a piece of that one computation: its time is the response's, so that
        # the same page is the same body (and If-None-Match answers 304) while it is cached
        stamp = layer.made
        chosen = layer.in_bbox(bbox)
        matched = len(chosen)
        features = chosen[offset : offset + limit]
    elif kind == "incidents":
        features, matched = _incident_items(session, bbox, since, until, limit, offset, scope)
    else:
        run_id = latest_run(session, BATCH_COLLECTIONS[cid])
        features, matched = run_features(session, run_id, bbox=bbox, limit=limit, offset=offset)
    return {
        "type": "FeatureCollection",
        # hot spot classes and patterns: ArcGIS's value, and a label in the request's language
        "features": [in_crs(labelled_feature(f), out_crs) for f in features],
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": stamp.isoformat(),
        "links": page_links(
            base,
            cid,
            query,
            offset=offset,
            limit=limit,
            returned=len(features),
            matched=matched,
        ),
    }


def item(
    session: Session,
    base: str,
    cid: str,
    fid: str,
    *,
    scope: Scope | None,
    crs: str | None = None,
    datetime_: str | None = None,
    query: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """One feature by its ``id`` with ``self`` and ``collection`` links (/req/core/f-success,
    /req/core/f-links): an area by row id, a heatmap / hot spot / emerging cell by its H3
    index (in the layer of ``datetime``, default window as in the items), an incident by
    its UUID, a batch cell by its H3 index in the newest run.

    Raises
    ------
    NotFoundError
        No such collection or feature, or one the caller may not see (/req/core/f-op).
    InvalidInputError
        A bad ``crs`` or ``datetime``, or a ``datetime`` for a collection that takes none.
    """
    out_crs = check_crs(crs)
    kind = kind_of(session, cid, scope)
    missing = NotFoundError(format_message("no feature {fid!r} in {cid!r}", fid=fid, cid=cid))
    if datetime_ is not None and kind != "layer":
        raise InvalidInputError(format_message("{cid} takes no datetime for one feature", cid=cid))
    feature: dict[str, Any] | None
    if kind == "area":
        feature = _area_item(session, AREA_COLLECTIONS[cid], fid, scope)
    elif kind == "layer":
        since, until = parse_datetime(datetime_)
        layer = computed_layer(session, cid, since=since, until=until, scope=scope)
        feature = layer.by_id.get(fid)
    elif kind == "incidents":
        feature = _incident_item(session, fid, scope)
    else:
        feature = _batch_item(session, BATCH_COLLECTIONS[cid], fid)
    if feature is None:
        raise missing
    path = f"{base}/collections/{quote(cid)}/items/{quote(fid)}"
    return {
        **in_crs(labelled_feature(feature), out_crs),
        "links": [
            {"rel": "self", "type": GEOJSON, "href": _href(path, query)},
            {"rel": "collection", "type": "application/json", "href": f"{base}/collections/{cid}"},
        ],
    }


# --- areas ---------------------------------------------------------------------------------

# ``name`` as imported (a contract), ``names`` per language and ``display_name`` in the
# request's language (else ``name``).
_AREA_COLUMNS = (
    "id, code, name, names, coalesce(names ->> :lang, name) AS display_name, level, parent_id, "
    "area_m2, ST_AsGeoJSON(geom, 7) AS g"
)


def _area_feature(r: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": r.id,
        "geometry": json.loads(r.g),
        "properties": {
            "code": r.code,
            "name": r.name,
            "names": dict(r.names or {}),
            "display_name": r.display_name,
            "level": r.level,
            "parent_id": r.parent_id,
            "area_m2": r.area_m2,
        },
    }


def _area_items(
    session: Session, level: str, bbox: BBox | None, limit: int, offset: int, scope: Scope | None
) -> tuple[list[dict[str, Any]], int]:
    params: dict[str, Any] = {
        "v": version_in_force(session),
        "level": level,
        "limit": limit,
        "offset": offset,
        "lang": names_language(),
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
            f"SELECT {_AREA_COLUMNS} FROM areas WHERE {where} "
            "ORDER BY id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return [_area_feature(r) for r in rows], int(matched)


def _area_item(
    session: Session, level: str, fid: str, scope: Scope | None
) -> dict[str, Any] | None:
    if not (fid.isascii() and fid.isdigit()) or len(fid) > 18:
        return None
    row = session.execute(
        text(
            f"SELECT {_AREA_COLUMNS} FROM areas "
            "WHERE id = :i AND level = :level AND version_id = :v"
        ),
        {"i": int(fid), "level": level, "v": version_in_force(session), "lang": names_language()},
    ).first()
    if row is None or (scope is not None and not scope.has_area(row.id)):
        return None
    return _area_feature(row)


# --- incidents -----------------------------------------------------------------------------

# What an incident shows as an OGC feature: no description, address, reporter or responder.
_INCIDENT_COLUMNS = (
    "id, category, priority, status, source, reported_at, grid_id, "
    "ST_X(location) AS lon, ST_Y(location) AS lat"
)


def _incident_feature(r: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": str(r.id),
        "geometry": {"type": "Point", "coordinates": [round(r.lon, 7), round(r.lat, 7)]},
        "properties": {
            "category": r.category,
            "priority": r.priority,
            "status": r.status,
            "source": r.source,
            "reported_at": r.reported_at.isoformat(),
            "grid_id": r.grid_id,
        },
    }


def _incident_items(
    session: Session,
    bbox: BBox | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    scope: Scope | None,
) -> tuple[list[dict[str, Any]], int]:
    """Incidents reported in [since, until) (an instant: at that instant) whose point lies in
    the box (boundary included), inside the caller's grids, oldest first."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if since is not None and since == until:
        where.append("reported_at = :at")
        params["at"] = since
    else:
        if since is not None:
            where.append("reported_at >= :since")
            params["since"] = since
        if until is not None:
            where.append("reported_at < :until")
            params["until"] = until
    if bbox is not None:
        where.append("ST_Intersects(location, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))")
        params.update(x0=bbox.minx, y0=bbox.miny, x1=bbox.maxx, y1=bbox.maxy)
    if scope is not None and not scope.unrestricted:
        where.append("grid_id = ANY(:grids)")
        params["grids"] = sorted(scope.grid_ids or ())
    clause = " AND ".join(where)
    matched = session.execute(
        text(f"SELECT count(*) FROM incidents WHERE {clause}"), params
    ).scalar_one()
    rows = session.execute(
        text(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE {clause} "
            "ORDER BY reported_at, id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return [_incident_feature(r) for r in rows], int(matched)


def _incident_item(session: Session, fid: str, scope: Scope | None) -> dict[str, Any] | None:
    try:
        incident_id = uuid.UUID(fid)
    except ValueError:
        return None
    row = session.execute(
        text(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE id = :i"), {"i": incident_id}
    ).first()
    if row is None or (scope is not None and not scope.has_grid(row.grid_id)):
        return None
    return _incident_feature(row)


# --- batch layers --------------------------------------------------------------------------


def _batch_item(session: Session, kind: str, fid: str) -> dict[str, Any] | None:
    """A cell of the newest run: found through the same read as the pages (the cell's own
    bounding box), so it equals its entry in the items."""
    if not h3s.is_valid_cell(fid):
        return None
    lats, lons = zip(*h3s.cell_to_boundary(fid), strict=True)
    box = BBox(minx=min(lons), miny=min(lats), maxx=max(lons), maxy=max(lats))
    features, _ = run_features(session, latest_run(session, kind), bbox=box)
    return next((f for f in features if f["id"] == fid), None)

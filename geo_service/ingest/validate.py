"""Per-row validation of imported records: each kind's fields, types, ranges and geometry.

Input is a GeoDataFrame whose columns already carry our field names (after ``--map`` and
``--set``). Output is the accepted rows in canonical form and the rejected rows with the first
reason that applies. Columns that are not fields of the kind are dropped, never stored: that is
how imports keep to the minimal household schema.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_service.db.models import (
    AREA_LEVELS,
    INCIDENT_STATUSES,
    RENTAL_STATUSES,
    RESPONDER_KINDS,
    RESPONDER_STATUSES,
)
from geo_service.ingest.parsing import parse_bools, parse_ints, parse_timestamps
from geo_service.ingest.readers import GEOMETRY_ERROR

MAX_DESCRIPTION = 4000
MAX_REPAIR_AREA_CHANGE = 0.001  # make_valid may change a polygon's area by < 0.1%
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "incidents": ("id", "category", "priority", "status", "description", "reported_at"),
    "households": ("id", "household_size", "elderly_living_alone", "needs_assistance"),
    "rental-units": ("id", "unit_count", "occupants", "status", "registered_at", "landlord_ref"),
    "responders": ("callsign", "kind", "status", "skills"),
    "boundaries": ("code", "name", "parent_code"),
    "roads": ("id", "name", "class", "speed_kmh", "oneway"),
}
# Speeds when a road carries none (km/h), by OpenStreetMap-style class; documented in README.
ROAD_CLASS_SPEED = {
    "motorway": 80.0,
    "trunk": 60.0,
    "primary": 50.0,
    "arterial": 50.0,
    "secondary": 40.0,
    "tertiary": 35.0,
    "residential": 25.0,
    "local": 25.0,
    "unclassified": 25.0,
    "service": 15.0,
    "living_street": 10.0,
}
DEFAULT_ROAD_SPEED = 30.0
ONEWAY_VALUES = {
    **dict.fromkeys(("", "no", "false", "f", "0", "b", "both", "n"), 0),
    **dict.fromkeys(("yes", "true", "t", "1", "ft", "forward", "y"), 1),
    **dict.fromkeys(("-1", "tf", "backward", "reverse"), -1),
}


@dataclass
class Checked:
    """Outcome of validation: accepted rows (canonical columns) and rejects (row, reason)."""

    accepted: pd.DataFrame
    rejects: pd.DataFrame
    ignored_columns: list[str] = field(default_factory=list)


class Reasons:
    """The first reason each row fails, accumulated check by check."""

    def __init__(self, index: pd.Index) -> None:
        self.series = pd.Series(None, index=index, dtype=object)

    def add(self, mask: pd.Series | np.ndarray, reason: str | pd.Series) -> None:
        """Record ``reason`` for rows in ``mask`` that have none yet."""
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.series.index)
        todo = mask & self.series.isna()
        if isinstance(reason, pd.Series):
            self.series[todo] = reason[todo]
        else:
            self.series[todo] = reason

    def merge(self, reasons: pd.Series) -> None:
        """Record per-row reasons from a parser (None where the row parsed)."""
        self.add(reasons.notna(), reasons)

    @property
    def ok(self) -> pd.Series:
        """Rows with no reason so far."""
        return self.series.isna()


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[name].fillna("").astype(str).str.strip()


def _geometry_errors(frame: gpd.GeoDataFrame, reasons: Reasons) -> None:
    if GEOMETRY_ERROR in frame:
        errors = frame[GEOMETRY_ERROR]
        reasons.add(errors.notna(), "invalid geometry (" + errors.astype(str) + ")")


def _point_checks(frame: gpd.GeoDataFrame, reasons: Reasons) -> tuple[np.ndarray, np.ndarray]:
    _geometry_errors(frame, reasons)
    geoms = frame.geometry.values
    missing = np.asarray(pd.isna(geoms) | shapely.is_empty(geoms), dtype=bool)
    reasons.add(missing, "missing coordinates")
    types = shapely.get_type_id(geoms)
    reasons.add(
        ~missing & (types != 0),
        pd.Series(
            [
                f"wrong geometry type ({g.geom_type}), expected Point" if g is not None else ""
                for g in geoms
            ],
            index=frame.index,
        ),
    )
    is_point = ~missing & (types == 0)
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    lon[is_point] = shapely.get_x(geoms[is_point])
    lat[is_point] = shapely.get_y(geoms[is_point])
    reasons.add(is_point & (lon == 0) & (lat == 0), "zero coordinates")
    reasons.add(is_point & ((np.abs(lon) > 180) | (np.abs(lat) > 90)), "coordinates out of range")
    return lon, lat


def _duplicates(keys: pd.Series, reasons: Reasons, what: str) -> None:
    """Reject every repeat of a key after its first valid occurrence."""
    valid = keys.where(reasons.ok & keys.notna())
    dup = valid.notna() & valid.duplicated(keep="first")
    if not dup.any():
        return
    firsts = valid[valid.notna() & ~dup]
    first_row = pd.Series(firsts.index + 1, index=firsts.values)
    why = pd.Series(None, index=keys.index, dtype=object)
    why[dup] = [f"duplicate {what}: {k!r} first at row {first_row[k]}" for k in valid[dup]]
    reasons.add(dup, why)


def _finish(
    frame: gpd.GeoDataFrame, reasons: Reasons, accepted: pd.DataFrame, kind: str
) -> Checked:
    ok = reasons.ok
    rejects = pd.DataFrame({"row": frame.index[~ok] + 1, "reason": reasons.series[~ok].values})
    known = set(KIND_FIELDS[kind]) | {frame.geometry.name, "lon", "lat", GEOMETRY_ERROR}
    ignored = [c for c in frame.columns if c not in known]
    out = accepted[ok.values].copy()
    out.insert(0, "row", frame.index[ok.values] + 1)
    return Checked(out.reset_index(drop=True), rejects, ignored)


def check_incidents(
    frame: gpd.GeoDataFrame,
    *,
    categories: dict[str, int],
    category_map: dict[str, str] | None,
    tz: str,
    date_format: str | None,
    default_status: str,
    source_name: str,
    **_: object,
) -> Checked:
    """Validate incidents; ``categories`` maps our codes to their default priority."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    raw_cat = _text(frame, "category")
    reasons.add(raw_cat == "", "missing category")
    category = raw_cat.map(category_map) if category_map is not None else raw_cat
    unknown = (raw_cat != "") & ~category.isin(list(categories))
    reasons.add(unknown, "unknown category " + raw_cat.map(repr))
    when, why = parse_timestamps(_text(frame, "reported_at"), tz=tz, date_format=date_format)
    reasons.merge(why)
    default_priority = category.map(categories).fillna(4).astype(int)
    prio_text = _text(frame, "priority")
    priority, why = parse_ints(
        prio_text.where(prio_text != "", default_priority.astype(str)),
        name="priority",
        low=1,
        high=4,
    )
    reasons.merge(why)
    status = _text(frame, "status").replace("", default_status)
    reasons.add(~status.isin(INCIDENT_STATUSES), "unknown status " + status.map(repr))
    description = _text(frame, "description")
    reasons.add(
        description.str.len() > MAX_DESCRIPTION,
        f"description longer than {MAX_DESCRIPTION} characters",
    )
    ids = _text(frame, "id")
    has_ids = (ids != "").any()
    if has_ids:
        reasons.add(ids == "", "missing id")
        key = f"{source_name}:" + ids
        _duplicates(key.rename("key"), reasons, "id")
    else:
        # No ids in the source: the row's content is its identity, so a re-run adds nothing.
        content = (
            category.fillna("")
            + "|"
            + when.astype(str)
            + "|"
            + pd.Series(np.round(lon, 7), index=frame.index).astype(str)
            + "|"
            + pd.Series(np.round(lat, 7), index=frame.index).astype(str)
            + "|"
            + description
        )
        key = "import:" + content.map(lambda s: hashlib.sha1(s.encode()).hexdigest())
        _duplicates(key.rename("key"), reasons, "row")
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "category": category.values,
            "priority": priority.values,
            "status": status.values,
            "description": description.replace("", None).values,
            "reported_at": when.array,
            "idempotency_key": key.values,
        }
    )
    return _finish(frame, reasons, accepted, "incidents")


def _external_ref(frame: pd.DataFrame, reasons: Reasons, source_name: str) -> pd.Series:
    ids = _text(frame, "id")
    if (ids != "").any():
        reasons.add(ids == "", "missing id")
        ref = f"{source_name}:" + ids
        _duplicates(ref.rename("ref"), reasons, "id")
        return ref
    return pd.Series(None, index=frame.index, dtype=object)


def check_households(frame: gpd.GeoDataFrame, *, source_name: str, **_: object) -> Checked:
    """Validate households: location, size 1..50, two service-need flags."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    size, why = parse_ints(_text(frame, "household_size"), name="household_size", low=1, high=50)
    reasons.merge(why)
    flags = {}
    for name in ("elderly_living_alone", "needs_assistance"):
        flags[name], why = parse_bools(_text(frame, name), name=name)
        reasons.merge(why)
    ref = _external_ref(frame, reasons, source_name)
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "household_size": size.values,
            **{k: v.values for k, v in flags.items()},
            "external_ref": ref.values,
        }
    )
    return _finish(frame, reasons, accepted, "households")


def check_rental_units(
    frame: gpd.GeoDataFrame, *, tz: str, date_format: str | None, source_name: str, **_: object
) -> Checked:
    """Validate rental units: location, counts, status, registration time."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    units, why = parse_ints(
        _text(frame, "unit_count"), name="unit_count", low=1, high=10_000, default=1
    )
    reasons.merge(why)
    occupants, why = parse_ints(
        _text(frame, "occupants"), name="occupants", low=0, high=100_000, default=0
    )
    reasons.merge(why)
    status = _text(frame, "status").replace("", "registered")
    reasons.add(~status.isin(RENTAL_STATUSES), "unknown status " + status.map(repr))
    reg_text = _text(frame, "registered_at")
    registered, why = parse_timestamps(reg_text, tz=tz, date_format=date_format)
    reasons.merge(why.where(reg_text != ""))
    ref = _external_ref(frame, reasons, source_name)
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "unit_count": units.values,
            "occupants": occupants.values,
            "status": status.values,
            "registered_at": registered.array,
            "landlord_ref": _text(frame, "landlord_ref").replace("", None).values,
            "external_ref": ref.values,
        }
    )
    return _finish(frame, reasons, accepted, "rental-units")


def check_responders(frame: gpd.GeoDataFrame, **_: object) -> Checked:
    """Validate responders: callsign (unique), kind, status, skills, position."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    callsign = _text(frame, "callsign")
    reasons.add(callsign == "", "missing callsign")
    reasons.add(callsign.str.len() > 64, "callsign longer than 64 characters")
    _duplicates(callsign.where(callsign != "").rename("callsign"), reasons, "callsign")
    kind = _text(frame, "kind")
    reasons.add(
        ~kind.isin(RESPONDER_KINDS),
        "kind must be one of " + ", ".join(RESPONDER_KINDS) + "; got " + kind.map(repr),
    )
    status = _text(frame, "status").replace("", "available")
    reasons.add(~status.isin(RESPONDER_STATUSES), "unknown status " + status.map(repr))
    skills = (
        _text(frame, "skills")
        .str.split(r"[,;|]\s*", regex=True)
        .map(lambda parts: [p for p in parts if p] if isinstance(parts, list) else [])
    )
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "callsign": callsign.values,
            "kind": kind.values,
            "status": status.values,
            "skills": skills.values,
        }
    )
    return _finish(frame, reasons, accepted, "responders")


def repair_polygons(geoms: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
    """Make polygons valid when the repair changes the area by < 0.1%; else say why not."""
    out = np.array(geoms, dtype=object)
    why: list[str | None] = [None] * len(out)
    invalid = np.flatnonzero(~shapely.is_valid(out))
    for i in invalid:
        before = out[i]
        reason = shapely.is_valid_reason(before)
        repaired = shapely.make_valid(before)
        polys = [p for p in shapely.get_parts(repaired) if p.geom_type == "Polygon"]
        fixed = shapely.MultiPolygon(polys) if polys else None
        # The shoelace area of the invalid input: a bow-tie's lobes cancel, so repairing it
        # "changes" the area a lot and is refused; a tiny spike or duplicate vertex is not.
        area = abs(shapely.area(before))
        change = abs((fixed.area if fixed is not None else 0.0) - area) / area if area else 1.0
        if fixed is None or change >= MAX_REPAIR_AREA_CHANGE:
            why[i] = f"invalid geometry ({reason}); repair would change area by {change:.2%}"
        else:
            out[i] = fixed
    return out, why


def check_boundaries(
    frame: gpd.GeoDataFrame, *, max_vertices: int = 50_000, **_: object
) -> Checked:
    """Validate area polygons: code (unique), name, geometry type and validity."""
    reasons = Reasons(frame.index)
    _geometry_errors(frame, reasons)
    geoms = frame.geometry.values
    missing = np.asarray(pd.isna(geoms) | shapely.is_empty(geoms), dtype=bool)
    reasons.add(missing, "missing geometry")
    types = shapely.get_type_id(geoms)
    polygonal = np.isin(types, (3, 6))
    reasons.add(
        ~missing & ~polygonal,
        pd.Series(
            [
                f"wrong geometry type ({g.geom_type}), expected Polygon" if g is not None else ""
                for g in geoms
            ],
            index=frame.index,
        ),
    )
    vertices = shapely.get_num_coordinates(geoms)
    reasons.add(
        vertices > max_vertices,
        pd.Series(
            [f"too many vertices ({n:,} > {max_vertices:,})" for n in vertices], index=frame.index
        ),
    )
    repaired, why = repair_polygons(np.asarray(np.where(polygonal, geoms, None), dtype=object))
    reasons.add(
        pd.Series([w is not None for w in why], index=frame.index),
        pd.Series(why, index=frame.index),
    )
    code = _text(frame, "code")
    reasons.add(code == "", "missing code")
    reasons.add(code.str.len() > 64, "code longer than 64 characters")
    _duplicates(
        code.where(code != "").rename("code"),
        reasons,
        "code (pass --dissolve to merge parts that share a code)",
    )
    name = _text(frame, "name")
    name = name.where(name != "", code)
    multi = np.array(
        [
            shapely.MultiPolygon([g]) if g is not None and g.geom_type == "Polygon" else g
            for g in repaired
        ],
        dtype=object,
    )
    accepted = pd.DataFrame(
        {
            "code": code.values,
            "name": name.values,
            "parent_code": _text(frame, "parent_code").replace("", None).values,
            "geometry": multi,
        }
    )
    return _finish(frame, reasons, accepted, "boundaries")


_NO_GEOMETRY = np.array(None, dtype=object)  # np.where's "none here", as an array for typing


def check_roads(frame: gpd.GeoDataFrame, *, source_name: str, **_: object) -> Checked:
    """Validate road segments: a LineString each (a MultiLineString that merges into one
    line is accepted), speed 1..200 km/h (default by class), oneway yes/no/-1."""
    reasons = Reasons(frame.index)
    _geometry_errors(frame, reasons)
    geoms = np.array(frame.geometry.values, dtype=object)
    missing = np.asarray(pd.isna(geoms), dtype=bool)
    merged = geoms.copy()
    multi = ~missing & (shapely.get_type_id(np.where(missing, _NO_GEOMETRY, geoms)) == 5)
    merged[multi] = shapely.line_merge(geoms[multi])
    types = shapely.get_type_id(np.where(missing, _NO_GEOMETRY, merged))
    reasons.add(
        missing | shapely.is_empty(np.where(missing, _NO_GEOMETRY, merged)), "missing geometry"
    )
    reasons.add(~missing & (types == 5), "multi-part line that does not join into one: split it")
    reasons.add(
        ~missing & ~np.isin(types, (1, 5)),
        pd.Series(
            [
                f"wrong geometry type ({g.geom_type}), expected LineString" if g is not None else ""
                for g in geoms
            ],
            index=frame.index,
        ),
    )
    klass = _text(frame, "class").str.lower()
    raw_speed = _text(frame, "speed_kmh")
    speed = pd.to_numeric(raw_speed.replace("", np.nan), errors="coerce")
    reasons.add((raw_speed != "") & speed.isna(), "speed_kmh is not a number")
    reasons.add(speed.notna() & ((speed <= 0) | (speed > 200)), "speed_kmh must be 0..200")
    speed = speed.fillna(klass.map(ROAD_CLASS_SPEED)).fillna(DEFAULT_ROAD_SPEED)
    oneway_text = _text(frame, "oneway").str.lower()
    oneway = oneway_text.map(ONEWAY_VALUES)
    reasons.add(oneway.isna(), "oneway must be yes, no or -1; got " + oneway_text.map(repr))
    ref = _external_ref(frame, reasons, source_name)
    if ref.isna().all():  # no ids: the geometry and attributes are the key
        ref = pd.Series(
            [
                f"{source_name}:"
                + hashlib.sha1(
                    (shapely.to_wkb(g, hex=True) if g is not None else "").encode()
                ).hexdigest()[:20]
                for g in merged
            ],
            index=frame.index,
        )
        _duplicates(ref.rename("geometry"), reasons, "geometry")
    accepted = pd.DataFrame(
        {
            "geometry": merged,
            "name": _text(frame, "name").str.slice(0, 200).values,
            "class": klass.str.slice(0, 32).values,
            "speed_kmh": speed.values,
            "oneway": oneway.fillna(0).astype(int).values,
            "external_ref": ref.values,
        }
    )
    return _finish(frame, reasons, accepted, "roads")


CHECKS: dict[str, Callable[..., Checked]] = {
    "incidents": check_incidents,
    "households": check_households,
    "rental-units": check_rental_units,
    "responders": check_responders,
    "boundaries": check_boundaries,
    "roads": check_roads,
}
LEVELS = AREA_LEVELS

"""Validation of the kinds that are not points: area polygons (boundaries) and road lines."""

from __future__ import annotations

import hashlib
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_service.i18n import format_message, gettext
from geo_service.ingest.rows import (
    Checked,
    Reasons,
    duplicates,
    external_ref,
    finish,
    geometry_errors,
    key_column,
    per_row,
    text_column,
)

MAX_REPAIR_AREA_CHANGE = 0.001  # make_valid may change a polygon's area by < 0.1%
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
            why[i] = format_message(
                "invalid geometry ({reason}); repair would change area by {change:.2%}",
                reason=reason,
                change=change,
            )
        else:
            out[i] = fixed
    return out, why


def check_boundaries(
    frame: gpd.GeoDataFrame, *, max_vertices: int = 50_000, **_: object
) -> Checked:
    """Validate area polygons: code (unique), name, geometry type and validity."""
    reasons = Reasons(frame.index)
    geometry_errors(frame, reasons)
    geoms = frame.geometry.values
    missing = np.asarray(pd.isna(geoms) | shapely.is_empty(geoms), dtype=bool)
    reasons.add(missing, gettext("missing geometry"))
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
    code = key_column(frame, "code")
    reasons.add(code == "", gettext("missing code"))
    reasons.add(code.str.len() > 64, gettext("code longer than 64 characters"))
    # With parents named, a code need be unique only within its parent (every community's
    # grid G01): a repeat under the same parent is still a duplicate.
    parent = key_column(frame, "parent_code")
    within = (parent + "/" + code).where(parent != "", code)
    duplicates(
        within.where(code != "").rename("code"),
        reasons,
        "code (pass --dissolve to merge parts that share a code)",
    )
    name_en, name_zh = text_column(frame, "name_en"), text_column(frame, "name_zh")
    name = text_column(frame, "name")
    # a file with only per-language names: the name as given is the first of them
    name = name.where(name != "", name_en.where(name_en != "", name_zh))
    name = name.where(name != "", code)
    names = [
        json.dumps(
            {tag: text for tag, text in (("en", en), ("zh-CN", zh)) if text}, ensure_ascii=False
        )
        for en, zh in zip(name_en, name_zh, strict=True)
    ]
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
            "names": names,
            "parent_code": parent.replace("", None).values,
            "geometry": multi,
        }
    )
    return finish(frame, reasons, accepted, "boundaries")


_NO_GEOMETRY = np.array(None, dtype=object)  # np.where's "none here", as an array for typing


def check_roads(frame: gpd.GeoDataFrame, *, source_name: str, **_: object) -> Checked:
    """Validate road segments: a LineString each (a MultiLineString that merges into one
    line is accepted), speed 1..200 km/h (default by class), oneway yes/no/-1."""
    reasons = Reasons(frame.index)
    geometry_errors(frame, reasons)
    geoms = np.array(frame.geometry.values, dtype=object)
    missing = np.asarray(pd.isna(geoms), dtype=bool)
    merged = geoms.copy()
    multi = ~missing & (shapely.get_type_id(np.where(missing, _NO_GEOMETRY, geoms)) == 5)
    merged[multi] = shapely.line_merge(geoms[multi])
    types = shapely.get_type_id(np.where(missing, _NO_GEOMETRY, merged))
    reasons.add(
        missing | shapely.is_empty(np.where(missing, _NO_GEOMETRY, merged)),
        gettext("missing geometry"),
    )
    reasons.add(
        ~missing & (types == 5), gettext("multi-part line that does not join into one: split it")
    )
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
    klass = text_column(frame, "class").str.lower()
    raw_speed = text_column(frame, "speed_kmh")
    speed = pd.to_numeric(raw_speed.replace("", np.nan), errors="coerce")
    reasons.add((raw_speed != "") & speed.isna(), gettext("speed_kmh is not a number"))
    reasons.add(speed.notna() & ((speed <= 0) | (speed > 200)), gettext("speed_kmh must be 0..200"))
    speed = speed.fillna(klass.map(ROAD_CLASS_SPEED)).fillna(DEFAULT_ROAD_SPEED)
    oneway_text = text_column(frame, "oneway").str.lower()
    oneway = oneway_text.map(ONEWAY_VALUES)
    reasons.add(
        oneway.isna(),
        per_row("oneway must be yes, no or -1; got {value!r}", frame.index, value=oneway_text),
    )
    ref = external_ref(frame, reasons, source_name)
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
        duplicates(ref.rename("geometry"), reasons, "geometry")
    accepted = pd.DataFrame(
        {
            "geometry": merged,
            "name": text_column(frame, "name").str.slice(0, 200).values,
            "class": klass.str.slice(0, 32).values,
            "speed_kmh": speed.values,
            "oneway": oneway.fillna(0).astype(int).values,
            "external_ref": ref.values,
        }
    )
    return finish(frame, reasons, accepted, "roads")

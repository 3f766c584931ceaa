"""Import road segments: upsert by stable key, so a changed speed, direction or shape updates
the segment (and so the travel times)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text

from geo_service.db.bulk import ewkb_hex
from geo_service.geo.roads import line_lengths_m
from geo_service.ingest.validate import Checked
from geo_service.services.ingest.options import Progress
from geo_service.services.ingest.report import ImportReport, build_report
from geo_service.services.ingest.staging import stage


def import_roads(
    conn: Connection, frame: gpd.GeoDataFrame, checked: Checked, path: Path, step: Progress
) -> ImportReport:
    """Upsert road segments by stable key; ``inserted`` counts new and changed segments."""
    rows = checked.accepted
    lines = rows.geometry.to_numpy()
    lengths = line_lengths_m(lines)
    table = pd.DataFrame(
        {
            "external_ref": rows.external_ref,
            "name": rows["name"].replace("", None),
            "class": rows["class"].replace("", None),
            "speed_kmh": rows.speed_kmh,
            "oneway": rows.oneway,
            "length_m": lengths,
            "geom": ewkb_hex(lines),
        }
    )
    staging = stage(conn, "road_segments", table, lambda n: step("write", n, len(rows)))
    cols = ", ".join(table.columns)
    changed = conn.execute(
        text(
            f"INSERT INTO road_segments AS r ({cols}) SELECT {cols} FROM {staging} "
            "ON CONFLICT (external_ref) DO UPDATE SET name = EXCLUDED.name, "
            "class = EXCLUDED.class, speed_kmh = EXCLUDED.speed_kmh, oneway = EXCLUDED.oneway, "
            "length_m = EXCLUDED.length_m, geom = EXCLUDED.geom, updated_at = now() "
            "WHERE (r.speed_kmh, r.oneway, r.name, r.class, ST_AsBinary(r.geom)) IS DISTINCT "
            "FROM (EXCLUDED.speed_kmh, EXCLUDED.oneway, EXCLUDED.name, EXCLUDED.class, "
            "ST_AsBinary(EXCLUDED.geom))"
        )
    ).rowcount
    return build_report("roads", path, frame, checked, accepted=len(rows), inserted=changed)

"""Export incidents, households and rental units as a partitioned GeoParquet dataset.

Layout (Hive-style, so pyarrow, geopandas, DuckDB and Spark read it as one dataset)::

    DIR/incidents/h3_3=<res-3 parent>/month=<YYYY-MM>/part-0.parquet   (local month)
    DIR/households/h3_3=<res-3 parent>/part-0.parquet
    DIR/rental_units/h3_3=<res-3 parent>/part-0.parquet
    DIR/<kind>/_manifest.json

Each file is GeoParquet 1.1 (WKB points, EPSG:4326) with a ``bbox`` covering column, rows sorted
along a Hilbert curve over the city's extent and written in row groups of 64k rows, so a
reader's bbox filter skips most row groups by their statistics.

A month is a month of the deployment's calendar (``GEO_TIMEZONE``, recorded as the manifest's
``time_zone``): an incident reported at 00:30 on 1 September in Beijing is in ``month=2026-09``.
An export under another zone than the folder's rewrites every partition (issue 19: one
calendar everywhere).

Incremental: the manifest keeps a signature per partition (row count, the sum of row
versions ``xmin`` and an XOR of row-id hashes, computed by one aggregate in PostGIS). A later
export rewrites only partitions whose signature changed and removes partitions that emptied.
Free-text fields (incident descriptions), references to people (landlord refs) and the
households' care flags are never exported: batch analytics does not need them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from sqlalchemy import Engine, text

from geo_service.errors import InvalidInputError
from geo_service.geo.h3cells import EXACT_RESOLUTIONS, cell_to_str
from geo_service.i18n import format_message
from geo_service.instants import deployment_zone

MANIFEST = "_manifest.json"
FORMAT_VERSION = 1
# The res-3 parent of a row's res-11 cell names the file partition (``h3_3=<cell>``) a row
# is written to: a file-partition key only, never a cell a point is counted or drawn in
# (counts read the exact ``h3_<res>`` columns), so it stays a parent (issue 16).
PARTITION_RES = 3
ROW_GROUP_ROWS = 65_536
Progress = Callable[[int, int, str], None]  # done, total, message


@dataclass(frozen=True)
class _Kind:
    """How one table is exported."""

    table: str
    folder: str
    columns: dict[str, str]  # output column -> SQL expression
    types: dict[str, pa.DataType]
    time_column: str | None  # partition by month of this column (incidents only)


KINDS: dict[str, _Kind] = {
    "incidents": _Kind(
        table="incidents",
        folder="incidents",
        columns={
            "id": "id::text",
            "category": "category",
            "priority": "priority",
            "status": "status",
            "source": "source",
            "reported_at": "reported_at",
            "updated_at": "updated_at",
            "h3": "h3",
            # each point's own cell per served resolution (0021): batch counts read these
            **{f"h3_{r}": f"h3_{r}" for r in EXACT_RESOLUTIONS},
            "grid_id": "grid_id",
            "escalation_level": "escalation_level",
            "lon": "ST_X(location)",
            "lat": "ST_Y(location)",
        },
        types={
            "id": pa.string(),
            "category": pa.string(),
            "priority": pa.int16(),
            "status": pa.string(),
            "source": pa.string(),
            "reported_at": pa.timestamp("us", tz="UTC"),
            "updated_at": pa.timestamp("us", tz="UTC"),
            "h3": pa.int64(),
            **{f"h3_{r}": pa.int64() for r in EXACT_RESOLUTIONS},
            "grid_id": pa.int32(),
            "escalation_level": pa.int16(),
            "lon": pa.float64(),
            "lat": pa.float64(),
        },
        time_column="reported_at",
    ),
    "households": _Kind(
        table="households",
        folder="households",
        columns={
            "id": "id",
            "household_size": "household_size",
            "h3": "h3",
            "grid_id": "grid_id",
            "lon": "ST_X(location)",
            "lat": "ST_Y(location)",
        },
        types={
            "id": pa.int64(),
            "household_size": pa.int16(),
            "h3": pa.int64(),
            "grid_id": pa.int32(),
            "lon": pa.float64(),
            "lat": pa.float64(),
        },
        time_column=None,
    ),
    "rental-units": _Kind(
        table="rental_units",
        folder="rental_units",
        columns={
            "id": "id",
            "unit_count": "unit_count",
            "occupants": "occupants",
            "status": "status",
            "registered_at": "registered_at",
            "h3": "h3",
            "grid_id": "grid_id",
            "lon": "ST_X(location)",
            "lat": "ST_Y(location)",
        },
        types={
            "id": pa.int64(),
            "unit_count": pa.int32(),
            "occupants": pa.int32(),
            "status": pa.string(),
            "registered_at": pa.timestamp("us", tz="UTC"),
            "h3": pa.int64(),
            "grid_id": pa.int32(),
            "lon": pa.float64(),
            "lat": pa.float64(),
        },
        time_column=None,
    ),
}


def kind_folder(kind: str) -> str:
    """The dataset folder of an export kind (``rental-units`` -> ``rental_units``)."""
    return _kind(kind).folder


def _kind(kind: str) -> _Kind:
    if kind not in KINDS:
        raise InvalidInputError(
            format_message("kind must be one of {values}", values=", ".join(KINDS))
        )
    return KINDS[kind]


def _partition_sql(spec: _Kind) -> str:
    """One row a partition: its keys and signature (the zone of its months bound as
    ``:zone``)."""
    month = (
        f", to_char({spec.time_column} AT TIME ZONE :zone, 'YYYY-MM') AS month"
        if spec.time_column
        else ", NULL AS month"
    )
    # xmin changes with every update of a row, so (count, sum of xmin, xor of id hashes)
    # changes whenever a row of the partition is inserted, updated or deleted.
    return (
        f"SELECT h3_parent(h3, {PARTITION_RES}) AS h3_3{month}, count(*) AS n, "
        "sum(xmin::text::bigint) AS xs, bit_xor(hashtext(id::text)) AS ids "
        f"FROM {spec.table} GROUP BY 1, 2"
    )


def _relative(h3_3: int, month: str | None) -> str:
    name = f"h3_3={cell_to_str(h3_3)}"
    return f"{name}/month={month}" if month else name


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an exported dataset folder (empty when there is none yet)."""
    path = folder / MANIFEST
    if not path.exists():
        return {"format_version": FORMAT_VERSION, "partitions": {}}
    return json.loads(path.read_text())


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)


def month_bounds(month: str, zone: str = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of a ``YYYY-MM`` partition, as UTC instants: local midnights of the first
    day of the month and of the next in ``zone`` (a dataset's manifest ``time_zone``;
    datasets written before it was recorded are UTC months)."""
    local = ZoneInfo(zone)
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=local)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.astimezone(UTC), end.astimezone(UTC)


def _fetch(conn: Any, spec: _Kind, h3_3: int, month: str | None, zone: str) -> pa.Table:
    """One partition's rows through COPY, parsed by Arrow's CSV reader."""
    where = [f"h3_parent(h3, {PARTITION_RES}) = %(cell)s"]
    params: dict[str, Any] = {"cell": int(h3_3)}
    if spec.time_column and month:
        params["start"], params["end"] = month_bounds(month, zone)
        where.append(f"{spec.time_column} >= %(start)s AND {spec.time_column} < %(end)s")
    timestamps = {n for n, t in spec.types.items() if pa.types.is_timestamp(t)}
    # times travel as integer microseconds since the epoch: exact, and no zone text to parse
    select = ", ".join(
        f"(extract(epoch FROM {expr}) * 1000000)::bigint AS {name}"
        if name in timestamps
        else f"{expr} AS {name}"
        for name, expr in spec.columns.items()
    )
    # Table and column names come from KINDS; values are bound (psycopg binds COPY's too).
    sql = f"COPY (SELECT {select} FROM {spec.table} WHERE {' AND '.join(where)}) TO STDOUT CSV"
    buffer = io.BytesIO()
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(sql, params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    read_types = {n: pa.int64() if n in timestamps else t for n, t in spec.types.items()}
    table = pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=list(spec.columns)),
        convert_options=pacsv.ConvertOptions(
            column_types=read_types,
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for name in timestamps:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).cast(spec.types[name]))
    return table


def _to_geoparquet(table: pa.Table, path: Path, bounds: tuple[float, ...]) -> int:
    """Write one partition: Hilbert-sorted GeoParquet 1.1 with a bbox covering column."""
    frame = table.to_pandas()
    geometry = shapely.points(frame.pop("lon").to_numpy(), frame.pop("lat").to_numpy())
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"))
    order = gdf.geometry.hilbert_distance(total_bounds=bounds).argsort(kind="stable")
    gdf = gdf.iloc[order.to_numpy()].reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    gdf.to_parquet(
        tmp,
        index=False,
        write_covering_bbox=True,
        schema_version="1.1.0",
        row_group_size=ROW_GROUP_ROWS,
    )
    os.replace(tmp, path)
    return len(gdf)


def export_dataset(
    engine: Engine, kind: str, to: Path, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Export ``kind`` under ``to``; only partitions that changed since the last export are
    written (all of them when the folder's months are of another zone than the deployment's).
    Returns counts of partitions written, unchanged and removed, and rows written."""
    spec = _kind(kind)
    folder = Path(to) / spec.folder
    if Path(to).exists() and not Path(to).is_dir() or folder.exists() and not folder.is_dir():
        raise InvalidInputError(format_message("{to} is not a folder", to=to))
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    old = manifest.get("partitions", {})
    zone = deployment_zone().key
    # every month of a folder is of one zone: another zone's partitions are all rewritten
    stale = bool(old) and manifest.get("time_zone", "UTC") != zone and spec.time_column
    started = time.perf_counter()
    with engine.connect() as conn:
        extent = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                f"(SELECT ST_Extent(location) AS e FROM {spec.table}) s"
            )
        ).one()
        # Hilbert keys over a fixed frame (the manifest's first extent), so unchanged
        # partitions keep their order across exports.
        bounds = tuple(manifest.get("hilbert_bounds") or [float(v or 0) for v in extent])
        current = {
            _relative(int(r.h3_3), r.month): {
                "h3_3": cell_to_str(int(r.h3_3)),
                "month": r.month,
                "rows": int(r.n),
                "signature": f"{int(r.n)}:{int(r.xs)}:{int(r.ids)}",
            }
            for r in conn.execute(text(_partition_sql(spec)), {"zone": zone})
        }
        removed = sorted(set(old) - set(current))
        if stale:
            for rel in removed:
                shutil.rmtree(folder / rel, ignore_errors=True)
            old, removed = {}, []
            manifest["partitions"] = {}
        changed = sorted(k for k, v in current.items() if old.get(k, {}) != v)
        rows = 0
        for done, rel in enumerate(changed):
            if progress:
                progress(done, len(changed), rel)
            part = current[rel]
            table = _fetch(conn, spec, int(part["h3_3"], 16), part["month"], zone)
            rows += _to_geoparquet(table, folder / rel / "part-0.parquet", bounds)
            old[rel] = part
            # after every partition: an interrupted export resumes where it stopped
            _write_manifest(
                folder,
                {
                    **manifest,
                    "hilbert_bounds": list(bounds),
                    "partitions": old,
                    "kind": kind,
                    "time_zone": zone,
                },
            )
    for rel in removed:
        shutil.rmtree(folder / rel, ignore_errors=True)
        old.pop(rel, None)
    _write_manifest(
        folder,
        {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "partition_res": PARTITION_RES,
            "time_zone": zone,
            "hilbert_bounds": list(bounds),
            "exported_at": datetime.now(UTC).isoformat(),
            "partitions": old,
        },
    )
    if progress:
        progress(len(changed), len(changed), "done")
    return {
        "kind": kind,
        "path": str(folder),
        "partitions": len(current),
        "written": len(changed),
        "unchanged": len(current) - len(changed),
        "removed": len(removed),
        "rows_written": rows,
        "seconds": round(time.perf_counter() - started, 2),
    }

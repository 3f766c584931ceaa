"""Import files from other systems: read, map, validate, assign grid and H3, bulk write.

One import is one transaction: rows are COPYed into a temporary staging table and moved into
place by set-based SQL, so a failure half way leaves nothing half written, and stable keys
(source ids, or a hash of the row when there are none) make re-running a file add nothing.
Rejected rows go to ``<input>.rejects.csv`` with their row number and reason.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from geo_service.db.bulk import (
    copy_frame,
    ewkb_hex,
    lift_statement_timeout,
    pg_array,
    point_ewkb_hex,
)
from geo_service.db.models import AREA_LEVELS
from geo_service.errors import (
    ConflictError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
)
from geo_service.geo.assign import NO_GRID, GridIndex
from geo_service.geo.h3cells import cells_for_points
from geo_service.geo.roads import line_lengths_m
from geo_service.ingest.readers import ImportFileError, SourceCrs, read_source
from geo_service.ingest.uploads import ReadLimits
from geo_service.ingest.validate import CHECKS, KIND_FIELDS, Checked
from geo_service.services.access.scope import Scope
from geo_service.services.dispatch.routing import forget_graphs

KINDS = tuple(CHECKS)
KEY_CHARS = 200  # stable keys (external_ref, idempotency_key) and version names: varchar(200)
SOURCE_NAME_CHARS = 100  # the key prefix; leaves 100 characters for the source's own id
Progress = Callable[[str, int, int | None], None]


@dataclass
class ImportOptions:
    """How to read and interpret a file (the CLI's options and the HTTP form fields)."""

    crs: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)  # source column -> our field
    constants: dict[str, str] = field(default_factory=dict)  # our field -> value for all rows
    category_map: dict[str, str] | None = None  # source category -> our category code
    tz: str = "UTC"
    date_format: str | None = None
    layer: str | None = None
    status: str = "reported"  # incidents: status of rows that carry none
    source_name: str | None = None  # prefix of stable keys; default: the file's stem
    rejects_path: Path | None = None
    # boundaries
    level: str | None = None
    parent_level: str | None = None
    version_id: int | None = None
    version_name: str | None = None
    dissolve: bool = False  # merge features that share a code into one multipolygon
    max_features: int = 5_000_000
    max_vertices: int = 50_000
    max_uncompressed_bytes: int = ReadLimits.max_uncompressed_bytes
    max_compression_ratio: float = ReadLimits.max_compression_ratio
    # What reports and messages call the file (an upload: the client's name, never the
    # server's copy); default: the file's own name.
    file_name: str | None = None


@dataclass
class ImportReport:
    """What an import took and what it refused."""

    kind: str
    file: str
    read: int
    accepted: int
    inserted: int
    already_present: int
    rejected: int
    rejected_by_reason: dict[str, int]
    reject_file: str | None
    ignored_columns: list[str]
    version_id: int | None = None
    merged_parts: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, max_rejects: int = 1000) -> dict[str, Any]:
        """JSON-ready summary (at most ``max_rejects`` reject rows inline)."""
        body = dict(self.__dict__)
        body["rejects"] = self.rejects[:max_rejects]
        return body


def read_mapping_csv(path: Path) -> dict[str, str]:
    """Read a two-column CSV (source value, our value) such as a category map."""
    if not path.exists():
        raise ImportFileError(f"{path} does not exist")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    if rows and rows[0][0].strip().lower() in ("source", "from", "src"):
        rows = rows[1:]
    if any(len(r) < 2 for r in rows):
        raise ImportFileError(f"{path.name}: every line needs two columns: source,ours")
    return {r[0].strip(): r[1].strip() for r in rows}


def _apply_mapping(frame: gpd.GeoDataFrame, options: ImportOptions, kind: str) -> gpd.GeoDataFrame:
    fields = set(KIND_FIELDS[kind]) | {"lon", "lat"}
    renames = {}
    for src, ours in options.field_map.items():
        if ours in ("lon", "lat"):
            continue  # used when reading
        if src not in frame.columns:
            raise ImportFileError(
                f"--map {src}={ours}: no column {src!r} in the file; columns are "
                + ", ".join(map(str, frame.columns))
            )
        if ours not in fields:
            raise ImportFileError(
                f"--map {src}={ours}: {ours!r} is not a field of {kind} "
                f"({', '.join(sorted(KIND_FIELDS[kind]))})"
            )
        renames[src] = ours
    # A source column already named like one of our fields must not shadow the mapped one.
    clash = [c for c in frame.columns if c in renames.values() and c not in renames]
    frame = frame.drop(columns=clash).rename(columns=renames)
    for ours, value in options.constants.items():
        if ours not in fields:
            raise ImportFileError(f"--set {ours}=...: {ours!r} is not a field of {kind}")
        frame[ours] = value
    return frame


# --- grid assignment against the version in force ---------------------------------------

_INDEX_CACHE: dict[tuple[Any, ...], GridIndex] = {}


def grid_index(conn: Connection, version_id: int) -> GridIndex:
    """The cover-raster index of a published version's grids (cached: they never change).

    The key names the server and database as well as the version (and when it was made), so
    a process that talks to several databases never mixes their grids.
    """
    url = conn.engine.url
    created = conn.execute(
        text("SELECT created_at FROM boundary_versions WHERE id = :v"), {"v": version_id}
    ).scalar_one()
    key = (url.host, url.port, url.database, version_id, created)
    if key not in _INDEX_CACHE:
        rows = conn.execute(
            text(
                "SELECT id, ST_AsBinary(geom) FROM areas WHERE version_id = :v AND level = 'grid'"
            ),
            {"v": version_id},
        ).all()
        if not rows:
            raise NotFoundError(f"boundary version {version_id} has no grids")
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
        _INDEX_CACHE[key] = GridIndex.build(geoms, ids)
    return _INDEX_CACHE[key]


def _versions(conn: Connection) -> pd.DataFrame:
    return pd.DataFrame(
        conn.execute(
            text(
                "SELECT id, effective_from, effective_to FROM boundary_versions "
                "WHERE status IN ('published', 'retired') AND effective_from IS NOT NULL "
                "ORDER BY effective_from"
            )
        ).all(),
        columns=["id", "effective_from", "effective_to"],
    )


def assign_grids(
    conn: Connection, lon: np.ndarray, lat: np.ndarray, at: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Grid of each point in the version in force at ``at`` (default: now).

    Returns grid ids (NO_GRID where none) and a per-row reason for the misses.
    """
    versions = _versions(conn)
    grid = np.full(len(lon), NO_GRID, dtype=np.int64)
    why = np.full(len(lon), None, dtype=object)
    when = (
        pd.Series(pd.to_datetime(at, utc=True))
        if at is not None
        else pd.Series([pd.Timestamp.now(tz="UTC")] * len(lon))
    )
    matched = np.zeros(len(lon), dtype=bool)
    for v in versions.itertuples():
        start = pd.Timestamp(v.effective_from)
        in_force = (when >= start).to_numpy() & ~matched
        if v.effective_to is not None and not pd.isna(v.effective_to):
            in_force = in_force & (when < pd.Timestamp(v.effective_to)).to_numpy()
        if not in_force.any():
            continue
        matched = matched | in_force
        grid[in_force] = grid_index(conn, int(v.id)).assign(lon[in_force], lat[in_force])
    why[~matched] = "no boundary version in force at that time"
    why[matched & (grid == NO_GRID)] = "outside the city (in no grid)"
    return grid, why


# --- the import itself ------------------------------------------------------------------


def import_file(
    engine: Engine,
    kind: str,
    path: Path,
    options: ImportOptions,
    *,
    actor: str,
    progress: Progress | None = None,
    scope: Scope | None = None,
) -> ImportReport:
    """Import one file of ``kind``; see the module docstring for the guarantees.

    With a ``scope`` (an API caller bound to an area) rows outside that area are rejected.
    """
    step = progress or (lambda name, done, total: None)
    if kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}")
    if kind == "boundaries" and options.level not in AREA_LEVELS:
        raise InvalidInputError(f"boundaries need --level, one of {', '.join(AREA_LEVELS)}")
    if options.parent_level is not None:
        if options.parent_level not in AREA_LEVELS:
            raise InvalidInputError(f"--parent-level must be one of {', '.join(AREA_LEVELS)}")
        if AREA_LEVELS.index(options.parent_level) >= AREA_LEVELS.index(options.level or ""):
            raise InvalidInputError("--parent-level must be above --level")
    try:
        pd.Timestamp.now(tz=options.tz)
    except Exception:  # noqa: BLE001
        raise InvalidInputError(f"unknown time zone {options.tz!r}") from None
    # ``shown`` carries the name reports and messages use; the bytes are read from ``path``.
    shown = path.with_name(options.file_name) if options.file_name else path
    if options.source_name and len(options.source_name) > SOURCE_NAME_CHARS:
        raise InvalidInputError(f"source name longer than {SOURCE_NAME_CHARS} characters")
    if options.version_name and len(options.version_name) > KEY_CHARS:
        raise InvalidInputError(f"version name longer than {KEY_CHARS} characters")
    # A name taken from the file (up to 255 characters) is cut to fit the key column.
    source_name = options.source_name or shown.name.split(".")[0][:SOURCE_NAME_CHARS] or "file"

    step("read", 0, None)
    lon_src = next((s for s, o in options.field_map.items() if o == "lon"), None)
    lat_src = next((s for s, o in options.field_map.items() if o == "lat"), None)
    frame = read_source(
        path,
        crs=SourceCrs.parse(options.crs),
        layer=options.layer,
        lon_column=lon_src,
        lat_column=lat_src,
        name=shown.name,
        limits=ReadLimits(
            max_features=options.max_features,
            max_uncompressed_bytes=options.max_uncompressed_bytes,
            max_compression_ratio=options.max_compression_ratio,
        ),
        points_only_ok=kind not in ("boundaries", "roads"),
    )
    if len(frame) > options.max_features:
        raise LimitExceededError(
            f"{shown.name} has {len(frame):,} features; at most {options.max_features:,} "
            "per import (split the file)"
        )
    frame = _apply_mapping(frame, options, kind)
    merged = 0
    if kind == "boundaries" and options.dissolve:
        frame, merged = _dissolve_by_code(frame)
    step("read", len(frame), len(frame))

    with engine.begin() as conn:
        lift_statement_timeout(conn)
        checked = _check(conn, kind, frame, options, source_name)
        step("validate", len(frame), len(frame))
        if kind == "boundaries":
            report = _import_boundaries(conn, frame, checked, options, shown, step)
        elif kind == "roads":
            report = _import_roads(conn, frame, checked, shown, step)
        else:
            report = _import_points(conn, kind, frame, checked, shown, step, scope)
        report.ignored_columns = checked.ignored_columns
        report.merged_parts = merged
        conn.execute(
            text(
                "INSERT INTO audit_log (who, action, entity, entity_id, diff) VALUES "
                "(:who, 'import', :entity, :eid, CAST(:diff AS jsonb))"
            ),
            {
                "who": actor,
                "entity": kind.replace("-", "_"),
                "eid": str(report.version_id) if report.version_id else None,
                "diff": json.dumps({k: v for k, v in report.__dict__.items() if k != "rejects"}),
            },
        )
    _write_rejects(frame, report, options, shown)
    if kind == "roads":
        forget_graphs()  # this process routes on the new network at once; others within 30 s
    return report


def _dissolve_by_code(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """Union features that share a code into the first of them (rows keep their numbers)."""
    if "code" not in frame:
        return frame, 0
    codes = frame["code"].fillna("").astype(str).str.strip()
    repeated = codes[(codes != "") & codes.duplicated(keep=False)]
    drop: list[int] = []
    geoms = frame.geometry.to_numpy().copy()
    for _, index in repeated.groupby(repeated).groups.items():
        parts = shapely.make_valid(geoms[list(index)])
        geoms[index[0]] = shapely.union_all(parts)
        drop.extend(index[1:])
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return frame.drop(index=drop), len(drop)


def _check(
    conn: Connection, kind: str, frame: gpd.GeoDataFrame, options: ImportOptions, source_name: str
) -> Checked:
    kwargs: dict[str, Any] = {
        "tz": options.tz,
        "date_format": options.date_format,
        "source_name": source_name,
    }
    if kind == "incidents":
        categories: dict[str, int] = dict(
            conn.execute(text("SELECT code, default_priority FROM categories")).all()
        )
        if options.category_map is not None:
            unknown = sorted(set(options.category_map.values()) - set(categories))
            if unknown:
                raise ImportFileError(
                    "the category map names categories that do not exist: " + ", ".join(unknown)
                )
        kwargs.update(
            categories=categories, category_map=options.category_map, default_status=options.status
        )
    kwargs["max_vertices"] = options.max_vertices
    try:
        checked = CHECKS[kind](frame, **kwargs)
    except ValueError as exc:  # e.g. a bad --date-format
        raise ImportFileError(str(exc)) from None
    _reject_long_keys(checked)
    return checked


def _reject_long_keys(checked: Checked) -> None:
    """Reject rows whose stable key would not fit its column (a row error, not a 500)."""
    rows = checked.accepted
    for column in ("external_ref", "idempotency_key"):
        if column not in rows:
            continue
        long = rows[column].fillna("").astype(str).str.len().to_numpy() > KEY_CHARS
        if long.any():
            reason = f"id too long (source name, ':' and id over {KEY_CHARS} characters)"
            _reject(checked, rows.row.to_numpy()[long], np.full(long.sum(), reason, dtype=object))
            rows = rows[~long].reset_index(drop=True)
    checked.accepted = rows


def _reject(checked: Checked, rows: np.ndarray, reasons: np.ndarray) -> None:
    extra = pd.DataFrame({"row": rows, "reason": reasons})
    checked.rejects = pd.concat([checked.rejects, extra], ignore_index=True)


def _import_points(
    conn: Connection,
    kind: str,
    frame: gpd.GeoDataFrame,
    checked: Checked,
    path: Path,
    step: Progress,
    scope: Scope | None = None,
) -> ImportReport:
    rows = checked.accepted
    at = rows["reported_at"].to_numpy() if kind == "incidents" else None
    grid, why = assign_grids(conn, rows.lon.to_numpy(), rows.lat.to_numpy(), at)
    step("assign", len(rows), len(rows))
    miss = grid == NO_GRID
    if scope is not None and not scope.unrestricted:
        outside = ~miss & ~np.isin(grid, np.fromiter(scope.grid_ids or (), dtype=np.int64))
        why[outside] = f"outside your area ({scope.principal.area_code})"
        miss = miss | outside
    _reject(checked, rows.row.to_numpy()[miss], why[miss])
    rows = rows[~miss].reset_index(drop=True)
    grid = grid[~miss]
    if scope is not None and not scope.unrestricted and kind in _KEYED_BY_AREA:
        # A row inside the area may still name, by its stable key, an object of another area.
        foreign, foreign_why = _foreign_keys(conn, kind, rows, scope)
        _reject(checked, rows.row.to_numpy()[foreign], foreign_why[foreign])
        rows = rows[~foreign].reset_index(drop=True)
        grid = grid[~foreign]
    location = point_ewkb_hex(rows.lon.to_numpy(), rows.lat.to_numpy())
    h3 = cells_for_points(rows.lon.to_numpy(), rows.lat.to_numpy())
    writers: dict[str, Callable[..., int]] = {
        "incidents": _write_incidents,
        "households": _write_households,
        "rental-units": _write_rental_units,
        "responders": partial(_write_responders, scope=scope),
    }
    writer = writers[kind]
    inserted = writer(conn, rows, location, h3, grid, lambda n: step("write", n, len(rows)))
    return _report(kind, path, frame, checked, accepted=len(rows), inserted=inserted)


# Kinds whose stable key names an object that belongs to an area: (table, key column,
# column of the owning grid, what a reject calls the object).
_KEYED_BY_AREA: dict[str, tuple[str, str, str, str]] = {
    "responders": ("responders", "callsign", "home_grid_id", "responder"),
    "households": ("households", "external_ref", "grid_id", "household"),
    "rental-units": ("rental_units", "external_ref", "grid_id", "rental unit"),
}


def _foreign_keys(
    conn: Connection, kind: str, rows: pd.DataFrame, scope: Scope
) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose stable key already names an object the area-bound importer may not change.

    Rows are otherwise checked by where they stand, but a key identifies an existing object
    wherever *it* is: re-importing another area's callsign (or household or rental-unit id)
    at a point inside one's own area would reach that object. It belongs to the area of its
    grid (a responder: its home grid, the rule of ``Scope.commands_responder`` that dispatch
    and ``PATCH /responders`` use); an object with no grid (the city-wide fire, medical and
    patrol units) only users bound to no area may change. Households and rental units are
    never updated by an import (an existing key is left as it is), but such a row is still
    refused rather than counted as "already present", so the importer learns that their row
    was not written.

    Returns a mask of the rows to reject and the reason of each.
    """
    table, key, grid_column, what = _KEYED_BY_AREA[kind]
    keys = rows[key].dropna()
    if keys.empty:
        return np.zeros(len(rows), dtype=bool), np.full(len(rows), None, dtype=object)
    # Identifiers from a fixed table above, never from the request; the keys are bound.
    existing = pd.DataFrame(
        conn.execute(
            text(f"SELECT id, {key}, {grid_column} FROM {table} WHERE {key} = ANY(:k)"),
            {"k": keys.astype(str).unique().tolist()},
        ).all(),
        columns=["id", "key", "grid"],
    )
    if kind == "responders":
        # A city's units are few: ask the one rule that dispatch and PATCH ask.
        allowed = [
            scope.commands_responder(int(i), None if pd.isna(g) else int(g))
            for i, g in zip(existing.id, existing.grid, strict=True)
        ]
    else:
        allowed = existing.grid.isin(list(scope.grid_ids or ())).to_list()
    foreign = existing[~np.asarray(allowed, dtype=bool)]
    holder = np.where(foreign.grid.isna(), "a city-wide", "another area's")
    why = dict(zip(foreign.key, [f"{key} belongs to {h} {what}: " for h in holder], strict=True))
    mask = rows[key].isin(foreign.key).to_numpy()
    reasons = np.full(len(rows), None, dtype=object)
    reasons[mask] = [why[k] + repr(k) for k in rows[key][mask]]
    return mask, reasons


def _report(
    kind: str,
    path: Path,
    frame: pd.DataFrame,
    checked: Checked,
    *,
    accepted: int,
    inserted: int,
    version_id: int | None = None,
) -> ImportReport:
    rejects = checked.rejects.sort_values("row", kind="stable")
    return ImportReport(
        kind=kind,
        file=path.name,
        read=len(frame),
        accepted=accepted,
        inserted=inserted,
        already_present=accepted - inserted,
        rejected=len(rejects),
        rejected_by_reason=dict(Counter(_reason_class(r) for r in rejects.reason)),
        reject_file=None,
        ignored_columns=[],
        version_id=version_id,
        rejects=[{"row": int(r.row), "reason": r.reason} for r in rejects.itertuples()],
    )


def _reason_class(reason: str) -> str:
    """Group reasons for the summary: drop the quoted value and row references."""
    return re.split(r"[:;]| '", reason)[0]


def _stage(conn: Connection, table: str, frame: pd.DataFrame, chunk: Callable[[int], None]) -> str:
    staging = f"staging_{table}"
    conn.execute(
        text(f"CREATE TEMP TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    copy_frame(conn, staging, frame, progress=chunk)
    return staging


def _insert_new(
    conn: Connection, table: str, frame: pd.DataFrame, key: str, chunk: Callable[[int], None]
) -> int:
    """Stage ``frame`` and insert the rows whose ``key`` is not there yet; return how many."""
    staging = _stage(conn, table, frame, chunk)
    cols = ", ".join(frame.columns)
    return conn.execute(
        text(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
    ).rowcount


def _write_incidents(conn, rows, location, h3, grid, chunk) -> int:  # noqa: ANN001
    return _insert_new(
        conn,
        "incidents",
        pd.DataFrame(
            {
                "idempotency_key": rows.idempotency_key,
                "category": rows.category,
                "priority": rows.priority,
                "status": rows.status,
                "description": rows.description,
                "source": "import",
                "reported_at": rows.reported_at.array,
                "location": location,
                "h3": h3,
                "grid_id": grid,
            }
        ),
        "idempotency_key",
        chunk,
    )


def _write_households(conn, rows, location, h3, grid, chunk) -> int:  # noqa: ANN001
    return _insert_new(
        conn,
        "households",
        pd.DataFrame(
            {
                "location": location,
                "household_size": rows.household_size,
                "grid_id": grid,
                "h3": h3,
                "elderly_living_alone": rows.elderly_living_alone,
                "needs_assistance": rows.needs_assistance,
                "external_ref": rows.external_ref,
            }
        ),
        "external_ref",
        chunk,
    )


def _write_rental_units(conn, rows, location, h3, grid, chunk) -> int:  # noqa: ANN001
    return _insert_new(
        conn,
        "rental_units",
        pd.DataFrame(
            {
                "location": location,
                "unit_count": rows.unit_count,
                "occupants": rows.occupants,
                "registered_at": rows.registered_at.array,
                "status": rows.status,
                "landlord_ref": rows.landlord_ref,
                "grid_id": grid,
                "h3": h3,
                "external_ref": rows.external_ref,
            }
        ),
        "external_ref",
        chunk,
    )


def _write_responders(  # noqa: ANN001
    conn, rows, location, h3, grid, chunk, *, scope: Scope | None = None
) -> int:
    # A responder's home grid is where it stands when first imported; a re-import with the
    # same callsign updates kind, skills and position (it is the same unit). For an
    # area-bound importer ``_foreign_keys`` has already refused callsigns of other areas; the
    # update's own guard repeats that rule so a unit that another transaction creates or
    # moves out of the area in between is left alone too (then counted as already present).
    frame = pd.DataFrame(
        {
            "callsign": rows.callsign,
            "kind": rows.kind,
            "home_grid_id": grid,
            "status": rows.status,
            "position": location,
            "position_at": datetime.now(UTC).isoformat(),
            "skills": pg_array(rows.skills),
        }
    )
    staging = _stage(conn, "responders", frame, chunk)
    return conn.execute(
        text(
            f"INSERT INTO responders (callsign, kind, home_grid_id, status, position, position_at, "
            f"skills) SELECT callsign, kind, home_grid_id, status, position, position_at, skills "
            f"FROM {staging} ON CONFLICT (callsign) DO UPDATE SET kind = EXCLUDED.kind, "
            f"skills = EXCLUDED.skills, position = EXCLUDED.position, "
            f"position_at = EXCLUDED.position_at "
            f"WHERE (responders.kind, responders.skills, ST_AsBinary(responders.position)) "
            f"IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.skills, ST_AsBinary(EXCLUDED.position)) "
            f"AND (CAST(:grids AS integer[]) IS NULL "
            f"OR responders.home_grid_id = ANY(CAST(:grids AS integer[])) "
            f"OR responders.id = CAST(:own AS integer))"
        ),
        {
            "grids": None if scope is None or scope.unrestricted else sorted(scope.grid_ids or ()),
            "own": scope.principal.responder_id if scope is not None else None,
        },
    ).rowcount


# --- roads ---------------------------------------------------------------------------------


def _import_roads(
    conn: Connection, frame: gpd.GeoDataFrame, checked: Checked, path: Path, step: Progress
) -> ImportReport:
    """Upsert road segments by stable key; a changed speed, direction or shape updates the
    segment (and so the travel times)."""
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
    staging = _stage(conn, "road_segments", table, lambda n: step("write", n, len(rows)))
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
    return _report("roads", path, frame, checked, accepted=len(rows), inserted=changed)


# --- boundaries ----------------------------------------------------------------------------


def _existing_draft(conn: Connection, options: ImportOptions) -> int | None:
    """The draft named by ``--version`` (checked to be a draft), or None for a new one."""
    if options.version_id is not None:
        status = conn.execute(
            text("SELECT status FROM boundary_versions WHERE id = :v"), {"v": options.version_id}
        ).scalar_one_or_none()
        if status is None:
            raise NotFoundError(f"boundary version {options.version_id} does not exist")
        if status != "draft":
            raise ConflictError(
                f"boundary version {options.version_id} is {status}; only drafts take new areas"
            )
        return options.version_id
    return None


def _new_draft(conn: Connection, options: ImportOptions, path: Path) -> int:
    return conn.execute(
        text(
            "INSERT INTO boundary_versions (name, status, notes) "
            "VALUES (:name, 'draft', :notes) RETURNING id"
        ),
        {
            "name": options.version_name or path.stem[:KEY_CHARS],
            "notes": f"imported from {path.name}",
        },
    ).scalar_one()


def _import_boundaries(
    conn: Connection,
    frame: gpd.GeoDataFrame,
    checked: Checked,
    options: ImportOptions,
    path: Path,
    step: Progress,
) -> ImportReport:
    # A new draft is made only once some area will go into it: an import whose every row is
    # rejected writes no empty version.
    version_id = _existing_draft(conn, options)
    rows = checked.accepted
    existing = set(
        conn.execute(
            text("SELECT code FROM areas WHERE version_id = :v"), {"v": version_id}
        ).scalars()
        if version_id is not None
        else ()
    )
    taken = rows.code.isin(existing).to_numpy()
    _reject(
        checked,
        rows.row.to_numpy()[taken],
        np.array(
            [f"code {c!r} already exists in version {version_id}" for c in rows.code[taken]],
            dtype=object,
        ),
    )
    rows = rows[~taken].reset_index(drop=True)
    parent_id = np.full(len(rows), None, dtype=object)
    if options.parent_level is not None and len(rows):
        parent_id, why = _find_parents(conn, version_id, options.parent_level, rows)
        bad = np.array([w is not None for w in why], dtype=bool)
        _reject(checked, rows.row.to_numpy()[bad], np.asarray(why, dtype=object)[bad])
        rows, parent_id = rows[~bad].reset_index(drop=True), parent_id[~bad]
    if len(rows) == 0:
        return _report(
            "boundaries", path, frame, checked, accepted=0, inserted=0, version_id=version_id
        )
    if version_id is None:
        version_id = _new_draft(conn, options, path)
    staged = pd.DataFrame(
        {
            "version_id": version_id,
            "level": options.level,
            "code": rows.code,
            "name": rows.name,
            "parent_id": pd.array(list(parent_id), dtype="Int64"),
            "geom": ewkb_hex(rows.geometry.to_numpy()),
            "area_m2": 0.0,
        }
    )
    staging = _stage(conn, "areas", staged, lambda n: step("write", n, len(staged)))
    inserted = conn.execute(
        text(
            f"INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2) "
            f"SELECT version_id, level, code, name, parent_id, geom, "
            f"ST_Area(geom::geography) FROM {staging}"
        )
    ).rowcount
    return _report(
        "boundaries",
        path,
        frame,
        checked,
        accepted=len(rows),
        inserted=inserted,
        version_id=version_id,
    )


def _find_parents(
    conn: Connection, version_id: int | None, parent_level: str, rows: pd.DataFrame
) -> tuple[np.ndarray, list[str | None]]:
    """Parent of each row: by its parent_code column, else the parent holding most of it."""
    parents = (
        conn.execute(
            text(
                "SELECT id, code, ST_AsBinary(geom) FROM areas "
                "WHERE version_id = :v AND level = :lvl"
            ),
            {"v": version_id, "lvl": parent_level},
        ).all()
        if version_id is not None
        else []
    )
    if not parents:
        where = f"version {version_id}" if version_id is not None else "a new draft"
        raise ImportFileError(
            f"{where} has no {parent_level} areas to nest in; import the {parent_level} level first"
        )
    ids = np.array([p[0] for p in parents], dtype=object)
    by_code = {p[1]: p[0] for p in parents}
    result = np.full(len(rows), None, dtype=object)
    why: list[str | None] = [None] * len(rows)
    if rows.parent_code.notna().any():
        for i, code in enumerate(rows.parent_code):
            if code in by_code:
                result[i] = by_code[code]
            else:
                why[i] = f"unknown parent {parent_level} {code!r}"
        return result, why
    geoms = shapely.from_wkb([bytes(p[2]) for p in parents])
    tree = shapely.STRtree(geoms)
    child_idx, parent_idx = tree.query(rows.geometry.to_numpy(), predicate="intersects")
    # Overlap areas compared within one child: degrees² are fine for an argmax.
    overlap = shapely.area(
        shapely.intersection(rows.geometry.to_numpy()[child_idx], geoms[parent_idx])
    )
    best = pd.DataFrame({"c": child_idx, "p": parent_idx, "a": overlap})
    best = best[best.a > 0].sort_values(["c", "a"], ascending=[True, False])
    best = best.drop_duplicates("c")
    result[best.c.to_numpy()] = ids[best.p.to_numpy()]
    for i in range(len(rows)):
        if result[i] is None:
            why[i] = f"no {parent_level} area contains it"
    return result, why


def _writable(directory: Path) -> bool:
    # Root passes every access check, so also honour a directory that nobody may write to
    # (a shared, read-only data folder).
    return os.access(directory, os.W_OK) and bool(directory.stat().st_mode & 0o222)


def _write_rejects(
    frame: gpd.GeoDataFrame, report: ImportReport, options: ImportOptions, path: Path
) -> None:
    if not report.rejects:
        return
    name = path.name + ".rejects.csv"
    target = options.rejects_path or (
        path.with_name(name) if _writable(path.parent) else Path.cwd() / name
    )
    rej = pd.DataFrame(report.rejects)
    original = pd.DataFrame(frame.drop(columns=frame.geometry.name)).loc[rej.row - 1]
    original = original.reset_index(drop=True).astype(str)
    pd.concat([rej, original.add_prefix("source_")], axis=1).to_csv(target, index=False)
    report.reject_file = str(target)

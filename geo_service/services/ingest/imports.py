"""Import files from other systems: read, map, validate, assign grid and H3, bulk write.

This module is the ingest room's entry point (``import_file``, used by the API, the CLI and
the benchmarks); the work is done by its neighbours: ``options`` (what is asked),
``points`` / ``writers`` / ``roads`` / ``boundaries`` (one writer per kind), ``staging``
(COPY into temporary tables) and ``report`` (what was taken and refused). Reading files
is ``geo_service.ingest`` (pure: no database).

One import is one transaction: rows are COPYed into a temporary staging table and moved into
place by set-based SQL, so a failure half way leaves nothing half written, and stable keys
(source ids, or a hash of the row when there are none) make re-running a file add nothing.
Rejected rows go to ``<input>.rejects.csv`` with their row number and reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from geo_service.db.bulk import lift_statement_timeout
from geo_service.errors import InvalidInputError, LimitExceededError
from geo_service.ingest.parsing import as_text
from geo_service.ingest.readers import ImportFileError, SourceCrs, read_source
from geo_service.ingest.uploads import ReadLimits
from geo_service.ingest.validate import CHECKS, KIND_FIELDS, Checked
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.dispatch.routing import forget_graphs
from geo_service.services.ingest.boundaries import import_boundaries
from geo_service.services.ingest.options import (
    KEY_CHARS,
    KINDS,
    SOURCE_NAME_CHARS,
    ImportOptions,
    Progress,
    read_mapping_csv,
)
from geo_service.services.ingest.points import import_points
from geo_service.services.ingest.report import ImportReport, reject
from geo_service.services.ingest.roads import import_roads
from geo_service.vocabulary import AREA_LEVELS

# The room's public face: callers import these from here.
__all__ = ["KINDS", "ImportOptions", "ImportReport", "import_file", "read_mapping_csv"]


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
        encoding=options.encoding,
        swap_xy=options.swap_xy,
    )
    encoding = frame.attrs.get("encoding")
    dimensions_dropped = list(frame.attrs.get("dimensions_dropped", []))  # "Z", "M"
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
            report = import_boundaries(conn, frame, checked, options, shown, step)
        elif kind == "roads":
            report = import_roads(conn, frame, checked, shown, step)
        else:
            report = import_points(conn, kind, frame, checked, shown, step, scope)
        report.ignored_columns = checked.ignored_columns
        report.merged_parts = merged
        report.encoding = encoding
        report.dimensions_dropped = dimensions_dropped
        record_audit(
            conn,
            who=actor,
            action="import",
            entity=kind.replace("-", "_"),
            entity_id=str(report.version_id) if report.version_id else None,
            diff={k: v for k, v in report.__dict__.items() if k != "rejects"},
        )
    _write_rejects(frame, report, options, shown)
    if kind == "roads":
        forget_graphs()  # this process routes on the new network at once; others within 30 s
    return report


def _dissolve_by_code(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, int]:
    """Union features that share a code into the first of them (rows keep their numbers)."""
    if "code" not in frame:
        return frame, 0
    codes = as_text(frame["code"]).str.strip()
    repeated = codes[(codes != "") & codes.duplicated(keep=False)]
    drop: list[int] = []
    geoms = frame.geometry.to_numpy().copy()
    for _, index in repeated.groupby(repeated).groups.items():
        parts = shapely.make_valid(geoms[list(index)])
        geoms[index[0]] = shapely.union_all(parts)
        drop.extend(index[1:])
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return frame.drop(index=drop), len(drop)


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
        long = as_text(rows[column]).str.len().to_numpy() > KEY_CHARS
        if long.any():
            reason = f"id too long (source name, ':' and id over {KEY_CHARS} characters)"
            reject(checked, rows.row.to_numpy()[long], np.full(long.sum(), reason, dtype=object))
            rows = rows[~long].reset_index(drop=True)
    checked.accepted = rows


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

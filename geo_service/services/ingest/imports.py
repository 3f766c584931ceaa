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

import dataclasses
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
from geo_service.i18n import format_message, gettext
from geo_service.ingest.parsing import (
    AMBIGUOUS_TIME,
    TIME_PARTS,
    as_key_text,
    as_text,
    combine_time_parts,
)
from geo_service.ingest.readers import PART_ERROR, ImportFileError, SourceCrs, read_source
from geo_service.ingest.rows import match_truncated_columns
from geo_service.ingest.uploads import ReadLimits
from geo_service.ingest.validate import CHECKS, KIND_FIELDS, Checked
from geo_service.instants import deployment_zone
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
from geo_service.services.ingest.report import (
    ImportReport,
    RejectedShareExceededError,
    reject,
    rejects_csv_text,
    rejects_table,
)
from geo_service.services.ingest.roads import import_roads
from geo_service.vocabulary import AREA_LEVELS

# The room's public face: callers import these from here.
__all__ = [
    "KINDS",
    "ImportOptions",
    "ImportReport",
    "RejectedShareExceededError",
    "import_file",
    "read_mapping_csv",
]


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
        raise InvalidInputError(
            format_message("kind must be one of {values}", values=", ".join(KINDS))
        )
    if kind == "boundaries" and options.level not in AREA_LEVELS:
        raise InvalidInputError(
            format_message(
                "boundaries need {option}, one of {values}",
                option=options.option_name("level"),
                values=", ".join(AREA_LEVELS),
            )
        )
    if options.parent_level is not None:
        if options.parent_level not in AREA_LEVELS:
            raise InvalidInputError(
                format_message(
                    "{option} must be one of {values}",
                    option=options.option_name("parent_level"),
                    values=", ".join(AREA_LEVELS),
                )
            )
        if AREA_LEVELS.index(options.parent_level) >= AREA_LEVELS.index(options.level or ""):
            raise InvalidInputError(
                format_message(
                    "{parent_level} must be above {level}",
                    parent_level=options.option_name("parent_level"),
                    level=options.option_name("level"),
                )
            )
    if options.tz is None:  # naive times are local times of the deployment (issue 19)
        options = dataclasses.replace(options, tz=deployment_zone().key)
    try:
        pd.Timestamp.now(tz=options.tz)
    except Exception:  # noqa: BLE001
        raise InvalidInputError(format_message("unknown time zone {tz!r}", tz=options.tz)) from None
    # ``shown`` carries the name reports and messages use; the bytes are read from ``path``.
    shown = path.with_name(options.file_name) if options.file_name else path
    if options.source_name and len(options.source_name) > SOURCE_NAME_CHARS:
        raise InvalidInputError(
            format_message(
                "source name longer than {source_name_chars} characters",
                source_name_chars=SOURCE_NAME_CHARS,
            )
        )
    if options.version_name and len(options.version_name) > KEY_CHARS:
        raise InvalidInputError(
            format_message("version name longer than {key_chars} characters", key_chars=KEY_CHARS)
        )
    # A name taken from the file (up to 255 characters) is cut to fit the key column.
    source_name = options.source_name or shown.name.split(".")[0][:SOURCE_NAME_CHARS] or "file"

    check_rejects_target(options, shown)  # before anything is written, not after the commit
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
        accept_approximate_transform=options.accept_approximate_transform,
    )
    encoding = frame.attrs.get("encoding")
    dimensions_dropped = list(frame.attrs.get("dimensions_dropped", []))  # "Z", "M"
    if len(frame) > options.max_features:
        raise LimitExceededError(
            format_message(
                "{name} has {n:,} features; at most {max_features:,} per import (split the file)",
                name=shown.name,
                n=len(frame),
                max_features=options.max_features,
            )
        )
    frame = _apply_mapping(frame, options, kind)
    frame = match_truncated_columns(frame, kind)  # DBF names cut to 10 characters
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
            report = import_points(
                conn,
                kind,
                frame,
                checked,
                shown,
                step,
                scope,
                edge_tolerance_m=options.edge_tolerance_m,
            )
        report.ignored_columns = checked.ignored_columns
        report.merged_parts = merged
        report.encoding = encoding
        report.dimensions_dropped = dimensions_dropped
        report.assumptions = {**frame.attrs.get("assumptions", {}), **report.assumptions}
        _note_options_assumed(report, options, kind)
        if report.rejected_share > options.max_rejected_share:
            # Raised inside the transaction: it rolls back, so nothing of the file is written.
            _write_rejects(frame, report, options, shown)
            raise RejectedShareExceededError(
                report, options.max_rejected_share, options.option_name("max_rejected_share")
            )
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
    """Union features that share a code (and parent code, when given) into the first of them
    (rows keep their numbers): G01 of community C01 never merges with G01 of C02."""
    if "code" not in frame:
        return frame, 0
    codes = as_key_text(frame["code"])  # 420102001.0 is the code 420102001
    if "parent_code" in frame:
        parents = as_key_text(frame["parent_code"])
        codes = (parents + "/" + codes).where((parents != "") & (codes != ""), codes)
    repeated = codes[(codes != "") & codes.duplicated(keep=False)]
    drop: list[int] = []
    geoms = frame.geometry.to_numpy().copy()
    for _, index in repeated.groupby(repeated).groups.items():
        parts = shapely.make_valid(geoms[list(index)])
        geoms[index[0]] = shapely.union_all(parts)
        drop.extend(index[1:])
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return frame.drop(index=drop), len(drop)


def _not_a_field(src: str, ours: str, kind: str) -> ImportFileError:
    """The refusal of ``--map SRC=FIELD`` naming a field ``kind`` does not have."""
    return ImportFileError(
        format_message(
            "--map {src}={ours}: {ours!r} is not a field of {kind} ({values})",
            src=src,
            ours=ours,
            kind=kind,
            values=", ".join(sorted(KIND_FIELDS[kind])),
        )
    )


def _apply_mapping(frame: gpd.GeoDataFrame, options: ImportOptions, kind: str) -> gpd.GeoDataFrame:
    fields = set(KIND_FIELDS[kind]) | {"lon", "lat"}
    renames = {}
    combined: dict[str, pd.Series] = {}
    for src, ours in options.field_map.items():
        if ours in ("lon", "lat"):
            continue  # used when reading
        if src not in frame.columns and "+" in src:
            if ours not in fields:
                raise _not_a_field(src, ours, kind)
            combined[ours] = _combine_columns(frame, src, ours)
            continue
        if src not in frame.columns:
            raise ImportFileError(
                format_message(
                    "--map {src}={ours}: no column {column!r} in the file; columns are {columns}",
                    src=src,
                    ours=ours,
                    column=src,
                    columns=", ".join(map(str, frame.columns)),
                )
            )
        if ours not in fields:
            raise _not_a_field(src, ours, kind)
        renames[src] = ours
    # A source column already named like one of our fields must not shadow the mapped one.
    clash = [c for c in frame.columns if c in renames.values() and c not in renames]
    clash += [c for c in frame.columns if c in combined and c not in clash]
    frame = frame.drop(columns=clash).rename(columns=renames)
    for ours, values in combined.items():
        frame[ours] = values
    overridden = []
    for ours, value in options.constants.items():
        if ours not in fields:
            raise ImportFileError(
                format_message(
                    "--set {ours}=...: {ours!r} is not a field of {kind}", ours=ours, kind=kind
                )
            )
        if ours in frame.columns:  # the file has it too: --set wins, and the summary says so
            overridden.append(f"{ours}={value} (the file's own {ours!r} column not used)")
            frame = frame.rename(columns={ours: f"{ours} (file)"})
        frame[ours] = value
    if overridden:
        frame.attrs.setdefault("assumptions", {})["set_over_file_columns"] = overridden
    return frame


def _combine_columns(frame: gpd.GeoDataFrame, src: str, ours: str) -> pd.Series:
    """One field from several columns (``--map "A+B=FIELD"``).

    Columns all named year, month, day[, hour, minute, second] (any case) build the time
    ``YYYY-MM-DD HH:MM:SS`` from whole numbers (``--date-format`` then does not apply to
    it); any other columns are joined with a space, and the joined text is parsed as usual.
    Raises ImportFileError naming a column the file does not have.
    """
    parts = [part.strip() for part in src.split("+")]
    for part in parts:
        if part not in frame.columns:
            raise ImportFileError(
                format_message(
                    "--map {src}={ours}: no column {column!r} in the file; columns are {columns}",
                    src=src,
                    ours=ours,
                    column=part,
                    columns=", ".join(map(str, frame.columns)),
                )
            )
    names = [part.lower() for part in parts]
    if set(names) <= set(TIME_PARTS) and len(set(names)) == len(names):
        try:
            built = combine_time_parts({n: frame[p] for n, p in zip(names, parts, strict=True)})
        except ValueError as exc:
            raise ImportFileError(
                format_message("--map {src}={ours}: {exc}", src=src, ours=ours, exc=exc)
            ) from None
        frame.attrs.setdefault("built_from_parts", []).append(ours)
        frame.attrs.setdefault("assumptions", {})[ours] = "built from " + ", ".join(parts)
        return built
    texts = [as_text(frame[part]).str.strip() for part in parts]
    joined = texts[0]
    for text_ in texts[1:]:
        joined = joined + " " + text_
    # A row with some parts blank and others given is incomplete: a date with a blank time
    # is not that day's midnight. The row is rejected with the blank column named.
    blanks = pd.concat([t.isna() | (t == "") for t in texts], axis=1)
    partial = blanks.any(axis=1) & ~blanks.all(axis=1)
    if partial.any():
        why = pd.Series(None, index=frame.index, dtype=object)
        template = gettext("{field} is incomplete: column {columns} is blank (--map {src}={ours})")
        why[partial] = [
            template.format(
                field=ours,
                columns=", ".join(repr(p) for p, blank in zip(parts, row, strict=True) if blank),
                src=src,
                ours=ours,
            )
            for row in blanks[partial].itertuples(index=False)
        ]
        earlier = frame[PART_ERROR] if PART_ERROR in frame else None
        frame[PART_ERROR] = why if earlier is None else earlier.fillna(why)
    # A row whose parts are all blank is blank (a missing value), not " ".
    return joined.str.strip()


def _check(
    conn: Connection, kind: str, frame: gpd.GeoDataFrame, options: ImportOptions, source_name: str
) -> Checked:
    if options.ambiguous_time not in AMBIGUOUS_TIME:
        raise InvalidInputError(
            format_message(
                "--ambiguous-time must be one of {values}; got {ambiguous_time!r}",
                values=", ".join(AMBIGUOUS_TIME),
                ambiguous_time=options.ambiguous_time,
            )
        )
    # A time built from year/month/day... parts is ISO text: the client's formats are not its.
    from_parts = bool(frame.attrs.get("built_from_parts"))
    kwargs: dict[str, Any] = {
        "tz": options.tz,
        "date_format": None if from_parts else list(options.date_formats),
        "ambiguous_time": options.ambiguous_time,
        "source_name": source_name,
    }
    if kind in ("incidents", "rental-units"):
        assumed = frame.attrs.setdefault("assumptions", {})
        assumed["tz"] = options.tz
        assumed["ambiguous_time"] = options.ambiguous_time
        if options.date_formats and not from_parts:
            assumed["date_formats"] = list(options.date_formats)
    if kind == "incidents":
        categories: dict[str, int] = dict(
            conn.execute(text("SELECT code, default_priority FROM categories")).all()
        )
        if options.category_map is not None:
            unknown = sorted(set(options.category_map.values()) - set(categories))
            if unknown:
                raise ImportFileError(
                    format_message(
                        "the category map names categories that do not exist: {codes}",
                        codes=", ".join(unknown),
                    )
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


# Kinds whose rows carry times that may be naive (read in ``options.tz``).
TIMED_KINDS = ("incidents", "rental-units")


def _note_options_assumed(report: ImportReport, options: ImportOptions, kind: str) -> None:
    """Say in the report the time zone naive times were read in and the layer read, unless
    a reader already said more precisely."""
    if kind in TIMED_KINDS:
        report.assumptions.setdefault("tz", options.tz)
    if options.layer is not None:
        report.assumptions.setdefault("layer", options.layer)


def _file_column_names(
    frame: gpd.GeoDataFrame, options: ImportOptions
) -> tuple[dict[str, str], list[str]]:
    """The file's own name of each column the import renamed (our name -> the file's: --map,
    DBF names cut to 10 characters, coordinate columns read as lon/lat), and the columns the
    import made rather than read (--set constants, fields joined from several columns)."""
    names: dict[str, str] = {}
    made_here = list(options.constants)
    for src, ours in options.field_map.items():
        if ours in ("lon", "lat"):
            continue
        parts = [part.strip() for part in src.split("+")]
        if len(parts) > 1 and all(part in frame.columns for part in parts):
            made_here.append(ours)  # "A+B=FIELD": A and B are shown as they are
        else:
            names[ours] = src
    for said in frame.attrs.get("assumptions", {}).get("truncated_columns", []):
        cut, _, full = str(said).partition(" -> ")  # as match_truncated_columns says it
        if full:
            names[full] = cut
    names.update(frame.attrs.get("coordinate_columns", {}))
    return names, made_here


def _rejects_target(options: ImportOptions, path: Path) -> Path:
    """Where the reject file goes: ``--rejects``, else beside the input, else the working
    directory."""
    name = path.name + ".rejects.csv"
    return options.rejects_path or (
        path.with_name(name) if _writable(path.parent) else Path.cwd() / name
    )


def check_rejects_target(options: ImportOptions, path: Path) -> None:
    """Refuse, before anything is read or written, a reject file that cannot be written or
    that is the input itself (it would overwrite the file being imported).

    Raises
    ------
    ImportFileError
        The target is the input, a directory, or in a directory that does not exist or is
        not writable.
    """
    target = _rejects_target(options, path)
    if target.resolve() == path.resolve():
        raise ImportFileError(
            format_message(
                "--rejects {target} is the file being imported; choose another", target=target
            )
        )
    if target.is_dir():
        raise ImportFileError(
            format_message("--rejects {target} is a directory; give a file name", target=target)
        )
    if not target.parent.is_dir() or not _writable(target.parent):
        raise ImportFileError(
            format_message(
                "cannot write the reject file {target}: no such writable directory", target=target
            )
        )


def _write_rejects(
    frame: gpd.GeoDataFrame, report: ImportReport, options: ImportOptions, path: Path
) -> None:
    """Write the rejected rows to ``<input>.rejects.csv`` (or ``options.rejects_path``) and
    keep the same text in ``report.rejects_csv``.

    The file is UTF-8 with a BOM: Excel on a Windows set to a non-UTF-8 code page (Chinese:
    GBK) reads a CSV without one in that code page and shows the names as mojibake. The
    columns are those of ``rejects_table`` (row: 1-based, a table's header not counted).
    """
    if not report.rejects:
        return
    target = _rejects_target(options, path)
    source_names, made_here = _file_column_names(frame, options)
    shown = frame.drop(columns=[c for c in made_here if c in frame.columns])
    text_csv = rejects_csv_text(rejects_table(shown, report, source_names))
    target.write_text(text_csv, encoding="utf-8-sig", newline="")
    report.rejects_csv = text_csv
    report.reject_file = str(target)

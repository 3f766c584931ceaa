"""Import boundaries: one level of areas into a draft boundary version, nested in its parents.

A new draft is made only once some area will go into it; ``--version`` names an existing
draft instead. Parents are found by a ``parent_code`` column, else by the parent that holds
most of the area.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from geo_service.db.bulk import ewkb_hex
from geo_service.errors import ConflictError, NotFoundError
from geo_service.ingest.readers import ImportFileError
from geo_service.ingest.validate import Checked
from geo_service.services.ingest.options import KEY_CHARS, ImportOptions, Progress
from geo_service.services.ingest.report import ImportReport, build_report, reject
from geo_service.services.ingest.staging import stage


def existing_draft(conn: Connection, options: ImportOptions) -> int | None:
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


def new_draft(conn: Connection, options: ImportOptions, path: Path) -> int:
    """Create the draft version an import writes into; return its id."""
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


def import_boundaries(
    conn: Connection,
    frame: gpd.GeoDataFrame,
    checked: Checked,
    options: ImportOptions,
    path: Path,
    step: Progress,
) -> ImportReport:
    """Write the accepted areas of one level into a draft (existing or new)."""
    # A new draft is made only once some area will go into it: an import whose every row is
    # rejected writes no empty version.
    version_id = existing_draft(conn, options)
    rows = checked.accepted
    existing = set(
        conn.execute(
            text("SELECT code FROM areas WHERE version_id = :v"), {"v": version_id}
        ).scalars()
        if version_id is not None
        else ()
    )
    taken = rows.code.isin(existing).to_numpy()
    reject(
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
        parent_id, why = find_parents(conn, version_id, options.parent_level, rows)
        bad = np.array([w is not None for w in why], dtype=bool)
        reject(checked, rows.row.to_numpy()[bad], np.asarray(why, dtype=object)[bad])
        rows, parent_id = rows[~bad].reset_index(drop=True), parent_id[~bad]
    if len(rows) == 0:
        return build_report(
            "boundaries", path, frame, checked, accepted=0, inserted=0, version_id=version_id
        )
    if version_id is None:
        version_id = new_draft(conn, options, path)
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
    staging = stage(conn, "areas", staged, lambda n: step("write", n, len(staged)))
    inserted = conn.execute(
        text(
            f"INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2) "
            f"SELECT version_id, level, code, name, parent_id, geom, "
            f"ST_Area(geom::geography) FROM {staging}"
        )
    ).rowcount
    return build_report(
        "boundaries",
        path,
        frame,
        checked,
        accepted=len(rows),
        inserted=inserted,
        version_id=version_id,
    )


def find_parents(
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

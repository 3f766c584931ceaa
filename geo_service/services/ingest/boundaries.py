"""Import boundaries: one level of areas into a draft boundary version, nested in its parents.

A new draft is made only once some area will go into it; ``--version`` names an existing
draft instead. Parents are found by a ``parent_code`` column, else by the parent that holds
most of the area. Codes that are unique only within their parent are stored as
``<parent code>/<local code>`` with the local one in ``local_code``.
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
from geo_service.i18n import format_message
from geo_service.ingest.readers import ImportFileError
from geo_service.ingest.validate import Checked
from geo_service.services.ingest.options import KEY_CHARS, ImportOptions, Progress
from geo_service.services.ingest.report import ImportReport, build_report, reject
from geo_service.services.ingest.staging import stage

CODE_CHARS = 64  # areas.code


def existing_draft(conn: Connection, options: ImportOptions) -> int | None:
    """The draft named by ``--version`` (checked to be a draft), or None for a new one."""
    if options.version_id is not None:
        status = conn.execute(
            text("SELECT status FROM boundary_versions WHERE id = :v"), {"v": options.version_id}
        ).scalar_one_or_none()
        if status is None:
            raise NotFoundError(
                format_message(
                    "boundary version {version_id} does not exist", version_id=options.version_id
                )
            )
        if status != "draft":
            raise ConflictError(
                format_message(
                    "boundary version {version_id} is {status}; only drafts take new areas",
                    version_id=options.version_id,
                    status=status,
                )
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
    """Write the accepted areas of one level into a draft (existing or new).

    Codes unique only within their parent (every community numbering its grids G01, G02...)
    are stored as a full code ``<parent's code>/<local code>`` (``C01/G01``), the local one
    kept in ``local_code``; see ``scoped_codes``. Raises ImportFileError when parents are
    needed and the version has none of ``--parent-level``.
    """
    # A new draft is made only once some area will go into it: an import whose every row is
    # rejected writes no empty version.
    version_id = existing_draft(conn, options)
    rows = checked.accepted
    parent_id = np.full(len(rows), None, dtype=object)
    parent_code = np.full(len(rows), None, dtype=object)
    if options.parent_level is not None and len(rows):
        parent_id, parent_code, why = find_parents(conn, version_id, options.parent_level, rows)
        bad = np.array([w is not None for w in why], dtype=bool)
        reject(checked, rows.row.to_numpy()[bad], np.asarray(why, dtype=object)[bad])
        rows = rows[~bad].reset_index(drop=True)
        parent_id, parent_code = parent_id[~bad], parent_code[~bad]
    local = rows.code.to_numpy(dtype=object)
    code = local
    said: dict[str, object] = {}
    if scoped_codes(conn, version_id, options.level, rows, parent_id):
        said["codes"] = "unique within their parent: stored as <parent code>/<code>"
        if version_id is not None:
            recoded = scope_stored_codes(conn, version_id, options.level)
            if recoded:
                said["codes_recoded_in_draft"] = recoded
        code = np.array([f"{p}/{c}" for p, c in zip(parent_code, local, strict=True)], dtype=object)
        long = np.array([len(c) > CODE_CHARS for c in code], dtype=bool)
        reject(
            checked,
            rows.row.to_numpy()[long],
            np.array(
                [f"code {c!r} with its parent's longer than {CODE_CHARS} characters" for c in code]
            )[long],
        )
        rows, parent_id, local, code = rows[~long], parent_id[~long], local[~long], code[~long]
    # Without parents to tell them apart, codes the file repeats under different parent
    # codes would be one code twice: the repeats are refused with the way out.
    again = pd.Series(code, dtype=object).duplicated().to_numpy()
    reject(
        checked,
        rows.row.to_numpy()[again],
        np.array(
            [f"code {c!r} repeats under another parent: give --parent-level" for c in code[again]],
            dtype=object,
        ),
    )
    rows, parent_id, local, code = rows[~again], parent_id[~again], local[~again], code[~again]
    existing = set(
        conn.execute(
            text("SELECT code FROM areas WHERE version_id = :v"), {"v": version_id}
        ).scalars()
        if version_id is not None
        else ()
    )
    taken = np.array([c in existing for c in code], dtype=bool)
    reject(
        checked,
        rows.row.to_numpy()[taken],
        np.array(
            [f"code {c!r} already exists in version {version_id}" for c in code[taken]],
            dtype=object,
        ),
    )
    rows, parent_id = rows[~taken].reset_index(drop=True), parent_id[~taken]
    local, code = local[~taken], code[~taken]
    if len(rows) == 0:
        report = build_report(
            "boundaries", path, frame, checked, accepted=0, inserted=0, version_id=version_id
        )
        report.assumptions.update(said)
        return report
    if version_id is None:
        version_id = new_draft(conn, options, path)
    staged = pd.DataFrame(
        {
            "version_id": version_id,
            "level": options.level,
            "code": code,
            "local_code": np.where(code == local, None, local),
            "name": rows.name,
            "names": rows.names if "names" in rows else "{}",
            "parent_id": pd.array(list(parent_id), dtype="Int64"),
            "geom": ewkb_hex(rows.geometry.to_numpy()),
            "area_m2": 0.0,
        }
    )
    staging = stage(conn, "areas", staged, lambda n: step("write", n, len(staged)))
    inserted = conn.execute(
        text(
            f"INSERT INTO areas (version_id, level, code, local_code, name, names, parent_id, "
            f"geom, area_m2) SELECT version_id, level, code, local_code, name, "
            f"CAST(names AS jsonb), parent_id, geom, ST_Area(geom::geography) FROM {staging}"
        )
    ).rowcount
    # fresh statistics for what reads the new rows next (proposals, re-homing), as the
    # table's owner (migration 0031): without them a join of the new grids ran 38.6 s
    conn.execute(text("SELECT analyze_areas()"))
    report = build_report(
        "boundaries",
        path,
        frame,
        checked,
        accepted=len(rows),
        inserted=inserted,
        version_id=version_id,
    )
    report.assumptions.update(said)
    return report


def scope_stored_codes(conn: Connection, version_id: int, level: str | None) -> int:
    """Give the draft's areas of ``level`` stored with a bare code their full code too.

    An import per community: the first file's codes were unique alone, the second repeats
    them under another parent; both then read ``<parent code>/<code>``. Returns how many
    areas were re-coded (a full code over 64 characters is left as it was).
    """
    return conn.execute(
        text(
            "UPDATE areas a SET local_code = a.code, code = p.code || '/' || a.code "
            "FROM areas p WHERE p.id = a.parent_id AND a.version_id = :v AND a.level = :lvl "
            "AND a.local_code IS NULL AND length(p.code || '/' || a.code) <= :n"
        ),
        {"v": version_id, "lvl": level, "n": CODE_CHARS},
    ).rowcount


def scoped_codes(
    conn: Connection,
    version_id: int | None,
    level: str | None,
    rows: pd.DataFrame,
    parent_id: np.ndarray,
) -> bool:
    """Whether the file's codes are local to their parents, so stored as ``parent/code``.

    They are when the file names parents (``parent_code``) and a code alone would not tell
    two areas apart: the file gives one code under two parents, or the version already holds
    that code at this level under another parent, or already stores this level's codes with
    their parents' (an import per community keeps the form of the first).
    """
    if not len(rows) or "parent_code" not in rows or rows.parent_code.isna().all():
        return False
    if any(p is None for p in parent_id):  # no --parent-level: parents are not known
        return False
    per_code = pd.DataFrame({"code": rows.code.to_numpy(), "parent": parent_id})
    if (per_code.groupby("code")["parent"].nunique() > 1).any():
        return True
    if version_id is None:
        return False
    held = conn.execute(
        text(
            "SELECT bool_or(local_code IS NOT NULL) AS scoped, "
            "bool_or(code = ANY(CAST(:codes AS text[]))) AS clash "
            "FROM areas WHERE version_id = :v AND level = :lvl"
        ),
        {"v": version_id, "lvl": level, "codes": sorted(set(rows.code))},
    ).one()
    if held.scoped:
        return True
    if not held.clash:
        return False
    # The same code under the same parent is a duplicate (rejected as already there); under
    # another parent it is the local numbering of that parent.
    stored: dict[str, int] = dict(
        conn.execute(
            text(
                "SELECT code, parent_id FROM areas WHERE version_id = :v AND level = :lvl "
                "AND code = ANY(CAST(:codes AS text[]))"
            ),
            {"v": version_id, "lvl": level, "codes": sorted(set(rows.code))},
        ).all()
    )
    return any(c in stored and stored[c] != p for c, p in zip(rows.code, parent_id, strict=True))


def find_parents(
    conn: Connection, version_id: int | None, parent_level: str, rows: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Parent of each row (its id and stored code) and why none: by its ``parent_code``
    column (a parent's full code, or its local code where that is unique), else the parent
    holding most of it."""
    parents = (
        conn.execute(
            text(
                "SELECT id, code, ST_AsBinary(geom), local_code FROM areas "
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
            format_message(
                "{where} has no {parent_level} areas to nest in; import the {parent_level} "
                "level first",
                where=where,
                parent_level=parent_level,
            )
        )
    ids = np.array([p[0] for p in parents], dtype=object)
    code_of = {p[0]: p[1] for p in parents}
    times = pd.Series([p[3] for p in parents], dtype=object).value_counts()
    by_local = {p[3]: p[0] for p in parents if p[3] is not None and times[p[3]] == 1}
    by_code = {**by_local, **{p[1]: p[0] for p in parents}}
    result = np.full(len(rows), None, dtype=object)
    why: list[str | None] = [None] * len(rows)
    if rows.parent_code.notna().any():
        for i, code in enumerate(rows.parent_code):
            if code in by_code:
                result[i] = by_code[code]
            else:
                why[i] = format_message(
                    "unknown parent {parent_level} {code!r}", parent_level=parent_level, code=code
                )
        return result, _codes(result, code_of), why
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
            why[i] = format_message("no {parent_level} area contains it", parent_level=parent_level)
    return result, _codes(result, code_of), why


def _codes(parent_ids: np.ndarray, code_of: dict[int, str]) -> np.ndarray:
    """The stored code of each parent id (None where there is none)."""
    return np.array([code_of.get(p) if p is not None else None for p in parent_ids], dtype=object)

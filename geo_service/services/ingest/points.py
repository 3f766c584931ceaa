"""Import point rows (incidents, households, rental units, responders): assign each its grid
and H3 cell, refuse what the importer's area does not cover, and hand the rest to its writer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geo_service.db.bulk import point_ewkb_hex
from geo_service.geo.assign import NO_GRID
from geo_service.geo.h3cells import cells_for_points
from geo_service.i18n import format_message
from geo_service.ingest.validate import Checked
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.assignment import assign_grids
from geo_service.services.ingest import writers
from geo_service.services.ingest.options import Progress
from geo_service.services.ingest.report import ImportReport, build_report, reject


def import_points(
    conn: Connection,
    kind: str,
    frame: gpd.GeoDataFrame,
    checked: Checked,
    path: Path,
    step: Progress,
    scope: Scope | None = None,
    *,
    edge_tolerance_m: float = 0.0,
) -> ImportReport:
    """Write the accepted rows of a point ``kind``; with an area-bound ``scope``, rows outside
    its grids, or naming by key an object of another area, are rejected.

    Rows in no grid but within ``edge_tolerance_m`` metres of one go to the nearest grid; the
    report counts them (``assumptions["edge_snapped"]``, with ``edge_tolerance_m``).
    """
    rows = checked.accepted
    at = rows["reported_at"].to_numpy() if kind == "incidents" else None
    snapped = np.zeros(len(rows), dtype=bool)
    grid, why = assign_grids(
        conn,
        rows.lon.to_numpy(),
        rows.lat.to_numpy(),
        at,
        edge_tolerance_m=edge_tolerance_m,
        snapped=snapped,
    )
    step("assign", len(rows), len(rows))
    miss = grid == NO_GRID
    if scope is not None and not scope.unrestricted:
        outside = ~miss & ~np.isin(grid, np.fromiter(scope.grid_ids or (), dtype=np.int64))
        why[outside] = format_message(
            "outside your area ({area_code})", area_code=scope.principal.area_code
        )
        miss = miss | outside
    reject(checked, rows.row.to_numpy()[miss], why[miss])
    rows = rows[~miss].reset_index(drop=True)
    grid = grid[~miss]
    snapped = snapped[~miss]
    if scope is not None and not scope.unrestricted and kind in KEYED_BY_AREA:
        # A row inside the area may still name, by its stable key, an object of another area.
        foreign, foreign_why = foreign_keys(conn, kind, rows, scope)
        reject(checked, rows.row.to_numpy()[foreign], foreign_why[foreign])
        rows = rows[~foreign].reset_index(drop=True)
        grid = grid[~foreign]
        snapped = snapped[~foreign]
    location = point_ewkb_hex(rows.lon.to_numpy(), rows.lat.to_numpy())
    h3 = cells_for_points(rows.lon.to_numpy(), rows.lat.to_numpy())
    # Looked up on the module at call time, so a test can replace one writer.
    counts: dict[str, int] = {}  # what a writer changed besides inserting (households)
    by_kind: dict[str, Callable[..., int]] = {
        "incidents": writers.write_incidents,
        "households": partial(writers.write_households, given=checked.given, counts=counts),
        "rental-units": writers.write_rental_units,
        "responders": partial(writers.write_responders, scope=scope, given=checked.given),
    }
    writer = by_kind[kind]
    inserted = writer(conn, rows, location, h3, grid, lambda n: step("write", n, len(rows)))
    report = build_report(kind, path, frame, checked, accepted=len(rows), inserted=inserted)
    report.updated = counts.get("updated", 0)
    if snapped.any():
        report.assumptions["edge_snapped"] = int(snapped.sum())
        report.assumptions["edge_tolerance_m"] = float(edge_tolerance_m)
    return report


# Kinds whose stable key names an object that belongs to an area: (table, key column,
# column of the owning grid, what a reject calls the object).
KEYED_BY_AREA: dict[str, tuple[str, str, str, str]] = {
    "responders": ("responders", "callsign", "home_grid_id", "responder"),
    "households": ("households", "external_ref", "grid_id", "household"),
    "rental-units": ("rental_units", "external_ref", "grid_id", "rental unit"),
}


def foreign_keys(
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
    table, key, grid_column, what = KEYED_BY_AREA[kind]
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

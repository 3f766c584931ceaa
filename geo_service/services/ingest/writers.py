"""Per-kind writers of point rows: incidents, households, rental units and responders.

Each takes the accepted rows with their location (hex EWKB), H3 cell and grid, stages them and
moves them into place; it returns how many rows it inserted (or, for responders, changed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geo_service.geo.h3cells import RESIDENT_RESOLUTIONS, exact_cells
from geo_service.services.access.scope import Scope
from geo_service.services.ingest.staging import fill_known, insert_new, insert_staged, stage

Chunk = Callable[[int], None]


def write_incidents(
    conn: Connection,
    rows: pd.DataFrame,
    location: np.ndarray,
    h3: np.ndarray,
    grid: np.ndarray,
    chunk: Chunk,
) -> int:
    """Insert incidents not imported before (keyed by ``idempotency_key``)."""
    return insert_new(
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
                # each point's own cell at res 6..10 (H3 does not nest: not parents of h3)
                **exact_cells(rows.lon.to_numpy(), rows.lat.to_numpy()),
                "grid_id": grid,
            }
        ),
        "idempotency_key",
        chunk,
    )


def write_households(
    conn: Connection,
    rows: pd.DataFrame,
    location: np.ndarray,
    h3: np.ndarray,
    grid: np.ndarray,
    chunk: Chunk,
    *,
    given: frozenset[str] = frozenset(),
    counts: dict[str, int] | None = None,
) -> int:
    """Insert households not imported before (keyed by ``external_ref``: the source's id,
    else the content key) and, when the file has an ``address`` column (``given``), fill or
    change the address of those imported before (a blank cell keeps the stored one); how
    many addresses changed goes into ``counts["updated"]``."""
    frame = pd.DataFrame(
        {
            "location": location,
            "household_size": rows.household_size,
            "grid_id": grid,
            "h3": h3,
            # own cells at res 5..10 (0025), not parents of h3
            **exact_cells(rows.lon.to_numpy(), rows.lat.to_numpy(), RESIDENT_RESOLUTIONS),
            "elderly_living_alone": rows.elderly_living_alone,
            "needs_assistance": rows.needs_assistance,
            "address": rows.address,
            "external_ref": rows.external_ref,
        }
    )
    staging = stage(conn, "households", frame, chunk)
    if "address" in given:
        changed = fill_known(
            conn, "households", staging, "external_ref", "address", content_keys=True
        )
        if counts is not None:
            counts["updated"] = changed
    return insert_staged(
        conn, "households", staging, list(frame.columns), "external_ref", content_keys=True
    )


def write_rental_units(
    conn: Connection,
    rows: pd.DataFrame,
    location: np.ndarray,
    h3: np.ndarray,
    grid: np.ndarray,
    chunk: Chunk,
) -> int:
    """Insert rental units not imported before (keyed by ``external_ref``)."""
    return insert_new(
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
                **exact_cells(rows.lon.to_numpy(), rows.lat.to_numpy(), RESIDENT_RESOLUTIONS),
                "external_ref": rows.external_ref,
            }
        ),
        "external_ref",
        chunk,
        content_keys=True,
    )


# What a re-import of a known callsign changes: the fields every row carries, and each
# optional field only when the file has its column (an absent column leaves the unit's value
# as it is: a file without ``skills`` does not wipe them). Status is never changed by an
# import (dispatch owns it). Identifiers of a fixed table, never from a request.
REQUIRED_UPDATES = ("kind", "position")
OPTIONAL_UPDATES = ("skills", "fixed")


def write_responders(
    conn: Connection,
    rows: pd.DataFrame,
    location: np.ndarray,
    h3: np.ndarray,
    grid: np.ndarray,
    chunk: Chunk,
    *,
    scope: Scope | None = None,
    given: frozenset[str] = frozenset(OPTIONAL_UPDATES),
) -> int:
    """Insert new responders and update known ones (keyed by callsign); ``h3`` is unused.

    A responder's home grid is where it stands when first imported; a re-import with the
    same callsign updates kind and position, and the optional fields named in ``given``
    (the columns the file carries), since it is the same unit. For an area-bound
    importer ``points.foreign_keys`` has already refused callsigns of other areas; the
    update's own guard repeats that rule so a unit that another transaction creates or moves
    out of the area in between is left alone too (then counted as already present).
    """
    frame = pd.DataFrame(
        {
            "callsign": rows.callsign,
            "kind": rows.kind,
            "home_grid_id": grid,
            "status": rows.status,
            "position": location,
            "position_at": datetime.now(UTC).isoformat(),
            # Lists of strings: copy_frame binds each as a text[] value, every skill escaped.
            "skills": rows.skills,
            "fixed": rows.fixed,
        }
    )
    staging = stage(conn, "responders", frame, chunk)
    updates = [*REQUIRED_UPDATES, *(f for f in OPTIONAL_UPDATES if f in given)]
    sets = ", ".join(f"{f} = EXCLUDED.{f}" for f in updates)
    mine = ", ".join(_compared(f"responders.{f}", f) for f in updates)
    theirs = ", ".join(_compared(f"EXCLUDED.{f}", f) for f in updates)
    return conn.execute(
        text(
            f"INSERT INTO responders (callsign, kind, home_grid_id, status, position, position_at, "
            f"skills, fixed) SELECT callsign, kind, home_grid_id, status, position, position_at, "
            f"skills, fixed "
            f"FROM {staging} ON CONFLICT (callsign) DO UPDATE SET {sets}, "
            f"position_at = EXCLUDED.position_at "
            f"WHERE ({mine}) IS DISTINCT FROM ({theirs}) "
            f"AND (CAST(:grids AS integer[]) IS NULL "
            f"OR responders.home_grid_id = ANY(CAST(:grids AS integer[])) "
            f"OR responders.id = CAST(:own AS integer))"
        ),
        {
            "grids": None if scope is None or scope.unrestricted else sorted(scope.grid_ids or ()),
            "own": scope.principal.responder_id if scope is not None else None,
        },
    ).rowcount


def _compared(column: str, field: str) -> str:
    """The expression an update compares for ``field`` (geometries by their bytes)."""
    return f"ST_AsBinary({column})" if field == "position" else column

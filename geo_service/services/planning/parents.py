"""The reads of a proposal: the parents to redraw with today's grids, and each parent's atoms
with the workload terms they hold (the database side; the geometry is ``analytics.atoms``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.analytics.atoms import (
    areas_km2,
    atomize,
    grid_of_atoms,
    hex_neighbours,
    local_utm,
)
from geo_service.db.sql import sql
from geo_service.errors import InvalidInputError
from geo_service.geo.h3cells import exact_column, resident_cell_column
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.planning.workload import Weights, workload_hours

REDRAWABLE_LEVELS = ("community", "street", "district")


@dataclass
class Parent:
    """A community being redrawn, with today's grids under it."""

    id: int
    code: str
    name: str
    level: str
    geom: Any
    grids: gpd.GeoDataFrame  # id, code, name, parent_id, geometry (today's grids)
    locked: list[int]  # ids of the grids kept as they are

    @property
    def free_grids(self) -> gpd.GeoDataFrame:
        """Today's grids that the proposal may redraw (all but the locked ones)."""
        return self.grids[~self.grids.id.isin(self.locked)]


@dataclass
class ParentAtoms:
    """One parent cut into atoms, each with what it holds: the input of its partition and of
    the proposal's metrics."""

    parent: Parent
    cells: list[int]  # H3 cell of each atom
    pieces: np.ndarray  # (n,) the atoms' polygons, WGS84
    current: np.ndarray  # (n,) today's grid of each atom, a position in ``grid_ids``
    hours: np.ndarray  # (n,) exact workload of each atom over the window
    neighbours: list[list[int]]  # H3 adjacency among the atoms
    per: dict[str, np.ndarray]  # term -> (n,) per atom
    held: dict[str, np.ndarray]  # term -> (n, len(grid_ids)) per atom and today's grid
    grid_ids: list[int]  # today's free grids


def load_parents(session: Session, codes: list[str], locked_codes: list[str]) -> list[Parent]:
    """The areas whose grids are redrawn: those named by ``codes`` or under them that have
    grids as children (communities in a city of four levels, districts in one of districts
    and grids), in the version in force, each with today's grids; ``locked_codes`` name grids
    kept as they are. Unknown codes, grids and locked grids outside the parents are refused."""
    version = version_in_force(session)
    rows = (
        session.execute(
            text(
                "SELECT id, code, name, level, ST_AsBinary(geom) AS wkb FROM areas "
                "WHERE version_id = :v AND code = ANY(:codes)"
            ),
            {"v": version, "codes": codes},
        )
        .mappings()
        .all()
    )
    missing = sorted(set(codes) - {r["code"] for r in rows})
    if missing:
        raise InvalidInputError(f"no such areas in the version in force: {', '.join(missing)}")
    bad = [r["code"] for r in rows if r["level"] not in REDRAWABLE_LEVELS]
    if bad:
        raise InvalidInputError(f"only communities, streets or districts can be redrawn: {bad}")
    communities = (
        session.execute(sql("planning_grid_parents"), {"ids": [r["id"] for r in rows]})
        .mappings()
        .all()
    )
    if not communities:
        raise InvalidInputError(f"no grids under {', '.join(sorted(codes))}: nothing to redraw")
    parents = []
    all_locked: set[int] = set()
    for r in communities:
        grids = session.execute(sql("planning_parent_grids"), {"p": r["id"]}).mappings().all()
        frame = gpd.GeoDataFrame(
            {
                "id": [g["id"] for g in grids],
                "code": [g["code"] for g in grids],
                "name": [g["name"] for g in grids],
                "parent_id": [g["parent_id"] for g in grids],
            },
            geometry=shapely.from_wkb([bytes(g["wkb"]) for g in grids]),
            crs="EPSG:4326",
        )
        locked = frame[frame.code.isin(locked_codes)].id.tolist()
        all_locked.update(frame[frame.code.isin(locked_codes)].code)
        parents.append(
            Parent(
                r["id"],
                r["code"],
                r["name"],
                r["level"],
                shapely.from_wkb(bytes(r["wkb"])),
                frame,
                locked,
            )
        )
    unknown = sorted(set(locked_codes) - all_locked)
    if unknown:
        raise InvalidInputError(f"locked grids outside the parents: {', '.join(unknown)}")
    return parents


# What each atom (an H3 cell of ``res``) holds, per today's grid: (cell, grid_id, value) rows.
# Each record counts in its own cell at ``res`` (``h3.latlng_to_cell``: incidents'
# ``exact_column``, homes' ``resident_cell_column``), never in the parent of its res-11 cell:
# H3 does not nest exactly, and an atom is that cell's hexagon clipped to the parent, so a
# record counted in a parent cell would land in an atom (and a new grid, a union of atoms)
# whose polygon does not hold it. The columns are identifiers of a fixed set.
def _atom_terms(res: int) -> dict[str, str]:
    """The per-atom queries at ``res`` (9, 10 or 11)."""
    incident, home = exact_column(res), resident_cell_column(res)
    return {
        "incident_hours": (
            f"SELECT x.{incident}, x.grid_id, sum(c.handling_effort_min) / 60.0 "
            "FROM incidents x JOIN categories c ON c.code = x.category "
            "WHERE x.grid_id = ANY(:grids) AND x.reported_at >= :since "
            "AND x.reported_at < :until GROUP BY 1, 2"
        ),
        "households": (
            f"SELECT {home}, grid_id, count(*) FROM households "
            "WHERE grid_id = ANY(:grids) GROUP BY 1, 2"
        ),
        "rental_units": (
            f"SELECT {home}, grid_id, sum(unit_count) FROM rental_units "
            "WHERE grid_id = ANY(:grids) GROUP BY 1, 2"
        ),
        # disclosure keys of the atoms (geography, not records: adding a record to an atom
        # does not re-draw the rounding), to publish what the figures count (never balanced
        # on); the identity is the atom's (cell, grid) as before, only the records under it
        # are now those its hexagon contains
        "household_key": (
            f"SELECT {home}, grid_id, "
            f"disclosure_key('atom:' || {home} || ':' || grid_id) FROM households "
            "WHERE grid_id = ANY(:grids) GROUP BY 1, 2"
        ),
        "rental_key": (
            f"SELECT {home}, grid_id, "
            f"disclosure_key('atom:' || {home} || ':' || grid_id) FROM rental_units "
            "WHERE grid_id = ANY(:grids) GROUP BY 1, 2"
        ),
        # every incident ever: what stability protects
        "history": (
            f"SELECT {incident}, grid_id, count(*) FROM incidents "
            "WHERE grid_id = ANY(:grids) GROUP BY 1, 2"
        ),
    }


_PER_ATOM = {res: _atom_terms(res) for res in (9, 10, 11)}
_TERM_NAMES = tuple(_PER_ATOM[10])


def _per_atom(
    session: Session, name: str, grid_ids: list[int], res: int, since: datetime, until: datetime
) -> dict[tuple[int, int], float]:
    if res not in _PER_ATOM:
        raise InvalidInputError("atoms: h3_res must be 9, 10 or 11")
    params: dict[str, Any] = {"grids": grid_ids}
    if name == "incident_hours":
        params |= {"since": since, "until": until}
    rows = session.execute(text(_PER_ATOM[res][name]), params).all()
    return {(int(c), int(g)): float(n) for c, g, n in rows}


def _free_atoms(parent: Parent, res: int) -> tuple[list[int], np.ndarray]:
    """The parent's atoms, leaving out its locked grids."""
    free = parent.geom
    locked = parent.grids[parent.grids.id.isin(parent.locked)]
    if len(locked):
        free = shapely.difference(free, shapely.union_all(locked.geometry.values))
    return atomize(free, res)


def parent_atoms(
    session: Session,
    parent: Parent,
    *,
    res: int,
    weights: Weights,
    window_days: int,
    since: datetime,
    until: datetime,
) -> ParentAtoms:
    """Cut ``parent`` (less its locked grids) into H3 atoms of ``res`` and weigh each by the
    workload formula over [``since``, ``until``); record what each atom holds of each of
    today's grids, for the stability figures."""
    cells, pieces = _free_atoms(parent, res)
    free_grids = parent.free_grids
    grid_ids = free_grids.id.tolist()
    current = grid_of_atoms(pieces, free_grids.geometry.values)
    index_of = {c: i for i, c in enumerate(cells)}
    terms = {name: _per_atom(session, name, grid_ids, res, since, until) for name in _TERM_NAMES}
    grid_pos = {g: k for k, g in enumerate(grid_ids)}
    n = len(cells)
    per = {name: np.zeros(n) for name in terms}
    held = {name: np.zeros((n, len(grid_ids))) for name in terms}
    for name, values in terms.items():
        for (cell, grid), value in values.items():
            i = index_of.get(cell)
            if i is None or grid not in grid_pos:
                continue  # on a boundary the atoms missed: negligible
            per[name][i] += value
            held[name][i, grid_pos[grid]] += value
    hours = workload_hours(
        per["incident_hours"],
        per["households"],
        per["rental_units"],
        areas_km2(pieces, local_utm(parent.geom)),
        weights,
        window_days,
    )
    return ParentAtoms(
        parent, cells, pieces, current, hours, hex_neighbours(cells), per, held, grid_ids
    )

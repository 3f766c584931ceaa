"""The reads of a proposal: the parents to redraw with today's grids, and each parent's atoms
with the workload terms they hold (the database side; the geometry is ``analytics.atoms``).

Atoms come from the city's fabric: the parent's street blocks (the faces of the road network
loaded in ``road_segments``), each cut by H3 cells into fragments. Records are counted in the
fragment whose polygon holds them (point in polygon, as every other read of the service), so
a grid made of atoms holds exactly the records its drawn polygon holds. A proposal starts
from whole blocks, so every new border runs on a street, and splits only the blocks too heavy
for the band into their fragments (``atoms_of``). Where no roads are loaded a parent is one
block: its atoms are its H3 fragments, as before blocks existed."""

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
    fragments,
    grid_of_atoms,
    local_utm,
    shared_borders,
    street_blocks,
)
from geo_service.db.sql import sql
from geo_service.errors import InvalidInputError
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
class ParentFragments:
    """One parent (less its locked grids) cut into street blocks and their H3 fragments, each
    fragment with what it holds: what every set of atoms of the parent is made of."""

    parent: Parent
    crs: Any  # the parent's UTM zone: metres
    roads: np.ndarray  # (m,) road centre lines touching the parent, WGS84
    blocks: np.ndarray  # (b,) the street blocks, WGS84
    pieces: np.ndarray  # (f,) the fragments, WGS84
    block: np.ndarray  # (f,) the block of each fragment
    neighbours: list[list[int]]  # fragments sharing a border
    lengths: list[list[float]]  # and the length of each of those borders, metres
    per: dict[str, np.ndarray]  # term -> (f,) per fragment
    held: dict[str, np.ndarray]  # term -> (f, len(grid_ids)) per fragment and today's grid
    grid_ids: list[int]  # today's free grids


@dataclass
class ParentAtoms:
    """One parent cut into atoms, each with what it holds: the input of its partition and of
    the proposal's metrics."""

    parent: Parent
    pieces: np.ndarray  # (n,) the atoms' polygons, WGS84
    current: np.ndarray  # (n,) today's grid of each atom, a position in ``grid_ids``
    hours: np.ndarray  # (n,) exact workload of each atom over the window
    neighbours: list[list[int]]  # atoms sharing a border
    lengths: list[list[float]]  # the length of each of those borders, metres
    per: dict[str, np.ndarray]  # term -> (n,) per atom
    held: dict[str, np.ndarray]  # term -> (n, len(grid_ids)) per atom and today's grid
    grid_ids: list[int]  # today's free grids
    whole_blocks: int  # atoms that are a whole street block (the rest are fragments)
    source: ParentFragments  # what they are made of (roads, blocks, CRS)

    @property
    def crs(self) -> Any:
        """The parent's UTM zone."""
        return self.source.crs

    @property
    def roads(self) -> np.ndarray:
        """The road lines touching the parent, WGS84."""
        return self.source.roads


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


# What each fragment holds, per today's grid: (fragment, grid_id, value) rows, each record
# counted once, in the fragment whose polygon holds its point (the lowest-numbered on a shared
# border), whatever grid it is filed under; grid_id is NULL for records filed under none.
# The fragments are in the temporary table ``planning_fragments`` (i, cell, geom).
_TERMS = {
    "incident_hours": """
        SELECT i, grid_id, sum(minutes) / 60.0 FROM (
            SELECT DISTINCT ON (x.id) f.i, x.grid_id, c.handling_effort_min AS minutes
            FROM planning_fragments f
            JOIN incidents x ON ST_Intersects(f.geom, x.location)
            JOIN categories c ON c.code = x.category
            WHERE x.reported_at >= :since AND x.reported_at < :until
            ORDER BY x.id, f.i) hit
        GROUP BY 1, 2""",
    "incidents": """
        SELECT i, grid_id, count(*) FROM (
            SELECT DISTINCT ON (x.id) f.i, x.grid_id FROM planning_fragments f
            JOIN incidents x ON ST_Intersects(f.geom, x.location)
            WHERE x.reported_at >= :since AND x.reported_at < :until
            ORDER BY x.id, f.i) hit
        GROUP BY 1, 2""",
    "households": """
        SELECT i, grid_id, count(*) FROM (
            SELECT DISTINCT ON (h.id) f.i, h.grid_id FROM planning_fragments f
            JOIN households h ON ST_Intersects(f.geom, h.location) ORDER BY h.id, f.i) hit
        GROUP BY 1, 2""",
    "rental_units": """
        SELECT i, grid_id, sum(unit_count) FROM (
            SELECT DISTINCT ON (r.id) f.i, r.grid_id, r.unit_count FROM planning_fragments f
            JOIN rental_units r ON ST_Intersects(f.geom, r.location) ORDER BY r.id, f.i) hit
        GROUP BY 1, 2""",
    # disclosure keys of the fragments (geography, not records: adding a record does not
    # re-draw the rounding), to publish what the figures count (never balanced on)
    "household_key": """
        SELECT i, grid_id, disclosure_key('atom:' || cell || ':' || coalesce(grid_id, 0))
        FROM (SELECT DISTINCT ON (h.id) f.i, f.cell, h.grid_id FROM planning_fragments f
              JOIN households h ON ST_Intersects(f.geom, h.location) ORDER BY h.id, f.i) hit
        GROUP BY 1, 2, cell""",
    "rental_key": """
        SELECT i, grid_id, disclosure_key('atom:' || cell || ':' || coalesce(grid_id, 0))
        FROM (SELECT DISTINCT ON (r.id) f.i, f.cell, r.grid_id FROM planning_fragments f
              JOIN rental_units r ON ST_Intersects(f.geom, r.location) ORDER BY r.id, f.i) hit
        GROUP BY 1, 2, cell""",
    # every incident ever: what stability protects
    "history": """
        SELECT i, grid_id, count(*) FROM (
            SELECT DISTINCT ON (x.id) f.i, x.grid_id FROM planning_fragments f
            JOIN incidents x ON ST_Intersects(f.geom, x.location) ORDER BY x.id, f.i) hit
        GROUP BY 1, 2""",
}
TERM_NAMES = tuple(_TERMS)

_ROADS = text(
    "SELECT ST_AsBinary(geom) FROM road_segments "
    "WHERE ST_Intersects(geom, ST_GeomFromWKB(:area, 4326))"
)


def _free_area(parent: Parent) -> Any:
    """The parent less its locked grids."""
    locked = parent.grids[parent.grids.id.isin(parent.locked)]
    if not len(locked):
        return parent.geom
    return shapely.difference(parent.geom, shapely.union_all(locked.geometry.values))


def _load_fragments(session: Session, pieces: np.ndarray, cells: list[int]) -> None:
    """The fragments into ``planning_fragments`` (this transaction's), indexed."""
    session.execute(text("DROP TABLE IF EXISTS planning_fragments"))
    session.execute(
        text(
            "CREATE TEMPORARY TABLE planning_fragments "
            "(i integer, cell bigint, geom geometry(Geometry, 4326)) ON COMMIT DROP"
        )
    )
    session.execute(
        text(
            "INSERT INTO planning_fragments "
            "SELECT i - 1, cell, ST_GeomFromWKB(wkb, 4326) "
            "FROM unnest(CAST(:cells AS bigint[]), CAST(:wkbs AS bytea[])) "
            "WITH ORDINALITY AS t(cell, wkb, i)"
        ),
        {"cells": cells, "wkbs": [bytes(w) for w in shapely.to_wkb(pieces)]},
    )
    session.execute(text("CREATE INDEX ON planning_fragments USING gist (geom)"))
    session.execute(text("ANALYZE planning_fragments"))


def parent_fragments(
    session: Session, parent: Parent, *, res: int, since: datetime, until: datetime
) -> ParentFragments:
    """Cut ``parent`` (less its locked grids) into street blocks and H3 fragments of ``res``,
    and count in each fragment what it holds over [``since``, ``until``) (incidents) or now
    (households, rental units, all incidents ever), per today's grid for the stability
    figures."""
    if res not in (9, 10, 11):
        raise InvalidInputError("atoms: h3_res must be 9, 10 or 11")
    free = _free_area(parent)
    crs = local_utm(parent.geom)
    roads = shapely.from_wkb(
        [bytes(r[0]) for r in session.execute(_ROADS, {"area": shapely.to_wkb(free)})]
    )
    roads = np.asarray(roads, dtype=object)
    pieces, cells, block = fragments(street_blocks(free, roads, crs), res)
    # Each block drawn as the union of its fragments: a cell's cut adds vertices on the road
    # between two blocks, and a whole block must meet its neighbour's fragments along the
    # very same edge, or a grid made of both falls apart on the map a hair's width apart.
    order = np.argsort(block, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(block[order]) != 0])
    blocks = np.array(
        [shapely.union_all(pieces[idx]) for idx in np.split(order, starts[1:])], dtype=object
    )
    free_grids = parent.free_grids
    grid_ids = free_grids.id.tolist()
    grid_pos = {g: k for k, g in enumerate(grid_ids)}
    _load_fragments(session, pieces, cells)
    n = len(pieces)
    per = {name: np.zeros(n) for name in TERM_NAMES}
    held = {name: np.zeros((n, len(grid_ids))) for name in TERM_NAMES}
    params: dict[str, Any] = {"since": since, "until": until}
    for name, query in _TERMS.items():
        for i, grid, value in session.execute(text(query), params):
            per[name][i] += float(value)
            if grid in grid_pos:  # filed under a grid this proposal redraws
                held[name][i, grid_pos[grid]] += float(value)
    neighbours, lengths = shared_borders(pieces)
    return ParentFragments(
        parent, crs, roads, blocks, pieces, block, neighbours, lengths, per, held, grid_ids
    )


def block_hours(frags: ParentFragments, weights: Weights, window_days: int) -> np.ndarray:
    """The exact workload of each street block over the window, (b,) hours."""
    b = len(frags.blocks)
    return workload_hours(
        np.bincount(frags.block, weights=frags.per["incident_hours"], minlength=b),
        np.bincount(frags.block, weights=frags.per["households"], minlength=b),
        np.bincount(frags.block, weights=frags.per["rental_units"], minlength=b),
        areas_km2(frags.blocks, frags.crs),
        weights,
        window_days,
    )


def atoms_of(
    frags: ParentFragments, split: np.ndarray, weights: Weights, window_days: int
) -> ParentAtoms:
    """The atoms of a parent: each street block whole, or, where ``split`` says so, its H3
    fragments, each weighed by the workload formula.

    Parameters
    ----------
    frags : ParentFragments
        The parent's blocks and fragments with what they hold.
    split : numpy.ndarray of bool, shape (b,)
        Which blocks are cut into their fragments.
    weights, window_days
        The workload formula's weights and window.
    """
    own = len(frags.blocks) + np.arange(len(frags.block))  # a fragment of a cut block: alone
    group = np.where(split[frags.block], own, frags.block)
    ids, group = np.unique(group, return_inverse=True)
    n = len(ids)
    pieces = np.empty(n, dtype=object)
    whole = ids < len(frags.blocks)
    pieces[whole] = frags.blocks[ids[whole]]
    pieces[~whole] = frags.pieces[ids[~whole] - len(frags.blocks)]
    per = {k: np.bincount(group, weights=v, minlength=n) for k, v in frags.per.items()}
    held = {}
    for k, v in frags.held.items():
        held[k] = np.zeros((n, v.shape[1]))
        np.add.at(held[k], group, v)
    borders: list[dict[int, float]] = [{} for _ in range(n)]
    for i, (nb, ln) in enumerate(zip(frags.neighbours, frags.lengths, strict=True)):
        gi = group[i]
        for j, length in zip(nb, ln, strict=True):
            gj = int(group[j])
            if gi != gj:
                borders[gi][gj] = borders[gi].get(gj, 0.0) + length
    current = grid_of_atoms(pieces, frags.parent.free_grids.geometry.values)
    hours = workload_hours(
        per["incident_hours"],
        per["households"],
        per["rental_units"],
        areas_km2(pieces, frags.crs),
        weights,
        window_days,
    )
    return ParentAtoms(
        frags.parent,
        pieces,
        current,
        hours,
        [sorted(b) for b in borders],
        [[b[j] for j in sorted(b)] for b in borders],
        per,
        held,
        frags.grid_ids,
        int(whole.sum()),
        frags,
    )

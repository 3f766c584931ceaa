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

import functools
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
from geo_service.i18n import format_message, gettext
from geo_service.services.access import disclosure
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

    @functools.cached_property
    def free_grids(self) -> gpd.GeoDataFrame:
        """Today's grids that the proposal may redraw (all but the locked ones)."""
        return self.grids[~self.grids.id.isin(self.locked)]


@dataclass
class Pairs:
    """The disclosure keys of what some polygons hold, one row per polygon and distinct pair
    (H3 res-10 cell, grid filed under) of its homes (``disclosure.key_sum``): rows, not sums,
    because the key of a union counts each pair once."""

    unit: np.ndarray  # (k,) the polygon (block, fragment or atom) of each row
    key: np.ndarray  # (k,) the pair's disclosure key
    grid: np.ndarray  # (k,) the grid filed under, a position in ``grid_ids`` (-1: another)

    @staticmethod
    def empty() -> Pairs:
        """No rows."""
        return Pairs(np.zeros(0, dtype=int), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=int))

    def concat(self, other: Pairs) -> Pairs:
        """These rows and ``other``'s."""
        return Pairs(
            np.concatenate([self.unit, other.unit]),
            np.concatenate([self.key, other.key]),
            np.concatenate([self.grid, other.grid]),
        )

    def key_sums(self, groups: np.ndarray, n: int) -> np.ndarray:
        """The key of each of ``n`` groups of units (``groups``: a group per unit), (n,)."""
        out = np.zeros(n, dtype=np.int64)
        if not len(self.unit):
            return out
        g = groups[self.unit]
        for r, key in set(zip(g.tolist(), self.key.tolist(), strict=True)):
            out[r] += key
        return out % disclosure.KEY_MODULUS


@dataclass
class ParentFragments:
    """One parent (less its locked grids) cut into street blocks, with what each block holds.
    Its H3 fragments (``pieces``) are drawn, and what each holds read, only when a plan first
    cuts a block (``atoms_of``): most plans never do."""

    parent: Parent
    crs: Any  # the parent's UTM zone: metres
    roads: np.ndarray  # (m,) road centre lines touching the parent, WGS84
    blocks: np.ndarray  # (b,) the street blocks, WGS84 (once cut: each the union of its pieces)
    res: int  # the H3 resolution of the fragments
    per: dict[str, np.ndarray]  # term -> (b,) per block
    held: dict[str, np.ndarray]  # term -> (b, len(grid_ids)) per block and today's grid
    pairs: dict[str, Pairs]  # "households" / "rental_units" -> per block
    grid_ids: list[int]  # today's free grids
    counter: FragmentCounter  # reads what the fragments of a block hold, once
    _pieces: np.ndarray | None = None
    _block: np.ndarray | None = None

    @property
    def pieces(self) -> np.ndarray:
        """(f,) the fragments, WGS84: the blocks cut by the H3 cells of ``res``."""
        return self._fragmented()[0]

    @property
    def block(self) -> np.ndarray:
        """(f,) the block of each fragment."""
        return self._fragmented()[1]

    def _fragmented(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pieces is None or self._block is None:
            pieces, _, block = fragments(self.blocks, self.res)
            # Each block is drawn from then on as the union of its fragments: a cell's cut
            # adds vertices on the road between two blocks, and a whole block must meet its
            # neighbour's fragments along the very same edge, or a grid made of both falls
            # apart on the map a hair's width apart.
            order = np.argsort(block, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(block[order]) != 0])
            self.blocks = np.array(
                [shapely.union_all(pieces[i]) for i in np.split(order, starts[1:])], dtype=object
            )
            self._pieces, self._block = pieces, block
        return self._pieces, self._block

    def fragment_terms(
        self, cut: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Pairs]]:
        """What each fragment of the blocks ``cut`` ((b,) bool) holds: per, held, pairs as the
        blocks' but per fragment (rows of fragments of other blocks are zero / absent)."""
        return self.counter.terms(self, cut)


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
    pairs: dict[str, Pairs]  # "households" / "rental_units": disclosure pairs per atom
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
        raise InvalidInputError(
            format_message(
                "no such areas in the version in force: {values}", values=", ".join(missing)
            )
        )
    bad = [r["code"] for r in rows if r["level"] not in REDRAWABLE_LEVELS]
    if bad:
        raise InvalidInputError(
            format_message("only communities, streets or districts can be redrawn: {bad}", bad=bad)
        )
    communities = (
        session.execute(sql("planning_grid_parents"), {"ids": [r["id"] for r in rows]})
        .mappings()
        .all()
    )
    if not communities:
        raise InvalidInputError(
            format_message(
                "no grids under {values}: nothing to redraw", values=", ".join(sorted(codes))
            )
        )
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
        raise InvalidInputError(
            format_message("locked grids outside the parents: {values}", values=", ".join(unknown))
        )
    return parents


# What the polygons of a parent hold (db/sql/planning_unit_*.sql: each record once, in the
# lowest polygon holding it; a fragment only what no lower block holds): incidents of the
# window and of all time in one pass, homes and rental units with their disclosure pairs.
_INCIDENTS = sql("planning_unit_incidents")
_HOMES = {
    "households": sql("planning_unit_households"),
    "rental_units": sql("planning_unit_rental_units"),
}
TERM_NAMES = ("incident_hours", "incidents", "history", "households", "rental_units")

_ROADS = text(
    "SELECT ST_AsBinary(geom) FROM road_segments "
    "WHERE ST_Intersects(geom, ST_GeomFromWKB(:area, 4326))"
)


_NEXT_PARENT = text("SELECT coalesce(max(p), 0) + 1 FROM planning_units")


def _free_area(parent: Parent) -> Any:
    """The parent less its locked grids."""
    locked = parent.grids[parent.grids.id.isin(parent.locked)]
    if not len(locked):
        return parent.geom
    return shapely.difference(parent.geom, shapely.union_all(locked.geometry.values))


def _units_table(session: Session) -> None:
    """``planning_units`` (this transaction's), if not there yet."""
    session.execute(
        text(
            "CREATE TEMPORARY TABLE IF NOT EXISTS planning_units (p integer, kind text, "
            "i integer, b integer, geom geometry(Geometry, 4326)) ON COMMIT DROP"
        )
    )
    session.execute(
        text("CREATE INDEX IF NOT EXISTS planning_units_geom ON planning_units USING gist (geom)")
    )


def _load_units(
    session: Session, p: int, kind: str, index: np.ndarray, block: np.ndarray, geoms: np.ndarray
) -> None:
    session.execute(
        text(
            "INSERT INTO planning_units SELECT :p, :kind, i, b, ST_GeomFromWKB(wkb, 4326) "
            "FROM unnest(CAST(:i AS int[]), CAST(:b AS int[]), CAST(:wkbs AS bytea[])) "
            "AS t(i, b, wkb)"
        ),
        {
            "p": p,
            "kind": kind,
            "i": index.tolist(),
            "b": block.tolist(),
            "wkbs": [bytes(w) for w in shapely.to_wkb(geoms)],
        },
    )
    session.execute(text("ANALYZE planning_units"))


def _count(
    session: Session, params: dict[str, Any], n: int, grid_pos: dict[int, int]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Pairs]]:
    """What the units of ``params['kind']`` hold: per (n,), held (n, grids), pairs."""
    g = len(grid_pos)
    per = {name: np.zeros(n) for name in TERM_NAMES}
    held = {name: np.zeros((n, g)) for name in TERM_NAMES}

    def add(name: str, i: int, grid: int | None, value: float) -> None:
        per[name][i] += value
        if grid in grid_pos:  # filed under a grid this proposal redraws
            held[name][i, grid_pos[grid]] += value

    for i, grid, hours, window, ever in session.execute(_INCIDENTS, params):
        add("incident_hours", i, grid, float(hours))
        add("incidents", i, grid, float(window))
        add("history", i, grid, float(ever))
    pairs = {}
    for name, query in _HOMES.items():
        rows = session.execute(query, params).all()
        for i, grid, value, _ in rows:
            add(name, i, grid, float(value))
        pairs[name] = Pairs(
            np.array([r[0] for r in rows], dtype=int),
            np.array([r[3] for r in rows], dtype=np.int64),
            np.array([grid_pos.get(r[1], -1) for r in rows], dtype=int),
        )
    return per, held, pairs


@dataclass
class FragmentCounter:
    """Reads, once per block, what the fragments of a parent's blocks hold (in the open
    transaction of the session that read the blocks)."""

    session: Session
    p: int  # the parent's number in ``planning_units``
    params: dict[str, Any]
    grid_pos: dict[int, int]
    done: np.ndarray  # (b,) blocks whose fragments are read
    per: dict[str, np.ndarray] | None = None  # term -> (f,)
    held: dict[str, np.ndarray] | None = None
    pairs: dict[str, Pairs] | None = None

    def terms(
        self, frags: ParentFragments, cut: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Pairs]]:
        """Per, held and pairs of every fragment, read for the blocks in ``cut`` not read yet."""
        f = len(frags.pieces)
        if self.per is None or self.held is None or self.pairs is None:
            g = len(self.grid_pos)
            self.per = {k: np.zeros(f) for k in TERM_NAMES}
            self.held = {k: np.zeros((f, g)) for k in TERM_NAMES}
            self.pairs = {k: Pairs.empty() for k in _HOMES}
        todo = cut & ~self.done
        if todo.any():
            which = np.flatnonzero(todo[frags.block])
            _load_units(
                self.session, self.p, "fragment", which, frags.block[which], frags.pieces[which]
            )
            per, held, pairs = _count(
                self.session, self.params | {"kind": "fragment"}, f, self.grid_pos
            )
            self.session.execute(
                text("DELETE FROM planning_units WHERE p = :p AND kind = 'fragment'"),
                {"p": self.p},
            )
            for k in TERM_NAMES:
                self.per[k] += per[k]
                self.held[k] += held[k]
            for k in _HOMES:
                self.pairs[k] = self.pairs[k].concat(pairs[k])
            self.done |= todo
        return self.per, self.held, self.pairs


def parent_fragments(
    session: Session, parent: Parent, *, res: int, since: datetime, until: datetime
) -> ParentFragments:
    """Cut ``parent`` (less its locked grids) into street blocks and H3 fragments of ``res``,
    and count in each block what it holds over [``since``, ``until``) (incidents) or now
    (households, rental units, all incidents ever), per today's grid for the stability
    figures. What its fragments hold is read when a plan cuts the block (``atoms_of``), in
    the same transaction: keep ``session`` open until the atoms are made."""
    if res not in (9, 10, 11):
        raise InvalidInputError(gettext("atoms: h3_res must be 9, 10 or 11"))
    free = _free_area(parent)
    crs = local_utm(parent.geom)
    roads = shapely.from_wkb(
        [bytes(r[0]) for r in session.execute(_ROADS, {"area": shapely.to_wkb(free)})]
    )
    roads = np.asarray(roads, dtype=object)
    blocks = street_blocks(free, roads, crs)
    grid_ids = parent.free_grids.id.tolist()
    grid_pos = {g: k for k, g in enumerate(grid_ids)}
    _units_table(session)
    p = int(session.execute(_NEXT_PARENT).scalar_one())
    b = len(blocks)
    _load_units(session, p, "block", np.arange(b), np.arange(b), blocks)
    params: dict[str, Any] = {"p": p, "since": since, "until": until}
    per, held, pairs = _count(session, params | {"kind": "block"}, b, grid_pos)
    counter = FragmentCounter(session, p, params, grid_pos, np.zeros(b, dtype=bool))
    return ParentFragments(parent, crs, roads, blocks, res, per, held, pairs, grid_ids, counter)


def block_hours(frags: ParentFragments, weights: Weights, window_days: int) -> np.ndarray:
    """The exact workload of each street block over the window, (b,) hours."""
    return workload_hours(
        frags.per["incident_hours"],
        frags.per["households"],
        frags.per["rental_units"],
        areas_km2(frags.blocks, frags.crs),
        weights,
        window_days,
    )


def atoms_of(
    frags: ParentFragments, split: np.ndarray, weights: Weights, window_days: int
) -> ParentAtoms:
    """The atoms of a parent: each street block whole, or, where ``split`` says so, its H3
    fragments, each weighed by the workload formula (the fragments' figures are read from
    the database the first time their block is cut).

    Parameters
    ----------
    frags : ParentFragments
        The parent's blocks and fragments with what they hold.
    split : numpy.ndarray of bool, shape (b,)
        Which blocks are cut into their fragments.
    weights, window_days
        The workload formula's weights and window.
    """
    b = len(frags.blocks)
    whole = np.flatnonzero(~split)
    if split.any():
        cut = np.flatnonzero(split[frags.block])  # fragments that are atoms of their own
        pieces = np.concatenate([frags.blocks[whole], frags.pieces[cut]])
    else:
        cut = np.zeros(0, dtype=int)
        pieces = frags.blocks[whole]
    # atoms: the whole blocks (in block order), then the fragments of the cut blocks
    block_atom = np.full(b, -1)
    block_atom[whole] = np.arange(len(whole))
    per = {k: v[whole] for k, v in frags.per.items()}
    held = {k: v[whole] for k, v in frags.held.items()}
    pairs = {k: _atoms_rows(v, block_atom) for k, v in frags.pairs.items()}
    if len(cut):
        frag_atom = np.full(len(frags.pieces), -1)
        frag_atom[cut] = len(whole) + np.arange(len(cut))
        f_per, f_held, f_pairs = frags.fragment_terms(split)
        per = {k: np.concatenate([v, f_per[k][cut]]) for k, v in per.items()}
        held = {k: np.concatenate([v, f_held[k][cut]]) for k, v in held.items()}
        for k, v in f_pairs.items():
            pairs[k] = pairs[k].concat(_atoms_rows(v, frag_atom))
    neighbours, lengths = shared_borders(pieces)
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
        neighbours,
        lengths,
        per,
        held,
        pairs,
        frags.grid_ids,
        len(whole),
        frags,
    )


def _atoms_rows(pairs: Pairs, atom: np.ndarray) -> Pairs:
    """``pairs`` of blocks or fragments as rows of the atoms ``atom`` maps them to (-1: none,
    the row is dropped)."""
    unit = atom[pairs.unit]
    keep = unit >= 0
    return Pairs(unit[keep], pairs.key[keep], pairs.grid[keep])

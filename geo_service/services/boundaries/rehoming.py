"""Publishing carries the people (issue 18): grid workers follow their grid to its successor,
one worker a grid where the map allows, and users bound to an area that is gone follow it.

A redrawn community's six workers used to be homed by the point inside their old grid, so
five could land in one new grid and four grids had none. Here each worker goes to the new
grid that shares the most area with their old one, under the constraint that no grid takes
two while another that overlaps goes without: an assignment of workers to new grids that
first covers as many grids as the overlaps allow, then shares the most area (overlap in m²
plus a bonus per overlapping pair larger than all overlap, Kuhn-Munkres via
``scipy.optimize.linear_sum_assignment``), solved per connected group of overlapping grids so
a city-wide redraw stays small problems. Workers left
over (more workers than grids) go to their largest overlap and are listed as sharing a grid;
new grids left without a worker are listed as vacancies, for the planner to settle.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

# Each grid worker's old home grid, and every new grid overlapping it (m², on the spheroid).
# A grid the new version keeps as it was (same code, same polygon: most of them when one
# community is redrawn) is its worker's one overlap, its whole area; only the workers of
# redrawn grids need the polygons intersected.
_OVERLAPS = text(
    """
    WITH workers AS (
        SELECT r.id, r.home_grid_id AS old_grid FROM responders r
        JOIN areas o ON o.id = r.home_grid_id
        WHERE r.kind = 'grid_worker' AND o.version_id = :old),
    same AS (
        SELECT o.id AS old_id, n.id AS new_id, n.area_m2 FROM areas o
        JOIN areas n ON n.version_id = :new AND n.level = 'grid' AND n.code = o.code
        WHERE o.version_id = :old AND o.level = 'grid' AND o.geom ~= n.geom
          AND (ST_AsBinary(o.geom) = ST_AsBinary(n.geom) OR ST_Equals(o.geom, n.geom)))
    SELECT w.id, w.old_grid, s.new_id AS new_grid, coalesce(s.area_m2, 1.0) AS overlap,
           true AS same_code
    FROM workers w JOIN same s ON s.old_id = w.old_grid
    UNION ALL
    SELECT id, old_grid, new_grid, overlap, same_code FROM (
        SELECT w.id, w.old_grid, n.id AS new_grid, n.code = o.code AS same_code,
               ST_Area(ST_Intersection(ST_MakeValid(o.geom), ST_MakeValid(n.geom))::geography)
                 AS overlap,
               least(o.area_m2, n.area_m2) AS smaller
        FROM workers w JOIN areas o ON o.id = w.old_grid
        JOIN areas n ON n.version_id = :new AND n.level = 'grid'
                    AND ST_Intersects(o.geom, n.geom)
                    AND NOT ST_Touches(o.geom, n.geom)
        WHERE w.old_grid NOT IN (SELECT old_id FROM same)) x
    -- a sliver along a redrawn edge is not a grid the worker knows
    WHERE overlap >= :share * coalesce(smaller, overlap)
    ORDER BY 1, 3
    """
)
MIN_OVERLAP_SHARE = 0.05  # of the smaller of the two grids


Row = tuple[int, int, int, float, bool]  # worker, old grid, new grid, overlap m², same code


def assign_workers(rows: list[Row]) -> dict[int, int]:
    """Worker -> new grid from ``(worker, old_grid, new_grid, overlap_m2, same_code)`` rows:
    at most one worker a grid, as many grids covered as the overlaps allow, then as many
    workers as may stay with the new grid that kept their old grid's code (the successor the
    plan names, ``continues``), then the most total overlap, per connected group; workers
    left over take their largest overlap.

    >>> assign_workers([(1, 10, 100, 5.0, False), (1, 10, 101, 4.0, False),
    ...                 (2, 11, 100, 6.0, False)])
    {1: 101, 2: 100}
    >>> assign_workers([(1, 10, 100, 9.0, False), (2, 11, 100, 8.0, False),
    ...                 (2, 11, 101, 1.0, False)])
    {1: 100, 2: 101}
    >>> assign_workers([(1, 10, 100, 5.0, False), (2, 11, 100, 6.0, False)])
    {2: 100, 1: 100}
    >>> assign_workers([(1, 10, 100, 9.0, False), (1, 10, 101, 2.0, True),
    ...                 (2, 11, 100, 1.0, False), (2, 11, 101, 9.0, False)])  # 1 keeps its code
    {1: 101, 2: 100}
    """
    if not rows:
        return {}
    workers = sorted({r[0] for r in rows})
    grids = sorted({r[2] for r in rows})
    w_at = {w: i for i, w in enumerate(workers)}
    g_at = {g: j for j, g in enumerate(grids)}
    n_w = len(workers)
    graph = coo_matrix(
        (np.ones(len(rows)), ([w_at[r[0]] for r in rows], [n_w + g_at[r[2]] for r in rows])),
        shape=(n_w + len(grids), n_w + len(grids)),
    )
    _, component = connected_components(graph, directed=False)
    by_group: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        by_group[int(component[w_at[r[0]]])].append(r)
    home: dict[int, int] = {}
    best: dict[int, tuple[float, int]] = {}
    for r in rows:
        if r[0] not in best or (r[3], -r[2]) > (best[r[0]][0], -best[r[0]][1]):
            best[r[0]] = (r[3], r[2])
    for group in by_group.values():
        ws = sorted({r[0] for r in group})
        gs = sorted({r[2] for r in group})
        weight = np.zeros((len(ws), len(gs)))
        kept = np.zeros((len(ws), len(gs)))
        wi = {w: i for i, w in enumerate(ws)}
        gi = {g: j for j, g in enumerate(gs)}
        for w, _, g, overlap, same_code in group:
            weight[wi[w], gi[g]] = overlap
            kept[wi[w], gi[g]] = float(same_code)
        # as many grids with a worker who knew part of them as the map allows, first; as
        # many workers staying with their grid's code, second; the most overlap, third
        # (each tier's bonus larger than all that the tiers below can add)
        code_bonus = kept * (weight.sum() + 1.0)
        cover = np.where(weight > 0, code_bonus.sum() + weight.sum() + 1.0, 0.0)
        picked_w, picked_g = linear_sum_assignment(weight + code_bonus + cover, maximize=True)
        for i, j in zip(picked_w, picked_g, strict=True):
            if weight[i, j] > 0:
                home[ws[i]] = gs[j]
    for w in workers:  # more workers than grids: the largest overlap, shared
        if w not in home:
            home[w] = best[w][1]
    return home


def _overlap_rows(db: Session | Connection, old_id: int, new_id: int) -> list[Row]:
    return [
        (int(w), int(o), int(n), float(a), bool(c))
        for w, o, n, a, c in db.execute(
            _OVERLAPS, {"old": old_id, "new": new_id, "share": MIN_OVERLAP_SHARE}
        ).all()
    ]


def planned_homes(db: Session | Connection, old_id: int, new_id: int) -> dict[int, int]:
    """Where publishing version ``new_id`` over ``old_id`` would home the grid workers homed
    in ``old_id``: responder id -> grid id of ``new_id`` (``assign_workers`` on today's
    overlaps; workers no new grid covers are left out). Reads only."""
    return assign_workers(_overlap_rows(db, old_id, new_id))


def rehome_grid_workers(conn: Connection, old_id: int | None, new_id: int) -> dict[str, Any]:
    """Move every grid worker homed in the old version to a grid of the new one (see the
    module's docstring) and write their crosswalk rows; return the counts and what the
    planner must settle: ``vacant_grids`` (codes of the new version's grids whose area
    changed, left without a worker, while the city has grid workers) and ``shared_grids``
    (codes homing two or more workers, with their callsigns)."""
    if old_id is None:
        return {
            "total": 0,
            "moved": 0,
            "vacant_grids": [],
            "shared_grids": [],
            "unhomed_workers": [],
            "rehomed": {},
            "old_homes": {},
        }
    # workers of the grids the new version kept as they were already live in it (publishing
    # gave the kept grids their old ids): they stay, counted
    kept = conn.execute(
        text(
            "SELECT count(*) FROM responders r JOIN areas a ON a.id = r.home_grid_id "
            "WHERE r.kind = 'grid_worker' AND a.version_id = :new"
        ),
        {"new": new_id},
    ).scalar_one()
    rows = _overlap_rows(conn, old_id, new_id)
    home = assign_workers(rows)
    old_of = {r[0]: r[1] for r in rows}
    # workers whose old grid no new grid covers: homeless in the new version, and listed
    unhomed = [
        callsign
        for (callsign,) in conn.execute(
            text(
                "UPDATE responders r SET home_grid_id = NULL FROM areas o "
                "WHERE o.id = r.home_grid_id AND o.version_id = :old "
                "AND r.kind = 'grid_worker' AND NOT (r.id = ANY(CAST(:kept AS int[]))) "
                "RETURNING r.callsign"
            ),
            {"old": old_id, "kept": sorted(home)},
        ).all()
    ]
    if home:
        ids = sorted(home)
        conn.execute(
            text(
                "UPDATE responders r SET home_grid_id = t.grid "
                "FROM unnest(CAST(:ids AS int[]), CAST(:grids AS int[])) AS t(id, grid) "
                "WHERE r.id = t.id"
            ),
            {"ids": ids, "grids": [home[i] for i in ids]},
        )
        pairs: dict[tuple[int, int], int] = defaultdict(int)
        for w, g in home.items():
            pairs[(old_of[w], g)] += 1
        conn.execute(
            text(
                "INSERT INTO boundary_crosswalks "
                "(from_version_id, to_version_id, entity, old_grid_id, new_grid_id, count) "
                "SELECT :old, :new, 'responders', o, n, c FROM unnest(CAST(:o AS int[]), "
                "CAST(:n AS int[]), CAST(:c AS int[])) AS t(o, n, c)"
            ),
            {
                "old": old_id,
                "new": new_id,
                "o": [k[0] for k in pairs],
                "n": [k[1] for k in pairs],
                "c": list(pairs.values()),
            },
        )
    moved = conn.execute(
        text(
            "SELECT count(*) FROM unnest(CAST(:ids AS int[]), CAST(:grids AS int[]), "
            "CAST(:olds AS int[])) AS t(id, grid, old) "
            "JOIN areas n ON n.id = t.grid JOIN areas o ON o.id = t.old "
            "WHERE n.code IS DISTINCT FROM o.code"
        ),
        {
            "ids": sorted(home),
            "grids": [home[i] for i in sorted(home)],
            "olds": [old_of[i] for i in sorted(home)],
        },
    ).scalar_one()
    shared = [
        {"code": code, "workers": list(callsigns)}
        for code, callsigns in conn.execute(
            text(
                "SELECT a.code, array_agg(r.callsign ORDER BY r.callsign) FROM responders r "
                "JOIN areas a ON a.id = r.home_grid_id "
                "WHERE r.kind = 'grid_worker' AND a.version_id = :new "
                "GROUP BY a.code HAVING count(*) > 1 ORDER BY a.code"
            ),
            {"new": new_id},
        ).all()
    ]
    vacant = (
        [
            code
            for (code,) in conn.execute(
                text(
                    "SELECT n.code FROM areas n WHERE n.version_id = :new AND n.level = 'grid' "
                    "AND NOT EXISTS (SELECT 1 FROM areas o WHERE o.version_id = :old "
                    "  AND o.code = n.code AND o.geom ~= n.geom "
                    "  AND (ST_AsBinary(o.geom) = ST_AsBinary(n.geom) "
                    "       OR ST_Equals(o.geom, n.geom))) "
                    "AND NOT EXISTS (SELECT 1 FROM responders r WHERE r.home_grid_id = n.id "
                    "  AND r.kind = 'grid_worker') ORDER BY n.code"
                ),
                {"new": new_id, "old": old_id},
            ).all()
        ]
        if home
        else []
    )
    return {
        "total": len(home) + len(unhomed) + int(kept),
        "moved": int(moved) + len(unhomed),
        "vacant_grids": vacant,
        "shared_grids": shared,
        "unhomed_workers": sorted(unhomed),
        "rehomed": {w: home[w] for w in sorted(home)},
        "old_homes": {w: old_of[w] for w in sorted(home)},
    }


def rebind_users(
    conn: Connection,
    old_id: int | None,
    new_id: int,
    rehomed: dict[int, int] | None = None,
    old_homes: dict[int, int] | None = None,
) -> dict[str, list]:
    """Users bound to an area code the new version no longer has: a grid worker's user follows
    their responder's new home grid; any other user the new area of the same level that
    shares the most area with the old one. Returns ``rebound`` (``{user, from, to}``) and
    ``unbound`` (users with no successor: listed, never silently blinded)."""
    rehomed, old_homes = rehomed or {}, old_homes or {}
    if old_id is None:
        return {"rebound": [], "unbound": []}
    stranded = conn.execute(
        text(
            """
            SELECT u.id, u.name, u.area_code,
                   (SELECT a.code FROM responders r JOIN areas a ON a.id = r.home_grid_id
                    WHERE r.id = u.responder_id AND a.version_id = :new
                      AND u.role = 'grid_worker') AS worker_grid,
                   (SELECT n.code FROM areas o JOIN areas n
                      ON n.version_id = :new AND n.level = o.level
                     AND ST_Intersects(o.geom, n.geom) AND NOT ST_Touches(o.geom, n.geom)
                    WHERE o.version_id = :old AND o.code = u.area_code
                    ORDER BY ST_Area(ST_Intersection(ST_MakeValid(o.geom),
                                                     ST_MakeValid(n.geom))::geography) DESC,
                             n.code
                    LIMIT 1) AS successor
            FROM users u
            WHERE u.area_code IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM areas a WHERE a.version_id = :new
                              AND a.code = u.area_code)
            ORDER BY u.id
            """
        ),
        {"old": old_id, "new": new_id},
    ).all()
    rebound, unbound = [], []
    for user_id, name, code, worker_grid, successor in stranded:
        target = worker_grid or successor
        if target is None:
            unbound.append({"user": name, "from": code})
            continue
        conn.execute(
            text("UPDATE users SET area_code = :c WHERE id = :u"), {"c": target, "u": user_id}
        )
        rebound.append({"user": name, "from": code, "to": target})
    # a grid worker this publish re-homed, whose user was bound to their old grid, follows
    # (a binding set on purpose elsewhere is left as it is)
    followed = conn.execute(
        text(
            """
            WITH moved AS (
                SELECT t.id AS responder_id, o.code AS old_code, n.code AS new_code
                FROM unnest(CAST(:ids AS int[]), CAST(:olds AS int[]), CAST(:news AS int[]))
                     AS t(id, old, new)
                JOIN areas o ON o.id = t.old JOIN areas n ON n.id = t.new
                WHERE o.code IS DISTINCT FROM n.code)
            UPDATE users u SET area_code = m.new_code FROM moved m
            WHERE u.responder_id = m.responder_id AND u.role = 'grid_worker'
              AND u.area_code = m.old_code
            RETURNING u.name, m.old_code, m.new_code
            """
        ),
        {
            "ids": sorted(rehomed),
            "olds": [old_homes[w] for w in sorted(rehomed)],
            "news": [rehomed[w] for w in sorted(rehomed)],
        },
    ).all()
    rebound += [{"user": name, "from": old, "to": new} for name, old, new in followed]
    return {"rebound": rebound, "unbound": unbound}

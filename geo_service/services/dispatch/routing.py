"""The road network as a graph (cached in the runtime) and nearest responders by travel time."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.engine import database_name
from geo_service.errors import InvalidInputError
from geo_service.geo.roads import RoadGraph
from geo_service.i18n import gettext
from geo_service.runtime import current, live
from geo_service.services.access.scope import Scope
from geo_service.services.dispatch.responders import NearestQuery, nearest

LOWER_BOUND_SAFETY = 0.99  # projection and rounding slack on "time >= distance / top speed"
MAX_CANDIDATES = 20_000

_LOCK = threading.Lock()  # one build at a time: a graph of a large city takes seconds


def _version(session: Session) -> tuple:
    return tuple(
        session.execute(
            text("SELECT count(*), coalesce(max(id), 0), max(updated_at) FROM road_segments")
        ).one()
    )


def road_graph(session: Session, *, walking_speed_mps: float = 1.4) -> RoadGraph | None:
    """The current network's graph (None without roads), rebuilt when the segments change."""
    database = database_name(session)
    caches = current().caches
    hit = caches.road_graphs.get(database)  # (version, graph)
    if hit is not None and caches.road_checked.get(database):
        return hit[1]
    version = _version(session)
    if hit is not None and hit[0] == version:
        caches.road_checked.put(database, True)
        return hit[1]
    with _LOCK:
        rows = session.execute(
            text("SELECT ST_AsBinary(geom), speed_kmh, oneway, length_m FROM road_segments")
        ).all()
        graph = None
        if rows:
            wkb, speed, oneway, length = zip(*rows, strict=True)
            graph = RoadGraph.build(
                shapely.from_wkb(np.array([bytes(w) for w in wkb], dtype=object)),
                np.array(speed),
                np.array(oneway),
                np.array(length),
                walking_speed_mps=walking_speed_mps,
            )
        caches.road_graphs.put(database, (version, graph))
        caches.road_checked.put(database, True)
    return graph


def forget_graphs() -> None:
    """Drop cached graphs in every runtime of this process (after an import)."""
    for runtime in live():
        runtime.caches.road_graphs.clear()
        runtime.caches.road_checked.clear()


def nearest_by_travel_time(
    session: Session,
    q: NearestQuery,
    *,
    scope: Scope | None,
    stale_s: int,
    walking_speed_mps: float = 1.4,
) -> list[dict[str, Any]]:
    """The ``q.k`` available, fresh responders with the shortest road ETA to (lon, lat).

    Exact: the nearest few by straight line give a k-th best ETA; no one farther than that ETA
    times the top speed can beat it (every ETA is at least distance / top speed), so all
    responders within that radius are ranked once more, and that ranking is final. Ties by
    id. ``max_distance_m`` is a straight-line radius.
    """
    graph = road_graph(session, walking_speed_mps=walking_speed_mps)
    if graph is None:
        raise InvalidInputError(
            gettext(
                "by=travel_time needs a road network, and none is loaded (geo-service import "
                "roads FILE)"
            )
        )

    def ranked(found: list[dict[str, Any]]) -> tuple[list[int], dict]:
        lon = np.array([c["lon"] for c in found])
        lat = np.array([c["lat"] for c in found])
        legs = graph.etas_to(lon, lat, q.lon, q.lat)
        order = sorted(range(len(found)), key=lambda i: (legs["eta_s"][i], found[i]["id"]))
        return order[: q.k], legs

    fetch = max(4 * q.k, 32)
    found = nearest(session, q, scope=scope, stale_s=stale_s, limit=fetch)
    if not found:
        return []
    top, legs = ranked(found)
    kth = float(legs["eta_s"][top[-1]])
    bound = graph.lower_bound_s(found[-1]["distance_m"] * LOWER_BOUND_SAFETY)
    if len(found) == fetch and not (len(top) == q.k and kth <= bound):
        # Whoever could still beat the k-th ETA lies within kth * top speed: fetch all of
        # them (one more query, no repeated widening) and rank again; exact by the bound.
        radius = kth * graph.top_speed_mps / LOWER_BOUND_SAFETY
        if q.max_distance_m is not None:
            radius = min(radius, q.max_distance_m)
        wide = replace(q, max_distance_m=radius if np.isfinite(radius) else q.max_distance_m)
        found = nearest(session, wide, scope=scope, stale_s=stale_s, limit=MAX_CANDIDATES)
        top, legs = ranked(found)
    out = []
    for i in top:
        eta = float(legs["eta_s"][i])
        if not np.isfinite(eta):  # no way there by road (one-way trap, island)
            continue
        out.append(
            {
                **found[i],
                "eta_s": round(eta, 1),
                "eta_basis": "road_network",
                "walk_m": round(float(legs["walk_m"][i]), 1),
                "drive_s": round(float(legs["drive_s"][i]), 1),
            }
        )
    return out

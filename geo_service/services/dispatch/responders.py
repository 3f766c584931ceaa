"""Live responders: positions (batched), status and skills, listing, and the exact nearest.

Nearest is by geodesic distance on the WGS84 ellipsoid (``ST_Distance`` on geography), the
same figure a brute-force ranking computes. The geography index orders by distance on a
sphere, which can differ from the ellipsoid by up to about 0.5%; so the query takes the k-th
sphere distance from the index, fetches everything within 1% more, and ranks that exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from geo_service.db.engine import fetch_one
from geo_service.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from geo_service.geo.crs import to_wgs84
from geo_service.i18n import N_, format_message, gettext
from geo_service.instants import localize_fields
from geo_service.runtime import current
from geo_service.services.access.audit import audited_change_sql, record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox
from geo_service.vocabulary import OPEN_INCIDENT_STATUSES

OFF_DUTY = "off_duty"

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_BATCH = 5000
MAX_K = 100
# Straight-line speeds for an ETA when no road network is asked for (m/s).
STRAIGHT_LINE_SPEED = {
    "grid_worker": 1.4,
    "mediator": 1.4,
    "patrol": 8.0,
    "fire": 10.0,
    "medical": 10.0,
}
SPHERE_MARGIN = 1.01


def visible_grids(scope: Scope | None) -> list[int] | None:
    """The home grids whose responders the caller sees (None: all), for every responder read
    -- the list, the nearest, an incident's candidates -- so no path shows more than another.
    A responder without a home grid is city-wide: only users bound to no area see it.
    """
    return None if scope is None or scope.unrestricted else sorted(scope.grid_ids or ())


@dataclass(frozen=True)
class Position:
    """One reported position of a responder."""

    responder_id: int
    lon: float
    lat: float
    at: datetime  # naive: local time of the deployment

    def __post_init__(self) -> None:
        """Read a naive ``at`` as local time (the API sends it aware)."""
        if self.at.tzinfo is None:
            localize_fields(self, "at")


@dataclass(frozen=True)
class NearestQuery:
    """Where, how many, and which responders. The limits (k in 1..MAX_K, a known kind, a
    positive radius, lon/lat on the globe) are the API's request constraints; internal callers
    build valid queries."""

    lon: float
    lat: float
    k: int = 5
    kind: str | None = None
    skill: str | None = None
    max_distance_m: float | None = None
    # several kinds at once (an incident's needs, ``vocabulary.responder_kinds_for``);
    # None: any. ``kind`` narrows further.
    kinds: tuple[str, ...] | None = None


_KNOWN_RESPONDERS = text(
    "SELECT now(), coalesce(array_agg(id), '{}'), coalesce(array_agg(home_grid_id), '{}') "
    "FROM responders WHERE id = ANY(CAST(:ids AS int[]))"
)
# The newest fix per responder, applied only where newer than the stored one, and the audit
# row, in one statement: atomic in autocommit, one round trip. Nothing at all when a fix lies
# more than the skew ahead of the clock (the database's, or ``:now`` when the clock is held).
_STORE_POSITIONS = text(
    audited_change_sql(
        """
        t AS (SELECT * FROM unnest(CAST(:ids AS int[]), CAST(:lons AS float8[]),
                                   CAST(:lats AS float8[]), CAST(:ats AS timestamptz[]))
                            AS t(id, lon, lat, at)),
        ok AS (SELECT NOT EXISTS (
                 SELECT 1 FROM t WHERE t.at > coalesce(CAST(:now AS timestamptz), now())
                                              + CAST(:skew AS interval))
               AND NOT EXISTS (
                 SELECT 1 FROM responders o
                 WHERE o.id = ANY(CAST(:ids AS int[])) AND o.status = :off_duty) AS ok),
        change AS (
            UPDATE responders r SET position = ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326),
                   position_at = t.at
            FROM t, ok
            WHERE ok.ok AND r.id = t.id AND (r.position_at IS NULL OR r.position_at < t.at)
            RETURNING r.id)
        """,
        "jsonb_build_object('received', CAST(:received AS int), "
        "'updated', (SELECT count(*) FROM change), 'responders', to_jsonb(CAST(:ids AS int[])))",
        when="(SELECT ok FROM ok)",
    )
)


async def record_positions(
    conn: AsyncConnection, positions: list[Position], *, crs: str, scope: Scope, actor: str
) -> dict[str, int]:
    """Store a batch of 1..``MAX_BATCH`` positions (the API's limit), all or nothing, on an
    autocommit connection of the asyncio pool. A position older than the stored one is
    ignored (late delivery). A grid worker may report only their own. One audit row per
    batch: a row per position would bury the log.

    A device reporting its own position (every grid worker's phone, every 30 s: Wuhan's
    16,274 make 540 requests a second) costs one round trip: the change, the clock check and
    the audit row in one statement. Fixes of others first look the responders up (do they
    exist, are they in the caller's area).

    A responder off duty shares no position (privacy: the phone of someone off shift is
    nobody's business): the batch is refused whole.

    Returns ``{"received", "updated", "ignored"}``. Raises PermissionDeniedError (403) when
    a grid worker reports another; ConflictError (409, ``off_duty``: their ids) when a
    responder of the batch is off duty; InvalidInputError (422, one entry per bad position:
    more than ``MAX_CLOCK_SKEW`` ahead of the clock, off the globe, unknown or
    outside the caller's area) and nothing is stored.
    """
    own = scope.principal.responder_id
    if not scope.can("responders:write"):
        if own is None or any(p.responder_id != own for p in positions):
            raise PermissionDeniedError(gettext("a grid worker may report only their own position"))
    errors: list[dict[str, Any]] = []
    lons, lats = to_wgs84([p.lon for p in positions], [p.lat for p in positions], crs)
    for i, (lon, lat) in enumerate(zip(lons, lats, strict=True)):
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            errors.append({"index": i, "error": gettext("lon/lat out of range")})
    ids = sorted({p.responder_id for p in positions})
    if ids != [own]:
        errors += await _unknown_or_future(conn, positions, ids, scope)
    if errors:
        raise InvalidInputError(
            gettext("some positions are invalid; none were stored"), errors=errors
        )
    latest: dict[int, tuple[float, float, datetime]] = {}
    for p, lon, lat in zip(positions, lons, lats, strict=True):
        if p.responder_id not in latest or p.at > latest[p.responder_id][2]:
            latest[p.responder_id] = (float(lon), float(lat), p.at)
    keys = sorted(latest)
    clock = current().clock
    stored = await fetch_one(
        conn,
        _STORE_POSITIONS,
        {
            "ids": keys,
            "lons": [latest[k][0] for k in keys],
            "lats": [latest[k][1] for k in keys],
            "ats": [latest[k][2] for k in keys],
            "now": clock.now(None) if clock.held else None,
            "skew": MAX_CLOCK_SKEW,
            "off_duty": OFF_DUTY,
            "received": len(positions),
            "who": actor,
            "action": "positions",
            "entity": "responder",
            "entity_id": str(keys[0]) if len(keys) == 1 else f"batch of {len(keys)}",
        },
        optional=True,
    )
    if stored is None:  # off duty, or a fix ahead of the clock: nothing was written; say which
        off = await fetch_one(conn, _OFF_DUTY, {"ids": keys, "off_duty": OFF_DUTY})
        if off[0]:
            raise ConflictError(
                format_message(
                    "responder {ids} is off duty: a phone shares no position off duty; "
                    "none were stored",
                    ids=", ".join(str(i) for i in off[0]),
                ),
                off_duty=list(off[0]),
            )
        errors = await _unknown_or_future(conn, positions, ids, scope)
        raise InvalidInputError(
            gettext("some positions are invalid; none were stored"), errors=errors
        )
    updated = int(stored[0]["updated"])
    return {"received": len(positions), "updated": updated, "ignored": len(positions) - updated}


_OFF_DUTY = text(
    "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM responders "
    "WHERE id = ANY(CAST(:ids AS int[])) AND status = :off_duty"
)


async def _unknown_or_future(
    conn: AsyncConnection, positions: list[Position], ids: list[int], scope: Scope
) -> list[dict[str, Any]]:
    """Errors for fixes of responders that do not exist or lie outside the caller's area
    (worded alike: ids outside the area cannot be probed), and for fixes ahead of the clock."""
    db_now, known, homes = await fetch_one(conn, _KNOWN_RESPONDERS, {"ids": ids})
    clock = current().clock
    now = clock.now(None) if clock.held else db_now
    home: dict[int, int | None] = dict(zip(known, homes, strict=True))
    errors = []
    for i, p in enumerate(positions):
        if p.at.tzinfo is not None and p.at > now + MAX_CLOCK_SKEW:
            errors.append({"index": i, "error": gettext("at lies in the future")})
        if p.responder_id not in home or not scope.commands_responder(
            p.responder_id, home[p.responder_id]
        ):
            errors.append(
                {
                    "index": i,
                    "error": format_message(
                        "no responder {responder_id}", responder_id=p.responder_id
                    ),
                }
            )
    return errors


def update_responder(
    session: Session,
    responder_id: int,
    *,
    status: str | None,
    skills: list[str] | None,
    scope: Scope,
    actor: str,
    fixed: bool | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Change a responder's status, skills and/or ``fixed`` (a station: never stale); a grid
    worker may change only their own status.

    A responder outside the caller's area answers 404 like a missing one. One open incident
    per responder: while it holds one, it cannot become ``available`` (whatever its status
    now, so busy -> off_duty -> available cannot launder an assignment); 409 says why.
    Going ``off_duty`` while holding incidents it has taken on (accepted, on scene) is a 409
    naming them (``incidents``): a dispatcher wants them handed over (reassign) or finished
    first, not left with someone who has gone home. A dispatcher may ``force`` it (the
    incidents stay assigned and show in the console; the audit row names them); a grid
    worker may not (403).
    """
    if not scope.can("responders:write"):  # the role first: no lookup, nothing revealed
        if (
            scope.principal.responder_id != responder_id
            or skills is not None
            or fixed is not None
            or force
        ):
            raise PermissionDeniedError(gettext("a grid worker may change only their own status"))
    before = _row(session, responder_id, lock=True)
    if not scope.commands_responder(responder_id, before["home_grid_id"]):
        raise NotFoundError(
            format_message("responder {responder_id} does not exist", responder_id=responder_id)
        )
    holding = _assigned(session, responder_id) if status == "available" else None
    if holding is not None:
        raise ConflictError(
            format_message(
                "responder {responder_id} is assigned to an open incident: it becomes available "
                "when the incident is resolved or cancelled",
                responder_id=responder_id,
            ),
            assigned=True,
        )
    if (
        status == "busy"
        and not scope.can("responders:write")
        and _assigned(session, responder_id) is None
    ):
        # busy means holding an open incident: a grid worker idle but on duty is available
        # (busy with nothing would hide them from dispatch; a dispatcher may still set it)
        raise ConflictError(
            format_message(
                "responder {responder_id} holds no open incident: on duty without one is available",
                responder_id=responder_id,
            ),
            assigned=False,
        )
    held = (
        _held(session, responder_id) if status == OFF_DUTY and before["status"] != OFF_DUTY else []
    )
    if held and not force:
        raise ConflictError(
            format_message(
                "responder {id} holds incidents it has taken on ({incidents}): reassign or "
                "finish them before going off duty, or send force",
                id=responder_id,
                incidents=", ".join(i["id"] for i in held),
            ),
            incidents=held,
        )
    session.execute(
        text(
            "UPDATE responders SET status = coalesce(:status, status), "
            "skills = coalesce(CAST(:skills AS text[]), skills), "
            "fixed = coalesce(CAST(:fixed AS boolean), fixed) WHERE id = :id"
        ),
        {"status": status, "skills": skills, "fixed": fixed, "id": responder_id},
    )
    after = _row(session, responder_id)
    record_audit(
        session,
        who=actor,
        action="update",
        entity="responder",
        entity_id=str(responder_id),
        diff={
            "before": {k: before[k] for k in ("status", "skills", "fixed")},
            "after": {k: after[k] for k in ("status", "skills", "fixed")},
            **({"forced_off_duty_holding": [i["id"] for i in held]} if held else {}),
        },
    )
    session.commit()
    return after


def _assigned(session: Session, responder_id: int) -> Any:
    """The open incident the responder holds (its id), or None."""
    return session.execute(
        text("SELECT id FROM incidents WHERE responder_id = :r AND status = ANY(:open) LIMIT 1"),
        {"r": responder_id, "open": list(OPEN_INCIDENT_STATUSES)},
    ).scalar_one_or_none()


# The stages in which a responder has taken an incident on (accepted it, or is on scene):
# going off duty then leaves a job half done. A dispatched one not yet accepted may be left
# (the dispatch target escalates it, and the console shows whom it waits for).
TAKEN_ON_STATUSES = ("accepted", "on_scene")


def _held(session: Session, responder_id: int) -> list[dict[str, str]]:
    """The incidents the responder has taken on (``TAKEN_ON_STATUSES``): ``[{id, status}]``,
    oldest report first."""
    rows = session.execute(
        text(
            "SELECT CAST(id AS text) AS id, status FROM incidents "
            "WHERE responder_id = :r AND status = ANY(:taken) ORDER BY reported_at, id"
        ),
        {"r": responder_id, "taken": list(TAKEN_ON_STATUSES)},
    ).mappings()
    return [dict(r) for r in rows]


_COLUMNS = """
    r.id, r.callsign, r.kind, r.status, r.skills, r.home_grid_id, g.code AS home_grid_code,
    ST_X(r.position) AS lon, ST_Y(r.position) AS lat, r.position_at, r.fixed,
    CAST(extract(epoch FROM CAST(:now AS timestamptz) - r.position_at) AS float8) AS position_age_s
"""


def _as_dict(m: Any) -> dict[str, Any]:
    return {
        "id": m["id"],
        "callsign": m["callsign"],
        "kind": m["kind"],
        "status": m["status"],
        "skills": list(m["skills"] or []),
        "home_grid_id": m["home_grid_id"],
        "home_grid_code": m["home_grid_code"],
        "lon": m["lon"],
        "lat": m["lat"],
        "position_at": m["position_at"].isoformat() if m["position_at"] else None,
        "position_age_s": None if m["position_age_s"] is None else round(m["position_age_s"], 1),
        "fixed": bool(m["fixed"]),
    }


def _row(session: Session, responder_id: int, *, lock: bool = False) -> dict[str, Any]:
    row = (
        session.execute(
            text(
                f"SELECT {_COLUMNS} FROM responders r LEFT JOIN areas g ON g.id = r.home_grid_id "
                f"WHERE r.id = :id {'FOR UPDATE OF r' if lock else ''}"
            ),
            {"id": responder_id, "now": current().clock.now(session)},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(
            format_message("responder {responder_id} does not exist", responder_id=responder_id)
        )
    return _as_dict(row)


def list_responders(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    bbox: BBox | None = None,
    scope: Scope,
    stale_s: int,
) -> dict[str, Any]:
    """Responders in the caller's jurisdiction as GeoJSON, with position age and staleness."""
    rows = (
        session.execute(
            text(
                f"SELECT {_COLUMNS} FROM responders r LEFT JOIN areas g ON g.id = r.home_grid_id "
                "WHERE (CAST(:status AS text) IS NULL OR r.status = :status) "
                "AND (CAST(:kind AS text) IS NULL OR r.kind = :kind) "
                "AND (CAST(:grids AS int[]) IS NULL OR r.home_grid_id = ANY(:grids)) "
                "AND (CAST(:minx AS float8) IS NULL OR r.position && "
                "     ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)) "
                "ORDER BY r.id"
            ),
            {
                "now": current().clock.now(session),
                "status": status,
                "kind": kind,
                "grids": visible_grids(scope),
                "minx": bbox.minx if bbox else None,
                "miny": bbox.miny if bbox else None,
                "maxx": bbox.maxx if bbox else None,
                "maxy": bbox.maxy if bbox else None,
            },
        )
        .mappings()
        .all()
    )
    features = []
    for m in rows:
        props = _as_dict(m)
        age = props["position_age_s"]
        # a station's position is where it stands: never stale
        props["stale"] = age is None or (age > stale_s and not props["fixed"])
        geometry = (
            None
            if props["lon"] is None
            else {"type": "Point", "coordinates": [props["lon"], props["lat"]]}
        )
        features.append(
            {"type": "Feature", "id": props["id"], "geometry": geometry, "properties": props}
        )
    return {"type": "FeatureCollection", "features": features}


_FILTERS = """
    r.status = 'available' AND r.position IS NOT NULL
    AND (r.fixed OR r.position_at >= CAST(:now AS timestamptz) - make_interval(secs => :stale))
    AND (CAST(:kind AS text) IS NULL OR r.kind = :kind)
    AND (CAST(:kinds AS text[]) IS NULL OR r.kind = ANY(CAST(:kinds AS text[])))
    AND (CAST(:skill AS text) IS NULL OR :skill = ANY(r.skills))
    AND (CAST(:grids AS int[]) IS NULL OR r.home_grid_id = ANY(:grids))
    AND NOT r.id = ANY(:exclude)
"""
_POINT = "CAST(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geography)"


# why responders were not offered, in the order a dispatcher checks (``why_none``)
_NOT_OFFERED_PARTS = (
    ("busy", N_("{n} busy")),
    ("off_duty", N_("{n} off duty")),
    ("no_position", N_("{n} without a position")),
    ("stale", N_("{n} with a position older than {stale_s} s")),
    ("too_far", N_("{n} farther than the distance limit")),
)


def why_none(
    session: Session,
    q: NearestQuery,
    *,
    scope: Scope | None,
    stale_s: int,
    found: int = 0,
) -> dict[str, Any]:
    """Why the responders of the query's kind, skill and area were not offered: counts by
    the first reason that rules each out, in the order a dispatcher would check them.

    Returns
    -------
    dict
        ``matching`` (responders of that kind/skill/area), ``busy``, ``off_duty``,
        ``no_position``, ``stale`` (position older than ``stale_s`` seconds),
        ``too_far`` (beyond ``max_distance_m``), ``offered`` (= ``found``) and ``message``,
        one plain sentence.
    """
    row = (
        session.execute(
            text(
                f"""
                SELECT count(*) AS matching,
                  count(*) FILTER (WHERE r.status = 'busy') AS busy,
                  count(*) FILTER (WHERE r.status = 'off_duty') AS off_duty,
                  count(*) FILTER (WHERE r.status = 'available' AND r.position IS NULL)
                    AS no_position,
                  count(*) FILTER (WHERE r.status = 'available' AND r.position IS NOT NULL
                    AND NOT r.fixed
                    AND r.position_at < CAST(:now AS timestamptz)
                                        - make_interval(secs => :stale)) AS stale,
                  count(*) FILTER (WHERE r.status = 'available' AND r.position IS NOT NULL
                    AND (r.fixed OR r.position_at >= CAST(:now AS timestamptz)
                                                     - make_interval(secs => :stale))
                    AND CAST(:radius AS float8) IS NOT NULL
                    AND NOT ST_DWithin(CAST(r.position AS geography), {_POINT}, :radius))
                    AS too_far
                FROM responders r
                WHERE (CAST(:kind AS text) IS NULL OR r.kind = :kind)
                  AND (CAST(:kinds AS text[]) IS NULL OR r.kind = ANY(CAST(:kinds AS text[])))
                  AND (CAST(:skill AS text) IS NULL OR :skill = ANY(r.skills))
                  AND (CAST(:grids AS int[]) IS NULL OR r.home_grid_id = ANY(:grids))
                """
            ),
            {
                "now": current().clock.now(session),
                "lon": q.lon,
                "lat": q.lat,
                "stale": stale_s,
                "radius": q.max_distance_m,
                "kind": q.kind,
                "kinds": list(q.kinds) if q.kinds is not None else None,
                "skill": q.skill,
                "grids": visible_grids(scope),
            },
        )
        .mappings()
        .one()
    )
    counts = {k: int(v) for k, v in row.items()}
    # one plain sentence in the caller's language (the counts are the stable part)
    parts = [
        format_message(label, n=counts[key], stale_s=stale_s)
        for key, label in _NOT_OFFERED_PARTS
        if counts[key]
    ]
    if counts["matching"] == 0:
        message = gettext("no responder of this kind and skill in your area")
    elif parts:
        message = format_message(
            "of {matching} responders, {reasons}",
            matching=counts["matching"],
            reasons=gettext(", ").join(parts),
        )
    else:
        message = format_message(
            "all {matching} responders of this kind and skill are offered",
            matching=counts["matching"],
        )
    return {**counts, "offered": found, "message": message}


def _knn_bound(session: Session, params: dict[str, Any]) -> tuple[float | None, int]:
    """The index's k nearest on the sphere: their largest distance bounds the search."""
    row = session.execute(
        text(
            f"SELECT max(d), count(*) FROM (SELECT CAST(r.position AS geography) <-> {_POINT} "
            f"AS d FROM responders r WHERE {_FILTERS} "
            f"ORDER BY CAST(r.position AS geography) <-> {_POINT} LIMIT :k) x"
        ),
        params,
    ).one()
    return row[0], row[1]


def nearest(
    session: Session,
    q: NearestQuery,
    *,
    scope: Scope | None,
    stale_s: int,
    exclude: tuple[int, ...] = (),
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The ``q.k`` (or ``limit``) nearest available, fresh responders, exactly ranked by
    geodesic distance (ties by id), each with ``distance_m`` and a straight-line ``eta_s``.
    """
    k = limit or q.k
    params: dict[str, Any] = {
        "now": current().clock.now(session),
        "lon": q.lon,
        "lat": q.lat,
        "k": k,
        "stale": stale_s,
        "kind": q.kind,
        "kinds": list(q.kinds) if q.kinds is not None else None,
        "skill": q.skill,
        "grids": visible_grids(scope),
        "exclude": list(exclude),
    }
    if q.max_distance_m is not None and k > MAX_K:
        # Everyone within a radius (an internal caller's wide net): the radius is the bound,
        # and walking k index entries in distance order first would cost more than it saves.
        bound: tuple[float | None, int] = (q.max_distance_m, 0)
    else:
        bound = _knn_bound(session, params)
    radius = None if bound[1] < k or bound[0] is None else float(bound[0]) * SPHERE_MARGIN + 0.01
    if q.max_distance_m is not None:
        radius = min(radius or q.max_distance_m * SPHERE_MARGIN, q.max_distance_m * SPHERE_MARGIN)
    params.update(radius=radius, max_d=q.max_distance_m)
    # 2. Everything within that bound (1% above it), ranked on the ellipsoid.
    rows = (
        session.execute(
            text(
                f"SELECT * FROM (SELECT {_COLUMNS}, "
                f"ST_Distance(CAST(r.position AS geography), {_POINT}) AS distance_m "
                "FROM responders r LEFT JOIN areas g ON g.id = r.home_grid_id "
                f"WHERE {_FILTERS} AND (CAST(:radius AS float8) IS NULL OR "
                f"ST_DWithin(CAST(r.position AS geography), {_POINT}, :radius, false))) x "
                "WHERE CAST(:max_d AS float8) IS NULL OR distance_m <= :max_d "
                "ORDER BY distance_m, id LIMIT :k"
            ),
            params,
        )
        .mappings()
        .all()
    )
    out = []
    for m in rows:
        item = _as_dict(m)
        item["distance_m"] = round(float(m["distance_m"]), 2)
        item["eta_s"] = round(item["distance_m"] / STRAIGHT_LINE_SPEED[item["kind"]], 1)
        item["eta_basis"] = "straight_line"
        out.append(item)
    return out

"""Generate the demo city, write its boundary files, and bulk-load it into the database."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from geo_service.db.bulk import (
    copy_frame,
    ewkb_hex,
    lift_statement_timeout,
    point_ewkb_hex,
    reserve_ids,
)
from geo_service.db.models import BoundaryVersion
from geo_service.db.sql import sql
from geo_service.demo.city import DemoCity, Progress, generate_city
from geo_service.demo.geography import LEVELS
from geo_service.demo.incidents import ARRIVAL_TARGET_S, IN_FLIGHT, STAMPS, demote
from geo_service.geo.h3cells import RESIDENT_RESOLUTIONS, cells_for_points, exact_cells
from geo_service.geo.roads import line_lengths_m
from geo_service.services.access.audit import record_audit
from geo_service.vocabulary import OPEN_INCIDENT_STATUSES

DEMO_VERSION_NAME = "Demo city"
DEMO_EFFECTIVE_FROM = datetime(2020, 1, 1, tzinfo=UTC)
LEVEL_FILES = {
    "district": "districts",
    "street": "streets",
    "community": "communities",
    "grid": "grids",
}


def database_is_empty(engine: Engine) -> bool:
    """True when no boundary version exists yet."""
    with engine.connect() as conn:
        return conn.execute(select(BoundaryVersion.id).limit(1)).first() is None


STALE_BACKLOG_H = 24  # a demo restarted later closes what its city would have closed


def close_stale_backlog(engine: Engine, *, older_than_h: float = STALE_BACKLOG_H) -> int:
    """Close the open incidents of a restarted demo older than ``older_than_h`` hours (and
    free their responders), with one audit row: a demo database served again days later
    would otherwise escalate its whole old backlog to district level within minutes. Only
    ``geo-service demo`` calls this, never a deployment."""
    with engine.begin() as conn:
        count, freed = conn.execute(
            text(
                "WITH old AS (UPDATE incidents SET status = 'closed', closed_at = now(), "
                "updated_at = now() WHERE status = ANY(:open) "
                "AND reported_at < now() - make_interval(hours => :h) "
                "RETURNING id, responder_id), "
                "freed AS (UPDATE responders SET status = 'available' WHERE id IN "
                "(SELECT responder_id FROM old WHERE responder_id IS NOT NULL) "
                "AND status = 'busy' RETURNING id) "
                "SELECT (SELECT count(*) FROM old), (SELECT count(*) FROM freed)"
            ),
            {"open": list(OPEN_INCIDENT_STATUSES), "h": older_than_h},
        ).one()
        if count:
            record_audit(
                conn,
                who="system",
                action="close_stale_demo_backlog",
                entity="incident",
                entity_id="*",
                diff={"closed": count, "responders_freed": freed, "older_than_h": older_than_h},
            )
    return int(count)


def write_boundary_files(city: DemoCity, out_dir: Path) -> list[Path]:
    """Write one GeoJSON per level (WGS84, 7 decimals) plus the planted hotspots; each area
    with its Chinese name in ``name_zh`` (what a boundary import reads into ``names``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    columns = ["code", "name", "name_zh", "level", "parent_code", "area_m2", "geometry"]
    for level in LEVELS:
        frame = city.areas[city.areas.level == level][
            [c for c in columns if c in city.areas]
        ].copy()
        frame["area_m2"] = frame.area_m2.round(1)
        path = out_dir / f"{LEVEL_FILES[level]}.geojson"
        path.unlink(missing_ok=True)
        frame.to_file(
            path,
            driver="GeoJSON",
            engine="pyogrio",
            layer_options={"COORDINATE_PRECISION": 7, "RFC7946": "YES"},
        )
        written.append(path)
    hotspots = out_dir / "planted_hotspots.json"
    hotspots.write_text(
        json.dumps(
            {
                "seed": city.seed,
                "days": (city.end - city.start).days,
                "note": "incidents end on the day the city is generated",
                "hotspots": [asdict(h) for h in city.hotspots],
            },
            indent=2,
        )
        + "\n"
    )
    written.append(hotspots)
    return written


def load_city(engine: Engine, city: DemoCity, *, progress=None) -> dict[str, int]:
    """Bulk-load the city into an empty database in one transaction; return row counts."""
    advance = progress or (lambda step, n: None)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        lift_statement_timeout(conn)
        version_id = conn.execute(
            text(
                "INSERT INTO boundary_versions (name, status, effective_from, notes) "
                "VALUES (:name, 'published', :eff, :notes) RETURNING id"
            ),
            {
                "name": DEMO_VERSION_NAME,
                "eff": DEMO_EFFECTIVE_FROM,
                "notes": f"geo-service demo generate --seed {city.seed}",
            },
        ).scalar_one()

        areas = city.areas.reset_index(drop=True)
        ids = reserve_ids(conn, "areas_id_seq", len(areas))
        id_by_code = dict(zip(areas.code, ids.tolist(), strict=True))
        geoms = np.array([_as_multi(g) for g in areas.geometry.values], dtype=object)
        area_rows = pd.DataFrame(
            {
                "id": ids,
                "version_id": version_id,
                "level": areas.level.values,
                "code": areas.code.values,
                "name": areas.name.values,
                "parent_id": pd.array(
                    [id_by_code.get(c) for c in areas.parent_code], dtype="Int64"
                ),
                "geom": ewkb_hex(geoms),
                "area_m2": areas.area_m2.round(2).values,
            }
        )
        # Parents first so the self-referencing foreign key holds row by row.
        area_rows["depth"] = area_rows.level.map({lv: i for i, lv in enumerate(LEVELS)})
        area_rows = area_rows.sort_values("depth", kind="stable").drop(columns="depth")
        counts["areas"] = copy_frame(conn, "areas", area_rows)
        # every area's name per language: the romanized one and its Chinese (demo/geography)
        zh = areas["name_zh"] if "name_zh" in areas else pd.Series(None, index=areas.index)
        names = [
            json.dumps(
                {"en": en, **({"zh-CN": cn} if isinstance(cn, str) else {})}, ensure_ascii=False
            )
            for en, cn in zip(areas.name, zh, strict=True)
        ]
        conn.execute(
            text(
                "UPDATE areas a SET names = CAST(n.names AS jsonb) "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:names AS text[])) AS n(id, names) "
                "WHERE a.id = n.id"
            ),
            {"ids": [int(i) for i in ids], "names": names},
        )
        advance("areas", counts["areas"])

        hh = city.households
        counts["households"] = copy_frame(
            conn,
            "households",
            pd.DataFrame(
                {
                    "location": point_ewkb_hex(hh.lon.values, hh.lat.values),
                    "household_size": hh.household_size.values,
                    "grid_id": hh.grid_code.map(id_by_code).values,
                    "h3": cells_for_points(hh.lon.values, hh.lat.values),
                    **exact_cells(hh.lon.values, hh.lat.values, RESIDENT_RESOLUTIONS),
                    "elderly_living_alone": hh.elderly_living_alone.values,
                    "needs_assistance": hh.needs_assistance.values,
                    "address": hh.address.values,
                }
            ),
            progress=lambda n: advance("households", n),
        )

        ru = city.rental_units
        counts["rental_units"] = copy_frame(
            conn,
            "rental_units",
            pd.DataFrame(
                {
                    "location": point_ewkb_hex(ru.lon.values, ru.lat.values),
                    "unit_count": ru.unit_count.values,
                    "occupants": ru.occupants.values,
                    "registered_at": ru.registered_at.array,
                    "status": ru.status.values,
                    "landlord_ref": ru.landlord_ref.values,
                    "grid_id": ru.grid_code.map(id_by_code).values,
                    "h3": cells_for_points(ru.lon.values, ru.lat.values),
                    **exact_cells(ru.lon.values, ru.lat.values, RESIDENT_RESOLUTIONS),
                }
            ),
            progress=lambda n: advance("rental units", n),
        )

        rs = city.responders
        now = pd.Timestamp.now(tz="UTC").floor("s")
        counts["responders"] = copy_frame(
            conn,
            "responders",
            pd.DataFrame(
                {
                    "callsign": rs.callsign.values,
                    "kind": rs.kind.values,
                    "home_grid_id": pd.array(
                        [id_by_code.get(c) for c in rs.home_grid_code], dtype="Int64"
                    ),
                    "status": rs.status.values,
                    "position": point_ewkb_hex(rs.lon.values, rs.lat.values),
                    "position_at": now - pd.to_timedelta(rs.position_age_s.values, unit="s"),
                    "skills": rs.skills.values,  # text[]: copy_frame binds each list
                }
            ),
        )
        advance("responders", counts["responders"])
        id_by_callsign = _responder_ids(conn)

        counts["incidents"] = copy_frame(
            conn,
            "incidents",
            _incident_rows(city.incidents, id_by_code, id_by_callsign),
            progress=lambda n: advance("incidents", n),
        )
        counts["incident_escalations"] = record_generated_escalations(conn)
        set_arrival_targets(conn)

        if city.roads is not None and len(city.roads):
            roads = city.roads.reset_index(drop=True)
            counts["road_segments"] = copy_frame(
                conn,
                "road_segments",
                pd.DataFrame(
                    {
                        "external_ref": "demo:" + roads.index.astype(str),
                        "name": roads["name"].values,
                        "class": roads["class"].values,
                        "speed_kmh": roads.speed_kmh.values,
                        "oneway": roads.oneway.values,
                        "length_m": line_lengths_m(roads.geometry.values),
                        "geom": ewkb_hex(roads.geometry.values),
                    }
                ),
            )
            advance("roads", counts["road_segments"])

        record_audit(
            conn,
            who="system",
            action="load_demo",
            entity="boundary_version",
            entity_id=str(version_id),
            diff=counts,
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    return counts


def record_generated_escalations(conn: Connection) -> int:
    """The escalation history (``incident_escalations``) of generated incidents: one row per
    level each climbed (escalation climbs one level at a time) at its report, since the
    generator draws levels, not moments; incidents that have their rows are left alone.
    Returns the rows written."""
    return int(conn.execute(sql("escalations_from_levels")).rowcount or 0)


_VISIT_EPOCH = date(2000, 1, 1)
# Each household is visited every 30..179 days (its cycle), from a phase of its own, both
# drawn from its id: a grid worker's round. One visit in twelve finds nobody at home.
_GENERATED_VISITS = text(
    """
    INSERT INTO household_visits (household_id, visited_on, outcome)
    SELECT h.id, CAST(:epoch AS date) + (p.phase + k * p.cycle),
           CASE WHEN abs(hashtext('outcome:' || h.id || ':' || k)) % 12 = 0
                THEN 'no_answer' ELSE 'met' END
    FROM households h
    CROSS JOIN LATERAL (SELECT 30 + abs(hashtext('cycle:' || h.id)) % 150 AS cycle,
                               abs(hashtext('phase:' || h.id)) % 180 AS phase) p
    CROSS JOIN LATERAL generate_series(
        CAST(ceil((:first - p.phase)::numeric / p.cycle) AS int),
        CAST(floor((:last - p.phase)::numeric / p.cycle) AS int)) AS k
    """
)


def record_generated_visits(conn: Connection, *, first: date, last: date) -> int:
    """The grid workers' household visits of the demo from local day ``first`` to ``last``
    (both included): each household on a round of its own (every 30..179 days, drawn from
    its id, so the same days whenever generated; one visit in twelve finds nobody), so the
    visit coverage of the reports and ``/households/visits/coverage`` has a history. Only
    ``geo-service demo`` calls this. Returns the visits written."""
    if last < first:
        return 0
    n = int(
        conn.execute(
            _GENERATED_VISITS,
            {
                "epoch": _VISIT_EPOCH,
                "first": (first - _VISIT_EPOCH).days,
                "last": (last - _VISIT_EPOCH).days,
            },
        ).rowcount
        or 0
    )
    record_audit(
        conn,
        who="system",
        action="generate_visits",
        entity="household_visit",
        entity_id=None,
        diff={"first": first.isoformat(), "last": last.isoformat(), "visits": n},
    )
    return n


def set_arrival_targets(conn: Connection) -> None:
    """Give the demo taxonomy its arrival targets (``ARRIVAL_TARGET_S``) where a category has
    none, so the reports' arrival stage is measured; a target set by hand stays."""
    conn.execute(
        text(
            "UPDATE categories SET response_target_s = :s "
            "WHERE code = :c AND response_target_s IS NULL"
        ),
        [{"c": code, "s": seconds} for code, seconds in ARRIVAL_TARGET_S.items()],
    )


def _responder_ids(conn: Connection) -> dict[str, int]:
    """Responder ids by callsign."""
    return {c: i for c, i in conn.execute(text("SELECT callsign, id FROM responders"))}


def _incident_rows(
    inc: pd.DataFrame, id_by_code: dict[str, int], id_by_callsign: dict[str, int]
) -> pd.DataFrame:
    """The ``incidents`` table's columns for generated incidents."""
    sent = inc["responder_callsign"] if "responder_callsign" in inc else pd.Series(index=inc.index)
    return pd.DataFrame(
        {
            "category": inc.category.values,
            "priority": inc.priority.values,
            "status": inc.status.values,
            "description": inc.description.values,
            "source": inc.source.values,
            "reported_at": inc.reported_at.array,
            "location": point_ewkb_hex(inc.lon.values, inc.lat.values),
            "h3": cells_for_points(inc.lon.values, inc.lat.values),
            **exact_cells(inc.lon.values, inc.lat.values),
            "grid_id": inc.grid_code.map(id_by_code).values,
            # the lifecycle the generator drew (the managers' reports read it)
            **{column: inc[column].array for column in (*STAMPS, "cancelled_at") if column in inc},
            **{c: inc[c].values for c in ("escalation_level", "outcome") if c in inc},
            **({"escalated_at": inc["escalated_at"].array} if "escalated_at" in inc else {}),
            "responder_id": pd.array(sent.map(id_by_callsign).to_numpy(), dtype="Int64"),
        }
    )


# What ``repair_history`` runs, in order: each statement bound, none built from values.
_HOLDS = (
    "EXISTS (SELECT 1 FROM incidents h WHERE h.responder_id = r.id AND h.status = ANY(:in_flight))"
)
_REPAIRS = {
    # in flight with nobody on it: the grid's worker when it holds no open incident ...
    "assigned": "WITH orphan AS (SELECT DISTINCT ON (r.id) i.id AS incident_id, r.id AS rid "
    "FROM incidents i JOIN responders r ON r.home_grid_id = i.grid_id "
    "AND r.kind = 'grid_worker' "
    "WHERE i.status = ANY(:in_flight) AND i.responder_id IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM incidents o WHERE o.responder_id = r.id "
    "AND o.status = ANY(:open)) "
    "ORDER BY r.id, i.reported_at) "
    "UPDATE incidents i SET responder_id = orphan.rid, updated_at = now() "
    "FROM orphan WHERE i.id = orphan.incident_id",
    # ... else back to a report waiting for someone
    "back_to_reported": "UPDATE incidents SET status = 'reported', dispatched_at = NULL, "
    "accepted_at = NULL, arrived_at = NULL, updated_at = now() "
    "WHERE status = ANY(:in_flight) AND responder_id IS NULL",
    # the stamps a status implies, where the history lacks them (at the last stamp it has)
    "stamped": "UPDATE incidents SET "
    "dispatched_at = CASE WHEN status = ANY(:in_flight) "
    "THEN coalesce(dispatched_at, reported_at) ELSE dispatched_at END, "
    "accepted_at = CASE WHEN status = ANY(:taken) "
    "THEN coalesce(accepted_at, dispatched_at, reported_at) ELSE accepted_at END, "
    "arrived_at = CASE WHEN status = 'on_scene' "
    "THEN coalesce(arrived_at, accepted_at, dispatched_at, reported_at) ELSE arrived_at END, "
    "resolved_at = CASE WHEN status = 'resolved' THEN coalesce(resolved_at, "
    "greatest(reported_at, dispatched_at, accepted_at, arrived_at)) ELSE resolved_at END, "
    "closed_at = CASE WHEN status = 'closed' THEN coalesce(closed_at, "
    "greatest(reported_at, dispatched_at, accepted_at, arrived_at, resolved_at)) "
    "ELSE closed_at END, "
    "cancelled_at = CASE WHEN status = 'cancelled' THEN coalesce(cancelled_at, "
    "greatest(reported_at, dispatched_at, accepted_at)) ELSE cancelled_at END, "
    "updated_at = now() "
    "WHERE (status = ANY(:in_flight) AND dispatched_at IS NULL) "
    "OR (status = ANY(:taken) AND accepted_at IS NULL) "
    "OR (status = 'on_scene' AND arrived_at IS NULL) "
    "OR (status = 'resolved' AND resolved_at IS NULL) "
    "OR (status = 'closed' AND closed_at IS NULL) "
    "OR (status = 'cancelled' AND cancelled_at IS NULL)",
    # an escalated incident says when: its last climb in the history, else its report
    "escalated_at": "UPDATE incidents i SET escalated_at = coalesce((SELECT max(e.at) "
    "FROM incident_escalations e WHERE e.incident_id = i.id), i.reported_at) "
    "WHERE i.escalation_level > 0 AND i.escalated_at IS NULL",
    # busy exactly while holding an incident in flight
    "freed": f"UPDATE responders r SET status = 'available' WHERE r.status = 'busy' "
    f"AND NOT {_HOLDS}",
    "busied": f"UPDATE responders r SET status = 'busy' WHERE r.status <> 'busy' AND {_HOLDS}",
}


def repair_history(conn: Connection) -> dict[str, int]:
    """Make a demo database's incidents agree with their status, as the service would have
    left them (a history generated before the generator kept them so, or cut short): every
    incident in flight (``IN_FLIGHT``) has a responder (the grid's worker when free, else it
    goes back to ``reported``) and the stamps its status implies, an escalated one its
    ``escalated_at``, and a responder is ``busy`` exactly while it holds one in flight.
    Returns the rows changed per step (one audit row when any). Only ``geo-service demo``
    calls this, never a deployment."""
    params = {
        "in_flight": list(IN_FLIGHT),
        "taken": [s for s in IN_FLIGHT if s != "dispatched"],  # accepted, on scene
        "open": list(OPEN_INCIDENT_STATUSES),
    }
    changed = {step: int(conn.execute(text(statement), params).rowcount or 0)
               for step, statement in _REPAIRS.items()}  # fmt: skip
    if any(changed.values()):
        record_audit(
            conn,
            who="system",
            action="repair_demo_history",
            entity="incident",
            entity_id="*",
            diff=changed,
        )
    return changed


BACKFILL_AFTER = timedelta(hours=1)  # a shorter gap is left for the simulator to fill


def backfill_history(
    engine: Engine,
    *,
    now: datetime,
    seed: int = 42,
    grids: int = 1500,
    incidents: int = 500_000,
    households_per_grid: int = 300,
    progress: Progress | None = None,
    language: str = "zh-CN",
) -> int:
    """Fill the history of a demo served again later: the incidents its city would have had
    between the newest one stored and ``now``, so that "the last 30 days" stays full and the
    open backlog is the recent one. Returns how many were added (0 when the gap is under
    ``BACKFILL_AFTER`` or the database does not hold the city these sizes and seed make).

    The city is generated again from its seed (the same map, homes and hot spots) with its
    history ending at ``now``; the incidents reported after the newest stored one are
    added, with the statuses of a city that keeps up (the last hour mostly open, older ones
    closed), and one audit row. The demo taxonomy's categories get their arrival targets
    where they have none; the new incidents are described in ``language``. Only
    ``geo-service demo`` calls this, never a deployment.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(reported_at) FROM incidents")).scalar_one()
        version = conn.execute(
            text(
                "SELECT v.id, v.notes, count(a.id) FILTER (WHERE a.level = 'grid') "
                "FROM boundary_versions v LEFT JOIN areas a ON a.version_id = v.id "
                "WHERE v.name = :n GROUP BY v.id ORDER BY v.id LIMIT 1"
            ),
            {"n": DEMO_VERSION_NAME},
        ).first()
        if version is not None:  # the demo city, loaded before it had arrival targets too
            with engine.begin() as writing:
                lift_statement_timeout(writing)
                set_arrival_targets(writing)
                repair_history(writing)  # and before its history kept to its statuses
        if version is None or newest is None or now - newest < BACKFILL_AFTER:
            return 0
        if version[2] != grids or not str(version[1] or "").endswith(f"--seed {seed}"):
            return 0  # not the city this seed and size make: nothing to continue
        id_by_code: dict[str, int] = dict(
            conn.execute(
                text("SELECT code, id FROM areas WHERE version_id = :v"), {"v": version[0]}
            ).all()
        )
    city = generate_city(
        seed=seed,
        grids=grids,
        incidents=incidents,
        households_per_grid=households_per_grid,
        end=now,
        progress=progress if progress is not None else (lambda step, n: None),
        language=language,
    )
    gap = city.incidents[city.incidents.reported_at > pd.Timestamp(newest)]
    with engine.begin() as conn:
        lift_statement_timeout(conn)
        id_by_callsign = _responder_ids(conn)
        # a responder still on a job of the stored history takes no new one: that report waits
        held = set(
            conn.execute(
                text(
                    "SELECT r.callsign FROM responders r WHERE EXISTS (SELECT 1 FROM incidents "
                    "i WHERE i.responder_id = r.id AND i.status = ANY(:open))"
                ),
                {"open": list(OPEN_INCIDENT_STATUSES)},
            ).scalars()
        )
        gap = demote(
            gap,
            (gap.status.isin(IN_FLIGHT) & gap.responder_callsign.isin(held)).to_numpy(),
        )
        rows = _incident_rows(gap, id_by_code, id_by_callsign)
        added = copy_frame(conn, "incidents", rows) if len(gap) else 0
        record_generated_escalations(conn)
        set_arrival_targets(conn)
        repair_history(conn)  # the responders the gap's in-flight incidents hold are busy
        record_audit(
            conn,
            who="system",
            action="backfill_demo_history",
            entity="incident",
            entity_id="*",
            diff={"added": added, "after": newest, "until": now},
        )
    return int(added)


def _as_multi(geom):  # noqa: ANN001, ANN202
    import shapely

    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    return geom


DEMO_ROLES = ("admin", "dispatcher", "planner", "analyst", "grid_worker")
# The living city's own account (``geo-service demo`` runs the simulator with it): a
# dispatcher's rights, named apart so that the audit log tells its doings from a person's and
# its request budget (``GEO_LIMITS_USER_REQUESTS_PER_MINUTE``) is a device fleet's.
SIMULATOR_USER = "demo-simulator"
DEMO_USERS = (
    *((f"demo-{role.replace('_', '-')}", role) for role in DEMO_ROLES),
    (SIMULATOR_USER, "dispatcher"),
)
BUSIEST_WINDOW_DAYS = 30


def busiest_grid(conn: Connection | Session) -> tuple[str, str | None] | None:
    """The grid with the most incidents in the ``BUSIEST_WINDOW_DAYS`` days up to the newest
    incident (the history's clock, not the wall's), with its grid worker's callsign; ties by
    code. None without incidents."""
    row = conn.execute(
        text(
            "SELECT a.code, (SELECT r.callsign FROM responders r WHERE r.home_grid_id = a.id "
            "AND r.kind = 'grid_worker' ORDER BY r.id LIMIT 1) AS callsign "
            "FROM incidents i JOIN areas a ON a.id = i.grid_id "
            "WHERE i.reported_at > (SELECT max(reported_at) FROM incidents) "
            "- make_interval(days => :days) "
            "GROUP BY a.id, a.code ORDER BY count(*) DESC, a.code LIMIT 1"
        ),
        {"days": BUSIEST_WINDOW_DAYS},
    ).first()
    return None if row is None else (str(row.code), row.callsign)


def _rebind(session: Session, user: Any, area_code: str, callsign: str | None) -> None:
    """Bind the demo grid worker of an earlier start to today's busiest grid and its worker
    (the history moved on), with an audit row."""
    before = {"area_code": user.area_code, "responder_id": user.responder_id}
    after_id = session.execute(
        text("SELECT id FROM responders WHERE callsign = :c"), {"c": callsign}
    ).scalar_one_or_none()
    after = {"area_code": area_code, "responder_id": after_id}
    user.area_code, user.responder_id = area_code, after_id
    record_audit(
        session,
        who="demo",
        action="rebind_demo_grid_worker",
        entity="user",
        entity_id=str(user.id),
        diff={"before": before, "after": after},
    )


def issue_demo_keys(engine: Engine) -> list[dict[str, str | None]]:
    """A user per role and the simulator's (``DEMO_USERS``; the grid worker bound to the
    busiest grid, ``busiest_grid``, rebound to it on a later start) with a fresh key each;
    earlier demo keys are revoked, since keys are shown only once. Rows: ``role``, ``user``,
    ``area``, ``key``.
    """
    from geo_service.db.models import ApiKey, User
    from geo_service.services.access.auth import create_key, create_user

    out: list[dict[str, str | None]] = []
    with Session(engine) as session:
        busiest = busiest_grid(session)
        for name, role in DEMO_USERS:
            user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
            if user is None:
                bound = role == "grid_worker" and busiest is not None
                user = create_user(
                    session,
                    name=name,
                    role=role,
                    area_code=busiest[0] if bound and busiest else None,
                    actor="demo",
                    responder_callsign=busiest[1] if bound and busiest else None,
                )
            elif role == "grid_worker" and busiest is not None and user.area_code != busiest[0]:
                _rebind(session, user, *busiest)
            for key in session.execute(
                select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
            ).scalars():
                key.revoked_at = datetime.now(UTC)
            _, secret = create_key(session, user, actor="demo", label="make demo")
            out.append({"role": role, "user": name, "area": user.area_code, "key": secret})
        session.commit()
    return out

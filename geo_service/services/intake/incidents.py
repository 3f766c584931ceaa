"""Incidents: idempotent intake, keyset-paginated listing, single reads."""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from geoalchemy2.functions import ST_X, ST_Y, ST_Intersects, ST_Point
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geo_service import runtime
from geo_service.db.models import (
    SRID,
    Area,
    Category,
    Incident,
)
from geo_service.db.sql import sql
from geo_service.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    LocationOutsideCityError,
    NotFoundError,
    PermissionDeniedError,
)
from geo_service.geo.crs import to_wgs84
from geo_service.geo.h3cells import cell_to_str, cells_for_points, exact_cells
from geo_service.i18n import format_message, gettext
from geo_service.instants import check_window, local_instant, localize_fields
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import BBox, localized_name, require_grid_filter
from geo_service.services.intake.escalations import (
    ESCALATION_LEVELS,
    embedded_climb,
    escalation_rows,
    hidden_climb,
)
from geo_service.vocabulary import INCIDENT_SOURCES, INCIDENT_STATUSES, OPEN_INCIDENT_STATUSES

MAX_CLOCK_SKEW = timedelta(minutes=5)
# Who holds an incident at each escalation level: small matters stay in the grid, big ones
# climb to the community, the street, the district.
STAMPS = (
    "dispatched_at",
    "accepted_at",
    "arrived_at",
    "resolved_at",
    "closed_at",
    "cancelled_at",
    "escalated_at",
)
DISPATCH_COLUMNS = (
    Incident.responder_id,
    Incident.escalation_level,
    Incident.possible_duplicate_of,
    Incident.resolution_code,
    *(getattr(Incident, k) for k in STAMPS),
)
# The stage an open incident is in and its target: until accepted, the dispatch target of its
# priority; then the resolution target of its category. Overdue once the stage's target has
# passed since it was REPORTED (issue 17: escalating an incident does not make it less late;
# escalation itself climbs once per missed target, counted from the last escalation).
STAGE_TARGET_S = """
    CASE WHEN {i}.accepted_at IS NULL
         THEN (SELECT t.dispatch_s FROM response_targets t WHERE t.priority = {i}.priority)
         ELSE (SELECT c.resolution_target_min * 60 FROM categories c WHERE c.code = {i}.category)
    END
"""
# Binds :open (the open statuses) and :now.
OVERDUE_SQL = (
    "{i}.status = ANY(:open) AND "
    "CAST(:now AS timestamptz) > {i}.reported_at "
    "+ make_interval(secs => " + STAGE_TARGET_S + ")"
)


@dataclass(frozen=True)
class NewIncident:
    """What a client reports; coordinates in ``crs``."""

    category: str
    lon: float
    lat: float
    crs: str = "wgs84"
    priority: int | None = None
    description: str | None = None
    reported_at: datetime | None = None
    source: str = "citizen"


# What a caller may say a report came from (``POST /incidents``'s ``source``): a dispatch desk
# enters what reaches it by phone (citizens, the 12345 hotline), by radio (grid workers) and
# from alarm panels (sensors); a grid worker's phone files their own finds; an account made
# for one intake channel (``users.channel``) files only as that channel. ``import`` is the
# importer's alone (``geo-service import``, ``POST /imports``), so no caller can inflate the
# imported counts of the managers' reports.
DESK_SOURCES = ("citizen", "hotline", "grid_worker", "sensor")
ROLE_SOURCES: dict[str, tuple[str, ...]] = {
    "admin": DESK_SOURCES,
    "dispatcher": DESK_SOURCES,
    "grid_worker": ("grid_worker",),
}


def require_known_category(session: Session, code: str) -> None:
    """Refuse a category code the taxonomy has never had (retired ones are known: their
    history stays readable).

    Raises
    ------
    InvalidInputError
        422 naming the known codes (``known_categories``), so a typo is not an empty answer.
    """
    if session.get(Category, code) is None:
        raise unknown_category(session, code)


def unknown_category(session: Session, code: str) -> InvalidInputError:
    """The 422 for a category code the taxonomy does not have, naming the known ones."""
    known = session.execute(select(Category.code).order_by(Category.code)).scalars().all()
    return InvalidInputError(
        format_message("unknown category {category!r}", category=code),
        known_categories=list(known),
    )


def claimable_sources(session: Session, scope: Scope) -> tuple[str, ...]:
    """The sources ``scope``'s caller may give a report (first: the default when none is
    given): an account's channel (``users.channel``) alone, else ``ROLE_SOURCES`` of its role
    (another role: ``citizen``). Never ``import``."""
    if scope.principal.user_id is not None:
        channel = session.execute(
            text("SELECT channel FROM users WHERE id = :u"), {"u": scope.principal.user_id}
        ).scalar_one_or_none()
        if channel:
            return (str(channel),)
    return ROLE_SOURCES.get(scope.principal.role, ("citizen",))


def claimed_source(session: Session, scope: Scope, source: str | None) -> str:
    """The source of a report ``scope``'s caller files: ``source`` when they may claim it
    (``claimable_sources``), their first claimable one when None.

    Raises
    ------
    PermissionDeniedError
        ``source`` is not one the caller may claim (403, with ``allowed_sources``); nothing
        is written.
    """
    allowed = claimable_sources(session, scope)
    if source is None:
        return allowed[0]
    if source not in allowed:
        raise PermissionDeniedError(
            format_message(
                "role {role} may not file a report as {source}; allowed: {allowed}",
                role=scope.principal.role,
                source=source,
                allowed=", ".join(allowed),
            ),
            allowed_sources=list(allowed),
        )
    return source


@dataclass(frozen=True)
class IncidentFilter:
    """Filters of ``GET /incidents``."""

    bbox: BBox | None = None
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    status: str | None = None
    grid_id: int | None = None
    overdue: bool | None = None
    now: datetime | None = None  # the clock overdue is judged by (default: the database's)

    def __post_init__(self) -> None:
        """Read naive bounds as local time."""
        localize_fields(self, "since", "until", "now")


def _columns():  # noqa: ANN202
    return (
        Incident.id,
        Incident.category,
        Incident.priority,
        Incident.status,
        Incident.description,
        Incident.source,
        Incident.reported_at,
        Incident.h3,
        Incident.grid_id,
        Incident.created_at,
        Incident.updated_at,
        ST_X(Incident.location).label("lon"),
        ST_Y(Incident.location).label("lat"),
        Area.code.label("grid_code"),
        localized_name().label("grid_name"),  # in the request's language (areas.names)
        *DISPATCH_COLUMNS,
    )


def _as_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": str(m["id"]),
        "category": m["category"],
        "priority": m["priority"],
        "status": m["status"],
        "description": m["description"],
        "source": m["source"],
        "reported_at": m["reported_at"].isoformat(),
        "created_at": m["created_at"].isoformat(),
        "updated_at": m["updated_at"].isoformat(),
        "lon": m["lon"],
        "lat": m["lat"],
        "h3": cell_to_str(m["h3"]),
        "grid": None
        if m["grid_id"] is None
        else {"id": m["grid_id"], "code": m["grid_code"], "name": m["grid_name"]},
        "responder_id": m["responder_id"],
        "escalation_level": m["escalation_level"],
        "escalated_to": ESCALATION_LEVELS[m["escalation_level"]],
        "possible_duplicate_of": None
        if m["possible_duplicate_of"] is None
        else str(m["possible_duplicate_of"]),
        "resolution_code": m["resolution_code"],
        **{k: None if m[k] is None else m[k].isoformat() for k in STAMPS},
    }


def _read(session: Session, incident_id: uuid.UUID) -> dict[str, Any] | None:
    """One incident as the single read gives it: the listing's members, the resolution note
    and the escalation history (``incident_escalations``, oldest first)."""
    row = session.execute(
        select(*_columns(), Incident.resolution_note)
        .outerjoin(Area, Area.id == Incident.grid_id)
        .where(Incident.id == incident_id)
    ).first()
    if row is None:
        return None
    return {
        **_as_dict(row),
        "resolution_note": row._mapping["resolution_note"],
        "escalations": [embedded_climb(c) for c in escalation_rows(session, incident_id)],
    }


def _shown(item: dict[str, Any], scope: Scope | None) -> dict[str, Any]:
    """Hide free text (the description, the resolution note, the escalations' reasons and
    who escalated) from roles that only see incidents as data points."""
    if scope is not None and not scope.can("incidents:describe"):
        hidden = {**item, "description": None}
        if "resolution_note" in item:
            hidden["resolution_note"] = None
            hidden["escalations"] = [hidden_climb(e) for e in item["escalations"]]
        return hidden
    return item


def get_incident(
    session: Session, incident_id: uuid.UUID, *, scope: Scope | None = None
) -> dict[str, Any]:
    """One incident, or NotFoundError -- also outside the caller's area, worded alike, so an
    id cannot be probed across areas."""
    missing = format_message("incident {id} does not exist", id=incident_id)
    found = _read(session, incident_id)
    if found is None:
        raise NotFoundError(missing)
    grid_id = found["grid"]["id"] if found["grid"] else None
    if scope is not None and not visible_to(scope, grid_id, found["responder_id"]):
        raise NotFoundError(missing)
    return _shown(found, scope)


def visible_to(scope: Scope, grid_id: int | None, responder_id: int | None) -> bool:
    """Whether the caller may see one incident: it lies in their area, or it is assigned to
    the responder their user is linked to (a unit sent across an area boundary)."""
    own = scope.principal.responder_id
    return scope.has_grid(grid_id) or (own is not None and own == responder_id)


def create_incident(
    session: Session,
    new: NewIncident,
    *,
    idempotency_key: str | None,
    actor: str,
    scope: Scope | None = None,
    radius_m: float = 50.0,
    window_s: int = 1800,
    with_details: Callable[[Session, uuid.UUID], None] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Record an incident; return it and whether it was created (False: idempotent replay).

    The grid is the one of the boundary version in force at ``reported_at``; a point outside
    every grid is refused. The same ``idempotency_key`` from the same user (the scope's)
    returns their first incident unchanged; keys are per user, so another user's equal key
    makes a new incident. Without a scope (internal callers) keys are ignored.
    An open incident of the same category within ``radius_m`` and ``window_s`` is named in
    ``possible_duplicate_of`` (a hint for the dispatcher; nothing is merged).
    ``with_details(session, id)`` writes what a channel keeps beside the incident (Open311's
    address and photo link) in the same transaction.
    """
    if new.source not in INCIDENT_SOURCES:
        raise InvalidInputError(
            format_message("source must be one of {values}", values=", ".join(INCIDENT_SOURCES))
        )
    category = session.get(Category, new.category)
    if category is None:
        raise unknown_category(session, new.category)
    if category.retired_at is not None:
        raise InvalidInputError(
            format_message("category {code} is retired", code=repr(category.code)),
            retired_at=category.retired_at.isoformat(),
        )
    now = session.execute(select(func.now())).scalar_one()  # the database's clock
    reported_at = new.reported_at or now
    reported_at = local_instant(reported_at, "reported_at")  # naive: local time
    # the service's clock when held ahead (tests, a replayed day) may have filed it later
    service_now = max(now, runtime.current().clock.now(session))
    if reported_at > service_now + MAX_CLOCK_SKEW:
        raise InvalidInputError(gettext("reported_at lies in the future"))
    (lon,), (lat,) = to_wgs84([new.lon], [new.lat], new.crs)
    lon, lat = float(lon), float(lat)

    owner = scope.principal.user_id if scope is not None else None
    if owner is None:
        idempotency_key = None
    if idempotency_key is not None:
        existing = _keyed(session, owner, idempotency_key)
        if existing is not None:
            replay = _replay(session, existing, new, lon, lat)
            if scope is not None:
                scope.require_grid(
                    replay["grid"]["id"] if replay["grid"] else None, gettext("this incident")
                )
            return _shown(replay, scope), False

    point = ST_Point(lon, lat, SRID)
    grid_id = session.execute(select(func.grid_at(point, reported_at))).scalar_one()
    if grid_id is None:
        raise LocationOutsideCityError(
            format_message(
                "({lon}, {lat}) [{crs}] lies outside every grid in force at {value}",
                lon=new.lon,
                lat=new.lat,
                crs=new.crs,
                value=reported_at.isoformat(),
            )
        )
    if scope is not None:
        scope.require_grid(grid_id, gettext("the incident location"))
    values = {
        "possible_duplicate_of": _possible_duplicate(
            session, category.code, lon, lat, reported_at, radius_m, window_s
        ),
        "request_key": idempotency_key,
        "request_user_id": owner if idempotency_key is not None else None,
        "category": category.code,
        "priority": new.priority or category.default_priority,
        "description": new.description,
        "source": new.source,
        "reported_at": reported_at,
        "location": point,
        "h3": int(cells_for_points([lon], [lat])[0]),
        **{name: int(cells[0]) for name, cells in exact_cells([lon], [lat]).items()},
        "grid_id": grid_id,
    }
    stmt = insert(Incident).values(**values)
    if idempotency_key is not None:
        # A concurrent request with the same key may have won the race since the check above.
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["request_user_id", "request_key"],
            index_where=Incident.request_key.is_not(None),
        )
    incident_id = session.execute(stmt.returning(Incident.id)).scalar_one_or_none()
    if incident_id is None:
        session.rollback()
        existing = _keyed(session, owner, idempotency_key)
        if existing is None:  # the winner is gone again (deleted since): let the client retry
            raise IdempotencyKeyReusedError(
                gettext("this Idempotency-Key is in use; retry the request")
            )
        return _shown(_replay(session, existing, new, lon, lat), scope), False
    if with_details is not None:
        with_details(session, incident_id)
    created = get_incident(session, incident_id)
    record_audit(
        session,
        who=actor,
        action="create",
        entity="incident",
        entity_id=str(incident_id),
        diff={"after": {k: v for k, v in created.items() if k not in ("created_at", "updated_at")}},
    )
    session.commit()
    return _shown(created, scope), True


def _keyed(session: Session, owner: int | None, key: str | None) -> uuid.UUID | None:
    """The incident this user made with this Idempotency-Key, if any."""
    return session.execute(
        select(Incident.id).where(Incident.request_user_id == owner, Incident.request_key == key)
    ).scalar_one_or_none()


def _possible_duplicate(
    session: Session,
    category: str,
    lon: float,
    lat: float,
    at: datetime,
    radius_m: float,
    window_s: int,
) -> uuid.UUID | None:
    """The nearest open incident of the same category within ``radius_m`` and ``window_s``."""
    return session.execute(
        sql("incident_possible_duplicate"),
        {
            "open": list(OPEN_INCIDENT_STATUSES),
            "c": category,
            "t": at,
            "w": window_s,
            "x": lon,
            "y": lat,
            "r": radius_m,
            # a box surely holding the circle: metres to degrees of longitude at this latitude
            "deg": radius_m / 111_000 / max(0.01, math.cos(math.radians(lat))) * 1.1,
        },
    ).scalar_one_or_none()


def _replay(
    session: Session, incident_id: uuid.UUID, new: NewIncident, lon: float, lat: float
) -> dict[str, Any]:
    existing = get_incident(session, incident_id)
    same = (
        existing["category"] == new.category
        and abs(existing["lon"] - lon) < 1e-7
        and abs(existing["lat"] - lat) < 1e-7
        and existing["description"] == new.description
    )
    if not same:
        raise IdempotencyKeyReusedError(
            gettext("this Idempotency-Key was already used for a different incident"),
            incident_id=existing["id"],
        )
    return existing


def _encode_cursor(reported_at: datetime, incident_id: str) -> str:
    raw = f"{reported_at.isoformat()}|{incident_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, ident = raw.split("|")
        return datetime.fromisoformat(ts), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError(gettext("cursor is not one this service issued")) from None


def list_incidents(
    session: Session,
    flt: IncidentFilter,
    *,
    limit: int,
    cursor: str | None = None,
    scope: Scope | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Incidents newest first, keyset-paginated on (reported_at, id); returns the next cursor."""
    statuses = [v.strip() for v in (flt.status or "").split(",") if v.strip()]
    if flt.status is not None and (not statuses or set(statuses) - set(INCIDENT_STATUSES)):
        raise InvalidInputError(
            format_message(
                "status must be one or more (comma separated) of {values}",
                values=", ".join(INCIDENT_STATUSES),
            )
        )
    check_window(flt.since, flt.until)
    query = select(*_columns()).outerjoin(Area, Area.id == Incident.grid_id)
    if flt.bbox is not None:
        query = query.where(ST_Intersects(Incident.location, flt.bbox.envelope()))
    if flt.since is not None:
        query = query.where(Incident.reported_at >= flt.since)
    if flt.until is not None:
        query = query.where(Incident.reported_at < flt.until)
    if flt.category is not None:
        require_known_category(session, flt.category)
        query = query.where(Incident.category == flt.category)
    if statuses:
        query = query.where(Incident.status.in_(statuses))
    if flt.grid_id is not None:
        require_grid_filter(session, flt.grid_id, scope)
        query = query.where(Incident.grid_id == flt.grid_id)
    if flt.overdue is not None:
        now = flt.now or session.execute(select(func.now())).scalar_one()
        condition = OVERDUE_SQL.format(i="incidents")
        sql = condition if flt.overdue else f"NOT ({condition})"
        query = query.where(text(sql).bindparams(now=now, open=list(OPEN_INCIDENT_STATUSES)))
    if scope is not None and not scope.unrestricted:
        query = query.where(Incident.grid_id.in_(scope.grid_ids or ()))
    if cursor is not None:
        at, ident = _decode_cursor(cursor)
        query = query.where(tuple_(Incident.reported_at, Incident.id) < tuple_(at, ident))
    rows = session.execute(
        query.order_by(Incident.reported_at.desc(), Incident.id.desc()).limit(limit + 1)
    ).all()
    items = [_shown(_as_dict(r), scope) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]._mapping
        next_cursor = _encode_cursor(last["reported_at"], str(last["id"]))
    return items, next_cursor


def incident_feature(item: dict[str, Any]) -> dict[str, Any]:
    """An incident dict as a GeoJSON Feature."""
    props = {k: v for k, v in item.items() if k not in ("lon", "lat")}
    return {
        "type": "Feature",
        "id": item["id"],
        "geometry": {"type": "Point", "coordinates": [item["lon"], item["lat"]]},
        "properties": props,
    }

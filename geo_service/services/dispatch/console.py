"""The dispatcher's console (``/map/dispatch``): open incidents urgency first with the
server's counts, the resolved ones waiting to be closed (``view="resolved"``), one incident in
any state (what the page reads again after a 409), the deltas its event stream pushes, and
reassigning a responder.

One clock decides: every read takes the service's clock once (``runtime.current().clock``:
the database's ``now()`` unless a test or replay holds it; or a ``now`` handed in) and judges
every incident against it; a stream's cursor is the database's own ``now()``, which stamps
``updated_at``. An incident is overdue when the time since it was
REPORTED exceeds the target of its current stage (until accepted, the dispatch target of its
priority; then its category's resolution target: ``STAGE_TARGET_S``), whatever escalations
happened meanwhile. Sorted by priority, then by how far past that target (most late first).
Every read is scoped like ``GET /incidents``: an area-bound caller sees its area's grids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from geo_service.i18n import format_message, gettext, localized, names_language
from geo_service.runtime import current
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.dispatch.lifecycle import (
    RESPONDER_ACTIONS,
    allowed_actions,
    may_assign,
    one_open_incident_per_responder,
    word,
)
from geo_service.services.dispatch.responders import visible_grids
from geo_service.services.intake.incidents import (
    ESCALATION_LEVELS,
    STAGE_TARGET_S,
    get_incident,
    visible_to,
)
from geo_service.vocabulary import (
    AWAITING_CLOSE_STATUSES,
    INCIDENT_STATUSES,
    OPEN_INCIDENT_STATUSES,
)

MAX_PAGE = 1000
# States a responder can be swapped in: sent or on the way, not yet on scene.
REASSIGNABLE = frozenset({"dispatched", "accepted"})
# The stream re-reads changes this far behind its cursor: a transaction stamps
# ``updated_at`` with its start time, so one that commits late is still seen. What was already
# sent on the same stream is not sent twice; a resumed stream may repeat these seconds (every
# delta is an idempotent upsert or removal).
OVERLAP = timedelta(seconds=10)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Event ids are the database clock in microseconds since 1970: between these bounds.
MIN_EVENT_ID = 946_684_800_000_000  # 2000-01-01
MAX_EVENT_ID = 7_258_118_400_000_000  # 2200-01-01

_OPEN = f"""
    SELECT i.id, i.category, i.priority, i.status, i.description, i.reported_at, i.updated_at,
           i.resolved_at, i.responder_id, i.escalation_level, i.grid_id,
           ST_X(i.location) AS lon, ST_Y(i.location) AS lat,
           CASE WHEN i.accepted_at IS NULL THEN 'dispatch' ELSE 'resolve' END AS stage,
           {STAGE_TARGET_S.format(i="i")} AS target_s
    FROM incidents i
    WHERE i.status = ANY(:statuses)
      AND (CAST(:grids AS int[]) IS NULL OR i.grid_id = ANY(:grids))
      AND (CAST(:ids AS uuid[]) IS NULL OR i.id = ANY(:ids))
"""
_ITEMS = f"""
    WITH o AS ({_OPEN}),
    d AS (SELECT o.*, o.reported_at + make_interval(secs => o.target_s) AS due_at FROM o)
    SELECT d.*, g.code AS grid_code, coalesce(g.names ->> :lang, g.name) AS grid_name,
           r.callsign AS responder_callsign,
           CAST(extract(epoch FROM CAST(:now AS timestamptz) - d.due_at) AS float8) AS late_s,
           c.name AS category_default_name, c.names AS category_names
    FROM d
    LEFT JOIN categories c ON c.code = d.category
    LEFT JOIN areas g ON g.id = d.grid_id
    LEFT JOIN responders r ON r.id = d.responder_id
    ORDER BY CASE WHEN :oldest_resolved_first THEN d.resolved_at END NULLS LAST,
             d.priority, d.due_at NULLS LAST, d.id
    LIMIT :limit OFFSET :offset
"""
_SUMMARY = f"""
    WITH o AS ({_OPEN})
    SELECT o.priority, count(*) AS open,
           count(*) FILTER (
               WHERE CAST(:now AS timestamptz) > o.reported_at + make_interval(secs => o.target_s)
           ) AS overdue
    FROM o GROUP BY o.priority ORDER BY o.priority
"""
_COUNT = f"""
    WITH o AS ({_OPEN}) SELECT count(*) FROM o
"""
_CHANGED = f"""
    SELECT i.id, i.status, i.updated_at, i.created_at FROM incidents i
    WHERE i.updated_at >= :since
      AND (CAST(:grids AS int[]) IS NULL OR i.grid_id = ANY(:grids))
      AND (CAST(:after_at AS timestamptz) IS NULL
           OR (i.updated_at, i.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
    ORDER BY i.updated_at, i.id
    LIMIT {MAX_PAGE}
"""
# Deltas per event, so a burst (a bulk close, a publish) arrives as several events.
EVENT_BATCH = 500
_RESPONDERS = """
    SELECT r.id, r.callsign, r.kind, r.status, r.fixed,
           ST_X(r.position) AS lon, ST_Y(r.position) AS lat,
           (r.position_at IS NULL OR (NOT r.fixed AND r.position_at
               < CAST(:now AS timestamptz) - make_interval(secs => :stale))) AS stale
    FROM responders r
    WHERE CAST(:grids AS int[]) IS NULL OR r.home_grid_id = ANY(:grids)
    ORDER BY r.id
"""


def database_now(session: Session) -> datetime:
    """The database's ``now()``: what stamps ``updated_at``, so what a stream's cursor is."""
    return session.execute(text("SELECT now()")).scalar_one()  # type: ignore[no-any-return]


def decision_now(session: Session) -> datetime:
    """The one clock every overdue and stale judgement of a console read is made at: the
    service's (the database's, unless held by a test or a replay)."""
    return current().clock.now(session)


def _params(
    scope: Scope, now: datetime, statuses: tuple[str, ...] = OPEN_INCIDENT_STATUSES
) -> dict[str, Any]:
    return {
        "statuses": list(statuses),
        "grids": visible_grids(scope),
        "now": now,
        "ids": None,
        "oldest_resolved_first": statuses == AWAITING_CLOSE_STATUSES,
    }


def console_actions(scope: Scope, status: str, responder_id: int | None) -> list[str]:
    """The actions the caller may take on an incident in ``status`` from the console: the
    lifecycle's, less what its role may not do (the server checks again on every write)."""
    own = scope.principal.responder_id
    actions = []
    for action in allowed_actions(status):
        if action in RESPONDER_ACTIONS and own is not None and own == responder_id:
            actions.append(action)
        elif not scope.can("incidents:write"):
            continue
        elif action in RESPONDER_ACTIONS and scope.principal.role == "grid_worker":
            continue
        elif action == "dispatch" and not scope.can("responders:write") and own is None:
            continue
        else:
            actions.append(action)
    if status in REASSIGNABLE and scope.can("incidents:write") and scope.can("responders:write"):
        actions.append("reassign")
    return actions


def _item(m: Any, scope: Scope, now: datetime) -> dict[str, Any]:
    # only an open incident is late: a resolved or ended one has no target left to miss
    late = m["late_s"] if m["status"] in OPEN_INCIDENT_STATUSES else None
    return {
        "id": str(m["id"]),
        "category": m["category"],
        # the name in the request's language (the dispatcher reads names, never codes)
        "category_name": localized(
            m["category_names"], m["category_default_name"] or m["category"]
        ),
        "priority": m["priority"],
        "status": m["status"],
        "description": m["description"] if scope.can("incidents:describe") else None,
        "lon": m["lon"],
        "lat": m["lat"],
        "grid_code": m["grid_code"],
        "grid_name": m["grid_name"],
        "reported_at": m["reported_at"].isoformat(),
        "updated_at": m["updated_at"].isoformat(),
        "resolved_at": None if m["resolved_at"] is None else m["resolved_at"].isoformat(),
        "responder_id": m["responder_id"],
        "responder_callsign": m["responder_callsign"],
        "escalation_level": m["escalation_level"],
        "escalated_to": ESCALATION_LEVELS[m["escalation_level"]],
        "stage": m["stage"],
        "target_s": m["target_s"],
        "due_at": None if m["due_at"] is None else m["due_at"].isoformat(),
        "late_s": None if late is None else round(late, 1),
        "overdue": late is not None and late > 0,
        "actions": console_actions(scope, m["status"], m["responder_id"]),
    }


def console_summary(session: Session, *, scope: Scope, now: datetime | None = None) -> dict:
    """Open and overdue incidents the caller sees, in all and per priority, at ``now``."""
    now = now or decision_now(session)
    rows = session.execute(text(_SUMMARY), _params(scope, now)).mappings().all()
    per = {p: {"priority": p, "open": 0, "overdue": 0} for p in (1, 2, 3, 4)}
    for r in rows:
        per[r["priority"]] = {"priority": r["priority"], "open": r["open"], "overdue": r["overdue"]}
    return {
        "now": now.isoformat(),
        "open": sum(p["open"] for p in per.values()),
        "overdue": sum(p["overdue"] for p in per.values()),
        "by_priority": list(per.values()),
    }


# What a console page lists: the open incidents, or the resolved ones waiting to be closed.
VIEWS = {"open": OPEN_INCIDENT_STATUSES, "resolved": AWAITING_CLOSE_STATUSES}


def console_incidents(
    session: Session,
    *,
    scope: Scope,
    limit: int,
    offset: int = 0,
    now: datetime | None = None,
    view: str = "open",
) -> dict[str, Any]:
    """A page of the incidents the caller sees, with the counts of the open ones at the same
    ``now``, how many resolved ones wait to be closed, and the event id a stream resumes from
    (so nothing that changes while the pages load is missed). ``view="open"``: the open ones
    by priority and then most late first; ``"resolved"``: the resolved ones, the longest
    waiting first (a dispatcher closes or reopens them)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(format_message("limit must be 1..{max_page}", max_page=MAX_PAGE))
    if offset < 0:
        raise InvalidInputError(gettext("offset must be 0 or more"))
    if view not in VIEWS:
        raise InvalidInputError(
            format_message("view must be one of {values}", values=", ".join(VIEWS))
        )
    cursor = database_now(session)
    now = now or decision_now(session)
    statuses = VIEWS[view]
    params = {
        **_params(scope, now, statuses),
        "limit": limit,
        "offset": offset,
        "lang": names_language(),
    }
    rows = session.execute(text(_ITEMS), params).mappings().all()
    summary = console_summary(session, scope=scope, now=now)
    resolved = session.execute(
        text(_COUNT), _params(scope, now, AWAITING_CLOSE_STATUSES)
    ).scalar_one()
    items = [_item(m, scope, now) for m in rows]
    following = offset + len(items)
    total = summary["open"] if view == "open" else resolved
    return {
        **summary,
        "resolved": resolved,
        "offset": offset,
        "next_offset": following if following < total and items else None,
        "event_id": event_id(cursor),
        "items": items,
    }


def console_incident(
    session: Session, incident_id: uuid.UUID, *, scope: Scope, now: datetime | None = None
) -> dict[str, Any]:
    """One incident as the console shows it, whatever its state (what a page reads again when
    an action was refused because someone else moved it first); 404 outside the caller's
    area, as in the listing."""
    now = now or decision_now(session)
    found = _items_by_id(session, scope, now, [incident_id], INCIDENT_STATUSES)
    if not found:
        raise NotFoundError(format_message("incident {id} does not exist", id=incident_id))
    return found[0]


def event_id(at: datetime) -> str:
    """A stream position: ``at`` in microseconds since 1970."""
    return str((at - EPOCH) // timedelta(microseconds=1))


def parse_event_id(value: str) -> datetime:
    """The instant of an event id this service issued; InvalidInputError for anything else."""
    if not (value.isascii() and value.isdigit()) or not MIN_EVENT_ID <= int(value) <= MAX_EVENT_ID:
        raise InvalidInputError(gettext("Last-Event-ID is not an event id of this stream"))
    return EPOCH + timedelta(microseconds=int(value))


def _items_by_id(
    session: Session,
    scope: Scope,
    now: datetime,
    ids: list[Any],
    statuses: tuple[str, ...] = OPEN_INCIDENT_STATUSES,
) -> list[dict]:
    if not ids:
        return []
    params = {
        **_params(scope, now, statuses),
        "ids": ids,
        "limit": len(ids),
        "offset": 0,
        "lang": names_language(),  # grid names in the console's language (areas.names)
    }
    return [_item(m, scope, now) for m in session.execute(text(_ITEMS), params).mappings().all()]


@dataclass
class ConsoleFeed:
    """What one console stream has sent; ``tick`` answers what changed since.

    Incidents come from their ``updated_at`` (changed, new and closed since the cursor, read
    ``OVERLAP`` behind it); responders (few, and their status changes carry no stamp) are
    compared with what this stream sent last: the first tick sends all of them.
    """

    scope: Scope
    stale_s: int
    since: datetime | None
    with_responders: bool = True
    sent_incidents: dict[str, datetime] = field(default_factory=dict)
    sent_responders: dict[int, tuple] = field(default_factory=dict)
    last_summary: dict | None = None

    def tick(self, session: Session) -> list[tuple[str, dict[str, Any]]]:
        """The events of one tick as (event name, data); each resumes from ``cursor()``."""
        stamp = database_now(session)  # the cursor: what stamps the rows
        now = decision_now(session)  # what overdue and stale are judged at
        events: list[tuple[str, dict[str, Any]]] = []
        # a stream that starts without a cursor starts now (the page has just loaded the list)
        since = self.since if self.since is not None else stamp
        rows = [] if self.since is None else self._changed_since(session, since - OVERLAP)
        fresh = [r for r in rows if self.sent_incidents.get(str(r["id"])) != r["updated_at"]]
        opened = [r["id"] for r in fresh if r["status"] in OPEN_INCIDENT_STATUSES]
        changed = [
            item
            for start in range(0, len(opened), MAX_PAGE)
            for item in _items_by_id(session, self.scope, now, opened[start : start + MAX_PAGE])
        ]
        closed = [
            {"id": str(r["id"]), "status": r["status"]}
            for r in fresh
            if r["status"] not in OPEN_INCIDENT_STATUSES
        ]
        # a resolved one leaves the open list (in ``closed``) for the list of those to close
        awaiting = [r["id"] for r in fresh if r["status"] in AWAITING_CLOSE_STATUSES]
        resolved = [
            item
            for start in range(0, len(awaiting), MAX_PAGE)
            for item in _items_by_id(
                session,
                self.scope,
                now,
                awaiting[start : start + MAX_PAGE],
                AWAITING_CLOSE_STATUSES,
            )
        ]
        created = {str(r["id"]) for r in fresh if r["created_at"] >= since - OVERLAP}
        for item in changed:
            item["new"] = item["id"] in created and item["id"] not in self.sent_incidents
        for r in fresh:
            self.sent_incidents[str(r["id"])] = r["updated_at"]
        # forget what is older than the overlap: it cannot come back through the query
        self.sent_incidents = {
            k: v for k, v in self.sent_incidents.items() if v >= stamp - 2 * OVERLAP
        }
        for start in range(0, max(len(changed), len(closed)), EVENT_BATCH):
            events.append(
                (
                    "incidents",
                    {
                        "now": now.isoformat(),
                        "changed": changed[start : start + EVENT_BATCH],
                        "closed": closed[start : start + EVENT_BATCH],
                        "resolved": resolved[start : start + EVENT_BATCH],
                    },
                )
            )
        moved = self._responders(session, now) if self.with_responders else []
        if moved:
            events.append(("responders", {"now": now.isoformat(), "changed": moved}))
        summary = console_summary(session, scope=self.scope, now=now)
        counts = {k: v for k, v in summary.items() if k != "now"}
        if counts != self.last_summary:
            self.last_summary = counts
            events.append(("summary", summary))
        self.since = stamp
        return events

    def _changed_since(self, session: Session, since: datetime) -> list[Any]:
        """Incidents in scope stamped since ``since``, read in keyset pages."""
        rows: list[Any] = []
        after: tuple[Any, Any] = (None, None)
        while True:
            batch = (
                session.execute(
                    text(_CHANGED),
                    {
                        "since": since,
                        "grids": visible_grids(self.scope),
                        "after_at": after[0],
                        "after_id": after[1],
                    },
                )
                .mappings()
                .all()
            )
            rows += batch
            if len(batch) < MAX_PAGE:
                return rows
            after = (batch[-1]["updated_at"], batch[-1]["id"])

    def cursor(self) -> datetime:
        """Where a stream resumes after the last tick (its ``Last-Event-ID``)."""
        assert self.since is not None, "tick first"
        return self.since

    def _responders(self, session: Session, now: datetime) -> list[dict[str, Any]]:
        rows = (
            session.execute(
                text(_RESPONDERS),
                {"now": now, "stale": self.stale_s, "grids": visible_grids(self.scope)},
            )
            .mappings()
            .all()
        )
        moved = []
        for r in rows:
            state = (r["status"], r["lon"], r["lat"], r["stale"])
            if self.sent_responders.get(r["id"]) != state:
                self.sent_responders[r["id"]] = state
                moved.append(
                    {
                        "id": r["id"],
                        "callsign": r["callsign"],
                        "kind": r["kind"],
                        "status": r["status"],
                        "lon": r["lon"],
                        "lat": r["lat"],
                        "stale": bool(r["stale"]),
                        "fixed": bool(r["fixed"]),
                    }
                )
        return moved


def reassign(
    session: Session,
    incident_id: uuid.UUID,
    responder_id: int,
    *,
    scope: Scope,
    actor: str,
    note: str | None = None,
) -> dict[str, Any]:
    """Send another responder to a dispatched or accepted incident: the new one must be
    available and one the caller may send; the one stood down must be one the caller may
    send too, and becomes available. The incident is dispatched again (to be accepted anew).

    Locks in the lifecycle's order: responders (by id), then the incident.
    """
    scope.require("incidents:write")
    if not scope.can("responders:write"):
        raise PermissionDeniedError(
            format_message(
                "role {role!r} may not send responders: only a dispatcher reassigns",
                role=scope.principal.role,
            )
        )
    missing = format_message("incident {id} does not exist", id=incident_id)
    seen = session.execute(
        text("SELECT responder_id, grid_id FROM incidents WHERE id = :id"), {"id": incident_id}
    ).first()
    if seen is None or not visible_to(scope, seen.grid_id, seen.responder_id):
        session.rollback()
        raise NotFoundError(missing)
    old = seen.responder_id
    if old == responder_id:
        session.rollback()
        raise InvalidInputError(
            format_message(
                "responder {responder_id} is already assigned to it", responder_id=responder_id
            )
        )
    ids = sorted({responder_id} | ({old} if old is not None else set()))
    rows = {
        r.id: r
        for r in session.execute(
            text(
                "SELECT id, status, home_grid_id FROM responders WHERE id = ANY(:ids) "
                "ORDER BY id FOR UPDATE"
            ),
            {"ids": ids},
        ).all()
    }
    new = rows.get(responder_id)
    if new is None or not may_assign(scope, responder_id, new.home_grid_id):
        session.rollback()
        raise NotFoundError(
            format_message("responder {responder_id} does not exist", responder_id=responder_id)
        )
    if old is not None and not may_assign(scope, old, rows[old].home_grid_id):
        session.rollback()
        raise PermissionDeniedError(
            format_message(
                "responder {old} was sent by a dispatcher who may send it; only such a one may "
                "stand it down",
                old=old,
            )
        )
    current = session.execute(
        text("SELECT status, grid_id, responder_id FROM incidents WHERE id = :id FOR UPDATE"),
        {"id": incident_id},
    ).first()
    if current is None or current.responder_id != old:
        session.rollback()
        raise ConflictError(gettext("the incident changed meanwhile: load it again"))
    scope.require_grid(current.grid_id, gettext("this incident"))
    if current.status not in REASSIGNABLE:
        session.rollback()
        raise ConflictError(
            format_message(
                "cannot reassign an incident that is {status}", status=word(current.status)
            ),
            status_now=current.status,
            allowed_actions=console_actions(scope, current.status, current.responder_id),
        )
    if new.status != "available":
        session.rollback()
        raise ConflictError(
            format_message(
                "responder {responder_id} is {status}, not available",
                responder_id=responder_id,
                status=word(new.status),
            ),
            responder_status=new.status,
        )
    with one_open_incident_per_responder(session, responder_id):
        session.execute(
            text(
                "UPDATE incidents SET responder_id = :r, status = 'dispatched', "
                "dispatched_at = now(), accepted_at = NULL, updated_at = now() WHERE id = :id"
            ),
            {"r": responder_id, "id": incident_id},
        )
    session.execute(
        text("UPDATE responders SET status = 'busy' WHERE id = :r"), {"r": responder_id}
    )
    if old is not None:
        session.execute(
            text("UPDATE responders SET status = 'available' WHERE id = :r AND status = 'busy'"),
            {"r": old},
        )
    diff: dict[str, Any] = {
        "before": {"status": current.status, "responder_id": old},
        "after": {"status": "dispatched", "responder_id": responder_id},
    }
    if note:
        diff["note"] = note[:2000]
    record_audit(
        session,
        who=actor,
        action="reassign",
        entity="incident",
        entity_id=str(incident_id),
        diff=diff,
    )
    session.commit()
    return get_incident(session, incident_id, scope=scope)

"""The incident lifecycle, candidates for an incident, and escalation.

    reported -dispatch-> dispatched -accept-> accepted -arrive-> on_scene -resolve-> resolved
    resolved -close-> closed;  accepted -resolve-> resolved (settled without a visit);
    any open state -cancel-> cancelled;  resolved or closed -reopen-> reported (again)

Every transition is one conditional UPDATE on a row locked in a fixed order (responder, then
incident), so two dispatchers racing for the same responder or incident get exactly one
success and one 409. Each writes a timestamp and an audit row. Dispatch authorizes both
objects it touches, the incident and the responder (``may_assign``); the database keeps one
open incident per responder (``ux_incidents_open_responder``, migration 0016).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geo_service import runtime
from geo_service.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from geo_service.i18n import N_, format_message, gettext
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.dispatch.responders import NearestQuery, nearest
from geo_service.services.dispatch.routing import nearest_by_travel_time
from geo_service.services.intake.escalations import NO_REASON, escalation_rows, overdue_reason
from geo_service.services.intake.incidents import (
    ESCALATION_LEVELS,
    STAGE_TARGET_S,
    get_incident,
    require_known_category,
    visible_to,
)
from geo_service.vocabulary import (
    INCIDENT_OUTCOMES,
    INCIDENT_STATUS_WORDS,
    OPEN_INCIDENT_STATUSES,
    responder_kinds_for,
)

# action: (states it may leave, state it enters, timestamp it sets)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "dispatch": (frozenset({"reported"}), "dispatched", "dispatched_at"),
    "accept": (frozenset({"dispatched"}), "accepted", "accepted_at"),
    "arrive": (frozenset({"accepted"}), "on_scene", "arrived_at"),
    "resolve": (frozenset({"accepted", "on_scene"}), "resolved", "resolved_at"),
    "close": (frozenset({"resolved"}), "closed", "closed_at"),
    "cancel": (frozenset(OPEN_INCIDENT_STATUSES), "cancelled", "cancelled_at"),
    "reopen": (frozenset({"resolved", "closed"}), "reported", "reopened_at"),
}
# What an action sets besides its state and stamp (fixed SQL, no values). A reopened incident
# starts its lifecycle again: counted (reports: ``reopened``), unassigned, its stage stamps
# cleared so that its stages and targets run anew (the audit log keeps the first round).
EXTRA_SETS = {
    "resolve": ", outcome = :outcome, resolution_note = :resolution_note",
    "reopen": ", reopened_count = reopened_count + 1, "
    "dispatched_at = NULL, accepted_at = NULL, arrived_at = NULL, resolved_at = NULL, "
    "closed_at = NULL, outcome = NULL, resolution_note = NULL",
}
# What the assigned responder may do themselves; the rest needs incidents:write in the area.
RESPONDER_ACTIONS = frozenset({"accept", "arrive", "resolve"})
FREES_RESPONDER = frozenset({"resolve", "cancel"})
# What only a responder can do: refused (409) on an incident with none assigned.
NEEDS_RESPONDER = frozenset({"accept", "arrive"})
TOP_LEVEL = len(ESCALATION_LEVELS) - 1


# The states and actions as a refusal's detail names them, in the reader's language (the
# codes themselves stay in the problem's members: ``status_now``, ``allowed_actions``).
WORDS = {
    **INCIDENT_STATUS_WORDS,
    "available": N_("available"),
    "busy": N_("busy"),
    "off_duty": N_("off duty"),
    "dispatch": N_("dispatch"),
    "accept": N_("accept"),
    "arrive": N_("arrive"),
    "resolve": N_("resolve"),
    "close": N_("close"),
    "cancel": N_("cancel"),
    "reopen": N_("reopen"),
    "reassign": N_("reassign"),
}


def word(value: str) -> str:
    """A state's or action's name in the request's language (unknown values as they are)."""
    return gettext(WORDS[value]) if value in WORDS else value


@contextmanager
def one_open_incident_per_responder(session: Session, responder_id: int | None) -> Iterator[None]:
    """Write an assignment inside this: the database's one open incident per responder
    (``ux_incidents_open_responder``) refusing it answers 409 (the session rolled back), never
    500; any other integrity error goes on as it is."""
    try:
        yield
    except IntegrityError as exc:
        session.rollback()
        if "ux_incidents_open_responder" in str(exc.orig):
            raise ConflictError(
                format_message(
                    "responder {responder_id} is already assigned to an open incident",
                    responder_id=responder_id,
                )
            ) from None
        raise


def allowed_actions(status: str) -> list[str]:
    """The lifecycle actions an incident in ``status`` accepts."""
    actions = [a for a, (sources, _, _) in TRANSITIONS.items() if status in sources]
    return actions + (["escalate"] if status in OPEN_INCIDENT_STATUSES else [])


def _missing(incident_id: uuid.UUID) -> str:
    return format_message("incident {id} does not exist", id=incident_id)


def _locked(session: Session, incident_id: uuid.UUID, scope: Scope) -> dict[str, Any]:
    """The incident row, locked; 404 when missing or outside the caller's area (alike)."""
    row = (
        session.execute(
            text(
                "SELECT id, status, grid_id, responder_id, escalation_level FROM incidents "
                "WHERE id = :id FOR UPDATE"
            ),
            {"id": incident_id},
        )
        .mappings()
        .first()
    )
    if row is None or not visible_to(scope, row["grid_id"], row["responder_id"]):
        session.rollback()
        raise NotFoundError(_missing(incident_id))
    return dict(row)


def _require_visible(session: Session, incident_id: uuid.UUID, scope: Scope) -> None:
    """404 unless the incident exists and the caller may see it, as ``_locked`` says, without
    locking it (so a check before the responder's lock keeps the lock order)."""
    row = session.execute(
        text("SELECT grid_id, responder_id FROM incidents WHERE id = :id"), {"id": incident_id}
    ).first()
    if row is None or not visible_to(scope, row.grid_id, row.responder_id):
        session.rollback()
        raise NotFoundError(_missing(incident_id))


def _audit(session: Session, actor: str, action: str, incident_id: Any, diff: dict) -> None:
    record_audit(
        session, who=actor, action=action, entity="incident", entity_id=str(incident_id), diff=diff
    )


def _replayed(
    session: Session, scope: Scope, key: str | None, incident_id: uuid.UUID, action: str
) -> dict[str, Any] | None:
    """The incident as it is now when this user already did this action with this
    ``Idempotency-Key`` (a phone's queue sending it again), else None. The same key on another
    incident or action is a 409 ``idempotency-key-reused``."""
    if key is None or scope.principal.user_id is None:
        return None
    done = session.execute(
        text(
            "SELECT incident_id, action FROM incident_action_keys WHERE user_id = :u AND key = :k"
        ),
        {"u": scope.principal.user_id, "k": key},
    ).first()
    if done is None:
        return None
    if done.incident_id != incident_id or done.action != action:
        session.rollback()
        raise IdempotencyKeyReusedError(
            format_message(
                "this Idempotency-Key was used to {action} incident {incident_id}",
                action=done.action,
                incident_id=done.incident_id,
            )
        )
    session.rollback()  # nothing to do: end the read's transaction
    return get_incident(session, incident_id, scope=scope)


def _remember_key(
    session: Session, scope: Scope, key: str | None, incident_id: uuid.UUID, action: str
) -> bool:
    """Record the action's ``Idempotency-Key`` in its transaction; False when a concurrent
    request with the same key committed first (the caller rolls back and replays)."""
    if key is None or scope.principal.user_id is None:
        return True
    stored = session.execute(
        text(
            "INSERT INTO incident_action_keys (user_id, key, incident_id, action) "
            "VALUES (:u, :k, :i, :a) ON CONFLICT DO NOTHING RETURNING user_id"
        ),
        {"u": scope.principal.user_id, "k": key, "i": incident_id, "a": action},
    ).first()
    return stored is not None


def _replay_after_race(
    session: Session, scope: Scope, key: str | None, incident_id: uuid.UUID, action: str
) -> dict[str, Any]:
    session.rollback()
    replay = _replayed(session, scope, key, incident_id, action)
    if replay is None:  # the winner is gone again: let the client retry
        raise IdempotencyKeyReusedError(
            gettext("this Idempotency-Key is in use; retry the request")
        )
    return replay


def may_assign(scope: Scope, responder_id: int, home_grid_id: int | None) -> bool:
    """Who may send whom: the assignment rule of every action that names a responder.

    A responder belongs where its home grid is (``responders.home_grid_id``, a grid of the
    current version that follows publishes); that is the same rule by which a user sees it in
    ``/responders`` and ``/responders/nearest`` and may ``PATCH`` it. So:

    * users bound to no area with ``responders:write`` (dispatchers, admins) send anyone;
    * a dispatcher bound to an area sends only responders whose home grid lies in that area;
      units without a home grid (the city's fire, medical and patrol units in the demo) are
      city-wide and are sent by city-wide dispatchers (an area dispatcher escalates);
    * anyone else -- a grid worker -- at most themselves, when their user is linked to a
      responder (``users.responder_id``).
    """
    return scope.commands_responder(responder_id, home_grid_id)


def _holds_open_incident(session: Session, responder_id: int) -> bool:
    return (
        session.execute(
            text("SELECT 1 FROM incidents WHERE responder_id = :r AND status = ANY(:open) LIMIT 1"),
            {"r": responder_id, "open": list(OPEN_INCIDENT_STATUSES)},
        ).first()
        is not None
    )


def _take_responder(session: Session, responder_id: int, scope: Scope) -> None:
    """Authorize and mark the responder busy, holding its row lock (taken first, always).

    Role first (no lookup, so nothing about the id is revealed), then the row: 404 when it
    does not exist or lies outside the caller's area, 409 when it is not available.
    """
    if not scope.can("responders:write") and scope.principal.responder_id != responder_id:
        raise PermissionDeniedError(
            format_message(
                "role {role!r} may dispatch only the responder linked to the user",
                role=scope.principal.role,
            )
        )
    missing = format_message("responder {responder_id} does not exist", responder_id=responder_id)
    row = session.execute(
        text("SELECT status, home_grid_id FROM responders WHERE id = :r FOR UPDATE"),
        {"r": responder_id},
    ).first()
    if row is None or not may_assign(scope, responder_id, row.home_grid_id):
        session.rollback()
        raise NotFoundError(missing)
    if row.status != "available":
        assigned = _holds_open_incident(session, responder_id)
        session.rollback()
        raise ConflictError(
            format_message(
                "responder {responder_id} is {status}, not available",
                responder_id=responder_id,
                status=word(row.status),
            )
            + (gettext(" (assigned to an open incident)") if assigned else ""),
            responder_status=row.status,
            assigned=assigned,
        )
    session.execute(
        text("UPDATE responders SET status = 'busy' WHERE id = :r"), {"r": responder_id}
    )


def transition(
    session: Session,
    incident_id: uuid.UUID,
    action: str,
    *,
    scope: Scope,
    actor: str,
    responder_id: int | None = None,
    note: str | None = None,
    outcome: str | None = None,
    resolution_code: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Apply one lifecycle action; 409 when the incident's state does not allow it.

    ``outcome`` (``resolve`` only; ``vocabulary.INCIDENT_OUTCOMES``) records how a dispute
    ended, for the managers' reports; ``reopen`` brings a resolved or closed incident back.
    ``resolution_code`` (resolve only, else 422) is kept on the incident, and so is resolve's
    ``note`` (``resolution_note``, cleared by ``reopen``). With an
    ``idempotency_key`` the same user sending the same action on the same incident again gets
    the incident as it is now and nothing is done or audited twice (the phone's offline queue,
    issue 20); the key on another incident or action is a 409.

    ``dispatch`` checks both objects it touches: the incident (in the caller's area, else 404)
    and the responder (``may_assign``). One open incident per responder is kept by the
    responder's status (only an ``available`` one is taken) and, whatever happens, by the
    database (``ux_incidents_open_responder``): a violation answers 409, never 500.
    """
    if action not in TRANSITIONS:
        raise InvalidInputError(
            format_message("action must be one of {values}", values=", ".join(TRANSITIONS))
        )
    if resolution_code is not None and action != "resolve":
        raise InvalidInputError(
            format_message("{action} takes no resolution_code: it is for resolve", action=action)
        )
    replay = _replayed(session, scope, idempotency_key, incident_id, action)
    if replay is not None:
        return replay
    sources, target, stamp = TRANSITIONS[action]
    if outcome is not None and (action != "resolve" or outcome not in INCIDENT_OUTCOMES):
        raise InvalidInputError(
            format_message(
                "outcome is for resolve only, one of {values}", values=", ".join(INCIDENT_OUTCOMES)
            )
        )
    if action == "dispatch":
        if responder_id is None:
            raise InvalidInputError(gettext("dispatch needs a responder_id"))
        scope.require("incidents:write")
        # The incident is checked first (a 404 for an unknown one or one outside the area,
        # whatever the responder), by a plain read that takes no lock...
        _require_visible(session, incident_id, scope)
        # ...then the lock order: responder first, then incident (every writer does the same).
        _take_responder(session, responder_id, scope)
    elif responder_id is not None:
        raise InvalidInputError(
            format_message(
                "{action} names no responder: responder_id is for dispatch", action=action
            )
        )
    current = _locked(session, incident_id, scope)
    own = scope.principal.responder_id
    if action in RESPONDER_ACTIONS and own is not None and own == current["responder_id"]:
        pass  # the assigned responder acts on their own incident
    else:
        scope.require("incidents:write")
        # seen as its responder only
        scope.require_grid(current["grid_id"], gettext("this incident"))
        if action in RESPONDER_ACTIONS and scope.principal.role == "grid_worker":
            raise PermissionDeniedError(
                gettext("only the assigned responder or a dispatcher may do this")
            )
        if action in FREES_RESPONDER and current["responder_id"] is not None:
            # Ending an incident frees its responder: that touches the responder too, so the
            # caller must be one who may send it (a grid worker may not stand down a fire
            # engine a dispatcher sent; an area dispatcher may not free a city-wide unit).
            home = session.execute(
                text("SELECT home_grid_id FROM responders WHERE id = :r"),
                {"r": current["responder_id"]},
            ).scalar_one_or_none()
            if not may_assign(scope, current["responder_id"], home):
                session.rollback()
                raise PermissionDeniedError(
                    format_message(
                        "responder {responder_id} was sent to this incident by a dispatcher; "
                        "only one who may send it can {action} the incident",
                        responder_id=current["responder_id"],
                        action=action,
                    )
                )
    if current["status"] not in sources:
        session.rollback()
        raise ConflictError(
            format_message(
                "cannot {action} an incident that is {status}",
                action=word(action),
                status=word(current["status"]),
            ),
            status_now=current["status"],
            allowed_actions=allowed_actions(current["status"]),
        )
    if action in NEEDS_RESPONDER and current["responder_id"] is None:
        # accepted or on scene means someone is: a history without one cannot go on by itself
        session.rollback()
        raise ConflictError(
            format_message(
                "cannot {action} an incident nobody is assigned to; dispatch a responder first",
                action=action,
            ),
            status_now=current["status"],
            assigned=False,
        )
    with one_open_incident_per_responder(session, responder_id):
        session.execute(
            text(
                f"UPDATE incidents SET status = :target, {stamp} = now(), updated_at = now(), "
                "responder_id = CASE WHEN :unassign THEN NULL ELSE coalesce(:r, responder_id) END, "
                "resolution_code = CASE WHEN :unassign THEN NULL "
                "ELSE coalesce(:code, resolution_code) END"
                f"{EXTRA_SETS.get(action, '')} "
                "WHERE id = :id"
            ),
            {
                "target": target,
                "r": responder_id if action == "dispatch" else None,
                "unassign": action == "reopen",
                "code": resolution_code,
                "id": incident_id,
                **(
                    {"outcome": outcome, "resolution_note": note[:2000] if note else None}
                    if action == "resolve"
                    else {}
                ),
            },
        )
    if action in FREES_RESPONDER and current["responder_id"] is not None:
        session.execute(
            text("UPDATE responders SET status = 'available' WHERE id = :r AND status = 'busy'"),
            {"r": current["responder_id"]},
        )
    diff: dict[str, Any] = {"before": {"status": current["status"]}, "after": {"status": target}}
    if action == "dispatch":
        diff["after"]["responder_id"] = responder_id
    if outcome is not None:
        diff["after"]["outcome"] = outcome
    if resolution_code is not None:
        diff["after"]["resolution_code"] = resolution_code
    if note:
        diff["note"] = note[:2000]
    if not _remember_key(session, scope, idempotency_key, incident_id, action):
        return _replay_after_race(session, scope, idempotency_key, incident_id, action)
    if idempotency_key is not None:
        diff["idempotency_key"] = idempotency_key
    _audit(session, actor, action, incident_id, diff)
    session.commit()
    return get_incident(session, incident_id, scope=scope)


_INSERT_ESCALATION = text(
    "INSERT INTO incident_escalations (incident_id, from_level, to_level, at, who, reason) "
    "VALUES (:id, :to - 1, :to, coalesce(:at, now()), :who, :why)"
)


def _record_escalations(
    session: Session, climbs: list[dict[str, Any]], at: datetime | None = None
) -> None:
    """The escalation history (``incident_escalations``): one row per climb of one level,
    ``{id, to, who, why}``, at ``at`` (None: the database's now, as ``escalated_at``)."""
    if climbs:
        session.execute(_INSERT_ESCALATION, [{**c, "at": at} for c in climbs])


def escalation_history(session: Session, incident_id: uuid.UUID, *, scope: Scope) -> dict:
    """The incident's escalations, oldest first (``data``, ``count``), each as
    ``intake.escalations.escalation_public`` builds it: levels by number and name, ``at``
    RFC 3339, ``who``/``by``, ``reason`` in the reader's language, ``reason_code`` (the single
    read embeds the same objects with the levels by name). Raises NotFoundError for an
    incident that does not exist or that the caller may not see (404 alike outside the
    caller's area)."""
    get_incident(session, incident_id, scope=scope)  # the scope's check: 404 outside it
    data = escalation_rows(session, incident_id)
    return {"data": data, "count": len(data)}


def escalate_one(
    session: Session,
    incident_id: uuid.UUID,
    *,
    scope: Scope,
    actor: str,
    reason: str | None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Hand an open incident one level up by hand (a dispatcher's or grid worker's call);
    an ``idempotency_key`` sent again climbs no further (as for ``transition``)."""
    scope.require("incidents:write")
    replay = _replayed(session, scope, idempotency_key, incident_id, "escalate")
    if replay is not None:
        return replay
    current = _locked(session, incident_id, scope)
    scope.require_grid(current["grid_id"], gettext("this incident"))  # seen as its responder only
    if current["status"] not in OPEN_INCIDENT_STATUSES:
        session.rollback()
        raise ConflictError(
            format_message(
                "cannot escalate an incident that is {status}", status=current["status"]
            ),
            status_now=current["status"],
            allowed_actions=allowed_actions(current["status"]),
        )
    if current["escalation_level"] >= TOP_LEVEL:
        session.rollback()
        raise ConflictError(
            format_message(
                "the incident is already at the {value}", value=ESCALATION_LEVELS[TOP_LEVEL]
            )
        )
    level = current["escalation_level"] + 1
    session.execute(
        text(
            "UPDATE incidents SET escalation_level = :l, escalated_at = now(), updated_at = now() "
            "WHERE id = :id"
        ),
        {"l": level, "id": incident_id},
    )
    if not _remember_key(session, scope, idempotency_key, incident_id, "escalate"):
        return _replay_after_race(session, scope, idempotency_key, incident_id, "escalate")
    said = (reason or NO_REASON)[:2000]
    _record_escalations(session, [{"id": incident_id, "to": level, "who": actor, "why": said}])
    _audit(
        session,
        actor,
        "escalate",
        incident_id,
        {
            "before": {"escalation_level": level - 1},
            "after": {"escalation_level": level, "escalated_to": ESCALATION_LEVELS[level]},
            "reason": said,
        },
    )
    session.commit()
    return get_incident(session, incident_id, scope=scope)


def escalate_overdue(session: Session, *, now: datetime | None = None, actor: str) -> list[dict]:
    """Climb every open incident past its stage target one level (grid -> community -> street
    -> district), with an audit row each. Safe to run from several processes at once: rows
    another run holds are skipped, and a transaction-level advisory lock lets one run at a time.
    """
    if not session.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtext('geo.escalate'))")
    ).scalar_one():
        session.rollback()
        return []
    now = now or runtime.current().clock.now(session)
    stage = STAGE_TARGET_S.format(i="i")
    rows = (
        session.execute(
            text(
                f"""
                WITH due AS (
                    SELECT i.id, {stage} AS target_s FROM incidents i
                    WHERE i.status = ANY(:open)
                      AND i.escalation_level < :top
                      AND :now > coalesce(i.escalated_at, i.reported_at)
                                 + make_interval(secs => {stage})
                    ORDER BY i.id FOR UPDATE SKIP LOCKED
                )
                UPDATE incidents i SET escalation_level = i.escalation_level + 1,
                       escalated_at = :now, updated_at = now()
                FROM due WHERE i.id = due.id
                RETURNING i.id, i.escalation_level, i.status, due.target_s
                """
            ),
            {"now": now, "top": TOP_LEVEL, "open": list(OPEN_INCIDENT_STATUSES)},
        )
        .mappings()
        .all()
    )
    reasons = {
        r["id"]: overdue_reason(
            "accept" if r["status"] in ("reported", "dispatched") else "resolve", r["target_s"]
        )
        for r in rows
    }
    _record_escalations(
        session,
        [
            {"id": r["id"], "to": r["escalation_level"], "who": actor, "why": reasons[r["id"]]}
            for r in rows
        ],
        at=now,
    )
    for r in rows:
        _audit(
            session,
            actor,
            "escalate",
            r["id"],
            {
                "before": {"escalation_level": r["escalation_level"] - 1},
                "after": {
                    "escalation_level": r["escalation_level"],
                    "escalated_to": ESCALATION_LEVELS[r["escalation_level"]],
                },
                "reason": reasons[r["id"]],
            },
        )
    session.commit()
    return [
        {"id": str(r["id"]), "escalation_level": r["escalation_level"], "status": r["status"]}
        for r in rows
    ]


def candidates(
    session: Session,
    incident_id: uuid.UUID,
    *,
    k: int,
    kind: str | None,
    skill: str | None,
    scope: Scope,
    stale_s: int,
    by: str = "distance",
    walking_speed_mps: float = 1.4,
) -> dict[str, Any]:
    """Who to send: the incident grid's own worker first when they can make the response
    target ("small matters stay in the grid"), then the nearest others, by straight-line
    distance or (``by="travel_time"``) road ETA. Only responders of the kinds the incident's
    category needs are offered (``needed_kinds``; ``kind`` asks for one kind instead, the
    dispatcher's override), and only those the caller may see: the same filter as
    ``/responders/nearest`` (``responders.visible_grids``).

    Returns ``{incident_id, priority, target_s, by, policy, kinds, candidates}``; ``kinds``
    the kinds the candidates were drawn from (None: any).
    """
    incident = get_incident(session, incident_id, scope=scope)
    grid_id = incident["grid"]["id"] if incident["grid"] else None
    target_s = session.execute(
        text("SELECT dispatch_s FROM response_targets WHERE priority = :p"),
        {"p": incident["priority"]},
    ).scalar_one()
    needs = needed_kinds(session, incident["category"]) if kind is None else None
    query = NearestQuery(
        lon=incident["lon"], lat=incident["lat"], k=k, kind=kind, skill=skill, kinds=needs
    )

    def rank(q: NearestQuery) -> list[dict[str, Any]]:
        if by == "travel_time":
            return nearest_by_travel_time(
                session, q, scope=scope, stale_s=stale_s, walking_speed_mps=walking_speed_mps
            )
        return nearest(session, q, scope=scope, stale_s=stale_s)

    ranked = rank(query)
    own = (
        session.execute(
            text(
                "SELECT id FROM responders WHERE kind = 'grid_worker' AND home_grid_id = :g "
                "ORDER BY id"
            ),
            {"g": grid_id},
        )
        .scalars()
        .all()
    )
    own_ids = set(own)
    first: list[dict[str, Any]] = []
    if own_ids and kind in (None, "grid_worker") and (needs is None or "grid_worker" in needs):
        own_ranked = [c for c in ranked if c["id"] in own_ids]
        if not own_ranked:  # the own worker may be beyond the k nearest: rank them alone
            own_ranked = [
                c
                for c in rank(replace(query, k=100, kind="grid_worker", kinds=None))
                if c["id"] in own_ids
            ][:1]
        first = [c for c in own_ranked if c["eta_s"] <= target_s][:1]
    rest = [c for c in ranked if not first or c["id"] != first[0]["id"]]
    out = [{**c, "own_grid_worker": c["id"] in own_ids} for c in (first + rest)[:k]]
    return {
        "incident_id": str(incident_id),
        "priority": incident["priority"],
        "target_s": target_s,
        "by": by,
        "policy": gettext(
            "only the kinds the category needs; own grid worker first when within the "
            "target, then nearest"
        ),
        "kinds": list(needs) if needs is not None else ([kind] if kind else None),
        "candidates": out,
    }


def needed_kinds(session: Session, category: str) -> tuple[str, ...] | None:
    """The kinds of responder a category's incidents need (``vocabulary.responder_kinds_for``:
    by code, else the category's group; None: any kind).

    Raises
    ------
    InvalidInputError
        An unknown category (422 naming the known ones).
    """
    group = session.execute(
        text('SELECT "group" FROM categories WHERE code = :c'), {"c": category}
    ).scalar_one_or_none()
    if group is None:
        require_known_category(session, category)
    return responder_kinds_for(category, group)


def response_targets(session: Session) -> dict[int, int]:
    """Seconds to dispatch, per priority."""
    return dict(session.execute(text("SELECT priority, dispatch_s FROM response_targets")).all())


def set_response_targets(session: Session, targets: dict[int, int], *, actor: str) -> dict:
    """Change dispatch targets (seconds per priority 1..4), with an audit row."""
    for priority, seconds in targets.items():
        if priority not in (1, 2, 3, 4):
            raise InvalidInputError(
                format_message("priority must be 1..4, got {priority}", priority=priority)
            )
        if not 0 < seconds <= 7 * 86400:
            raise InvalidInputError(
                format_message(
                    "the target for priority {priority} must be 1 s..7 days", priority=priority
                )
            )
    before = response_targets(session)
    for priority, seconds in targets.items():
        session.execute(
            text("UPDATE response_targets SET dispatch_s = :s WHERE priority = :p"),
            {"s": seconds, "p": priority},
        )
    after = response_targets(session)
    record_audit(
        session,
        who=actor,
        action="update",
        entity="response_targets",
        entity_id="dispatch",
        diff={"before": before, "after": after},
    )
    session.commit()
    return after

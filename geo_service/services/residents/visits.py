"""Household visits (issue 20): the grid worker's door-to-door round.

Rows -- which household, when it was last visited, what came of it -- are household rows:
only admins and the grid's own worker see them (``disclosure.sees_exact``, the rule of
``GET /households``); a household outside the caller's rows answers 404 like a missing one.
A visit records the day, the outcome and the two service flags as found, and sets the
household's flags to what was found (a visit is where they are learnt). Everyone else gets
the coverage per grid as an aggregate: households and households visited within the period,
published by the disclosure module's rounding for callers who may not see the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from geo_service.i18n import format_message, gettext, names_language
from geo_service.runtime import current
from geo_service.services.access import disclosure
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.areas import require_grid_filter
from geo_service.services.boundaries.versions import version_in_force
from geo_service.vocabulary import VISIT_OUTCOMES

# a visit recorded late (a phone offline for days) is fine; a year late is a typo
MAX_VISIT_AGE_DAYS = 366


@dataclass(frozen=True)
class NewVisit:
    """What a grid worker records at a door."""

    visited_on: date
    outcome: str
    elderly_living_alone: bool | None = None
    needs_assistance: bool | None = None


def local_today(session: Session, timezone: str) -> date:
    """Today in the deployment's time zone, by the runtime's clock (held in tests)."""
    now: datetime = current().clock.now(session)
    return now.astimezone(ZoneInfo(timezone)).date()


_ROWS = text(
    """
    SELECT h.id, ST_X(h.location) AS lon, ST_Y(h.location) AS lat, h.household_size,
           h.elderly_living_alone, h.needs_assistance, h.address,
           v.visited_on AS last_visit_on, v.outcome AS last_outcome,
           coalesce(n.visits, 0) AS visits
    FROM households h
    LEFT JOIN LATERAL (
        SELECT visited_on, outcome FROM household_visits
        WHERE household_id = h.id ORDER BY visited_on DESC, id DESC LIMIT 1
    ) v ON true
    LEFT JOIN LATERAL (
        SELECT count(*) AS visits FROM household_visits WHERE household_id = h.id
    ) n ON true
    WHERE h.grid_id = :g
      AND (NOT :due_only OR v.visited_on IS NULL OR v.visited_on <= :cutoff)
    ORDER BY v.visited_on ASC NULLS FIRST, h.id
    """
)


def list_visits(
    session: Session,
    scope: Scope,
    grid_id: int,
    *,
    period_days: int,
    due_only: bool,
    timezone: str,
) -> dict[str, Any]:
    """One grid's households with their last visit (``last_visit_on``, ``last_outcome``,
    ``visits``) and ``due``: not visited within ``period_days`` (never visited, or last
    visited on or before today - period). Longest unvisited first. 403 unless the caller
    sees the grid's household rows (admins and the grid's own worker)."""
    if not disclosure.sees_exact(scope, [grid_id]):
        raise PermissionDeniedError(
            gettext(
                "household visits are shown only to admins and the grid's own worker; use "
                "/households/visits/coverage"
            )
        )
    require_grid_filter(session, grid_id, scope)  # an unknown grid: 404, not an empty page
    today = local_today(session, timezone)
    cutoff = today - timedelta(days=period_days)
    rows = (
        session.execute(_ROWS, {"g": grid_id, "due_only": due_only, "cutoff": cutoff})
        .mappings()
        .all()
    )
    data = []
    for r in rows:
        item = dict(r)
        last = item["last_visit_on"]
        item["due"] = last is None or last <= cutoff
        item["last_visit_on"] = last.isoformat() if last else None
        data.append(item)
    return {
        "grid_id": grid_id,
        "today": today.isoformat(),
        "period_days": period_days,
        "due": sum(1 for d in data if d["due"]),
        "count": len(data),
        "data": data,
    }


def _visit_public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "household_id": row.household_id,
        "visited_on": row.visited_on.isoformat(),
        "outcome": row.outcome,
        "elderly_living_alone": row.elderly_living_alone,
        "needs_assistance": row.needs_assistance,
        "created_at": row.created_at.isoformat(),
    }


_VISIT_COLUMNS = (
    "id, household_id, visited_on, outcome, elderly_living_alone, needs_assistance, created_at"
)


def record_visit(
    session: Session,
    scope: Scope,
    household_id: int,
    visit: NewVisit,
    *,
    actor: str,
    idempotency_key: str | None,
    timezone: str,
) -> tuple[dict[str, Any], bool]:
    """Record a visit and set the household's two flags to what was found (a flag sent as
    null leaves the stored one); return the visit and whether it was recorded now (False: the
    same user's ``idempotency_key`` again, nothing written). 404 for a household whose rows
    the caller may not see (another grid's reads as missing), 422 for a day in the future or
    more than a year back or an unknown outcome. Audited with the flags before and after."""
    scope.require("households:write")
    if visit.outcome not in VISIT_OUTCOMES:
        raise InvalidInputError(
            format_message("outcome must be one of {values}", values=", ".join(VISIT_OUTCOMES))
        )
    user = scope.principal.user_id
    if idempotency_key is not None:
        done = session.execute(
            text(
                f"SELECT {_VISIT_COLUMNS} FROM household_visits "
                "WHERE recorded_by = :u AND request_key = :k"
            ),
            {"u": user, "k": idempotency_key},
        ).first()
        if done is not None:
            if done.household_id != household_id:
                raise IdempotencyKeyReusedError(
                    format_message(
                        "this Idempotency-Key recorded a visit to household {household_id}",
                        household_id=done.household_id,
                    )
                )
            return _visit_public(done), False
    home = session.execute(
        text(
            "SELECT id, grid_id, elderly_living_alone, needs_assistance FROM households "
            "WHERE id = :h FOR UPDATE"
        ),
        {"h": household_id},
    ).first()
    if home is None or home.grid_id is None or not disclosure.sees_exact(scope, [home.grid_id]):
        session.rollback()
        raise NotFoundError(
            format_message("household {household_id} does not exist", household_id=household_id)
        )
    today = local_today(session, timezone)
    if visit.visited_on > today:
        raise InvalidInputError(
            format_message(
                "visited_on {visited_on} lies after today ({today})",
                visited_on=visit.visited_on,
                today=today,
            )
        )
    if visit.visited_on < today - timedelta(days=MAX_VISIT_AGE_DAYS):
        raise InvalidInputError(
            format_message(
                "visited_on may be at most {max_visit_age_days} days back",
                max_visit_age_days=MAX_VISIT_AGE_DAYS,
            )
        )
    row = session.execute(
        text(
            "INSERT INTO household_visits (household_id, visited_on, outcome, "
            "elderly_living_alone, needs_assistance, recorded_by, request_key) "
            "VALUES (:h, :d, :o, :e, :n, :u, :k) ON CONFLICT DO NOTHING "
            f"RETURNING {_VISIT_COLUMNS}"
        ),
        {
            "h": household_id,
            "d": visit.visited_on,
            "o": visit.outcome,
            "e": visit.elderly_living_alone,
            "n": visit.needs_assistance,
            "u": user,
            "k": idempotency_key,
        },
    ).first()
    if row is None:  # the same key won a race
        session.rollback()
        return record_visit(
            session,
            scope,
            household_id,
            visit,
            actor=actor,
            idempotency_key=idempotency_key,
            timezone=timezone,
        )
    before = {
        "elderly_living_alone": home.elderly_living_alone,
        "needs_assistance": home.needs_assistance,
    }
    after = {
        "elderly_living_alone": coalesce(visit.elderly_living_alone, home.elderly_living_alone),
        "needs_assistance": coalesce(visit.needs_assistance, home.needs_assistance),
    }
    session.execute(
        text(
            "UPDATE households SET elderly_living_alone = :e, needs_assistance = :n WHERE id = :h"
        ),
        {"e": after["elderly_living_alone"], "n": after["needs_assistance"], "h": household_id},
    )
    public = _visit_public(row)
    record_audit(
        session,
        who=actor,
        action="create",
        entity="household_visit",
        entity_id=str(row.id),
        diff={
            "after": public,
            "household": {"id": household_id, "before": before, "after": after},
            "idempotency_key": idempotency_key,
        },
    )
    session.commit()
    return public, True


def coalesce(value: bool | None, default: bool | None) -> bool | None:
    """``value`` unless it is None."""
    return default if value is None else value


_COVERAGE = text(
    """
    SELECT a.id, a.code, coalesce(a.names ->> :lang, a.name) AS name, count(h.id) AS households,
           count(h.id) FILTER (WHERE EXISTS (
               SELECT 1 FROM household_visits v
               WHERE v.household_id = h.id AND v.visited_on > :cutoff)) AS visited,
           disclosure_key('area:' || a.id) AS household_key,
           disclosure_key('visited:area:' || a.id) AS visited_key
    FROM areas a LEFT JOIN households h ON h.grid_id = a.id
    WHERE a.version_id = :v AND a.level = 'grid' AND (:all_grids OR a.id = ANY(:grids))
    GROUP BY a.id ORDER BY a.id
    """
)


def coverage(
    session: Session, scope: Scope, *, period_days: int, timezone: str, min_count: int
) -> dict[str, Any]:
    """Per grid of the version in force in the caller's area: ``households``, ``visited``
    (households visited within ``period_days``) and ``coverage`` (visited / households, 0..1).
    Exact for those who see the grid's rows; for everyone else both counts are published by
    fixed random rounding to base ``min_count`` (households with the grid's own key, as in
    every other route; visited with a key of its own), null when a count rounds to 0, and
    ``coverage`` is computed from the published counts."""
    scope.require("households:aggregate")
    today = local_today(session, timezone)
    cutoff = today - timedelta(days=period_days)
    rows = session.execute(
        _COVERAGE,
        {
            "v": version_in_force(session),
            "cutoff": cutoff,
            "all_grids": scope.grid_ids is None,
            "grids": list(scope.grid_ids or ()),
            "lang": names_language(),  # grid names in the request's language (areas.names)
        },
    ).all()
    grids = []
    for r in rows:
        exact = disclosure.sees_exact(scope, [r.id])
        households = int(r.households)
        visited = int(r.visited)
        if not exact:
            households = disclosure.round_count(
                households, r.household_key, "households", min_count
            )
            visited = disclosure.round_count(visited, r.visited_key, "visited", min_count)
        shown_households = households if households or exact else None
        shown_visited = visited if visited or exact else None
        share = None
        if shown_households:
            share = round(min(1.0, disclosure.published_value(shown_visited) / households), 4)
        grids.append(
            {
                "grid_id": r.id,
                "code": r.code,
                "name": r.name,
                "households": shown_households,
                "visited": shown_visited,
                "coverage": share,
                "exact": exact,
            }
        )
    return {"today": today.isoformat(), "period_days": period_days, "grids": grids}

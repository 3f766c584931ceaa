"""An incident's escalation history as every reader gets it (issue 19): one builder for
``GET /incidents/{id}`` (``escalations``) and ``GET /incidents/{id}/escalations``, and the
reasons the service writes itself, read in the reader's language.

A reason the service writes (the overdue sweep, an escalation by hand without a reason, the
history recorded from an incident's level) is stored in a recognisable English form, as the
audit log keeps it: ``not accepted within 3600 s``, ``not resolved within 3600 s``, ``by
hand``, ``recorded from incidents.escalation_level`` (``backfilled from …`` by migration
0035). Reading maps each form to a stable ``reason_code`` and its catalogue message, so rows
written before this reads alike; a person's own words are shown as typed.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo_service.db.models import IncidentEscalation
from geo_service.i18n import N_, format_duration, format_message

ESCALATION_LEVELS = ("grid", "community", "street", "district")

# the reasons the service writes, by stable code: how they are stored (English, a pattern
# whose groups are the message's values) and the message shown
_SERVICE_REASONS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "not_accepted_in_time",
        re.compile(r"not accepted within (?P<seconds>\d+) s"),
        N_("not accepted within {duration}"),
    ),
    (
        "not_resolved_in_time",
        re.compile(r"not resolved within (?P<seconds>\d+) s"),
        N_("not resolved within {duration}"),
    ),
    ("no_reason_given", re.compile(r"by hand"), N_("by hand, no reason given")),
    (
        "recorded_from_level",
        re.compile(r"(?:recorded|backfilled) from incidents\.escalation_level"),
        N_("recorded from the incident's escalation level (when is not known)"),
    ),
)
# what ``escalate_one`` stores when a person gives no reason
NO_REASON = "by hand"


def overdue_reason(stage: str, target_s: int) -> str:
    """The stored reason of the overdue sweep's climb: ``stage`` ``"accept"`` or
    ``"resolve"`` missed its target of ``target_s`` seconds (recognised by ``reason_shown``).

    >>> overdue_reason("accept", 3600)
    'not accepted within 3600 s'
    """
    return f"not {stage.removesuffix('e')}ed within {int(target_s)} s"


def reason_shown(stored: str | None) -> tuple[str | None, str | None]:
    """``(reason_code, reason)`` of a stored reason: a service-written one as its stable
    code and its message in the current language; a person's own words ``(None, as typed)``.

    >>> reason_shown("not resolved within 7200 s")
    ('not_resolved_in_time', 'not resolved within 2 h')
    >>> reason_shown("backfilled from incidents.escalation_level")[0]
    'recorded_from_level'
    >>> reason_shown("the property company must act")
    (None, 'the property company must act')
    """
    if stored is None:
        return None, None
    text = stored.strip()
    for code, form, message in _SERVICE_REASONS:
        found = form.fullmatch(text)
        if found:
            parts: dict[str, Any] = found.groupdict()
            if "seconds" in parts:  # a target as people say it: 1 h, not 3600 s
                parts["duration"] = format_duration(int(parts.pop("seconds")))
            return code, format_message(message, **parts)
    return None, stored


def escalation_public(
    from_level: int, to_level: int, at: Any, who: str | None, reason: str | None
) -> dict[str, Any]:
    """One climb as both reads answer it (``api.schemas.EscalationPublic``): numeric levels
    and their names, ``who`` and ``by`` (the same), the reason in the reader's language and
    its ``reason_code`` (None for a person's own words)."""
    code, shown = reason_shown(reason)
    return {
        "from_level": from_level,
        "to_level": to_level,
        "escalated_from": ESCALATION_LEVELS[from_level],
        "escalated_to": ESCALATION_LEVELS[to_level],
        "at": at.isoformat(),
        "who": who,
        "by": who,
        "reason": shown,
        "reason_code": code,
    }


def embedded_climb(climb: dict[str, Any]) -> dict[str, Any]:
    """A climb as ``GET /incidents/{id}`` embeds it: the same object, but ``from_level`` and
    ``to_level`` by name, as that read first published them (a contract; the list read
    has them by number, and both carry the names as ``escalated_from``/``escalated_to``)."""
    return {**climb, "from_level": climb["escalated_from"], "to_level": climb["escalated_to"]}


def hidden_climb(climb: dict[str, Any]) -> dict[str, Any]:
    """A climb for roles that may not read free text: who and why left out."""
    return {**climb, "who": None, "by": None, "reason": None, "reason_code": None}


def escalation_rows(session: Session, incident_id: uuid.UUID) -> list[dict[str, Any]]:
    """The incident's escalations, oldest first, each as ``escalation_public`` builds it
    (no scope check: the callers read the incident first)."""
    climbs = session.execute(
        select(
            IncidentEscalation.from_level,
            IncidentEscalation.to_level,
            IncidentEscalation.at,
            IncidentEscalation.who,
            IncidentEscalation.reason,
        )
        .where(IncidentEscalation.incident_id == incident_id)
        .order_by(IncidentEscalation.at, IncidentEscalation.id)
    ).all()
    return [escalation_public(c.from_level, c.to_level, c.at, c.who, c.reason) for c in climbs]

"""The grid worker's phone page (``/app``, issue 20): what the page needs to start.

Everything else the page does goes through the public API as any device would: its tasks are
``GET /console/incidents`` (scoped: the grid's open incidents and those dispatched to the
worker, urgency first, with the stage's target), live changes ``GET /console/stream``, the
lifecycle ``POST /incidents/{id}/{action}`` and reports ``POST /incidents`` (both with an
``Idempotency-Key``, so the phone's offline queue may send them again), duty
``PATCH /responders/{id}`` and positions ``POST /responders/positions``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.i18n import localized, names_language
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force


def field_page_context(session: Session, *, scope: Scope) -> dict[str, Any]:
    """The worker's responder (id, callsign, status: '' without one), their grid in the
    version in force (id, code, name: '' for a user bound to no grid) and the categories
    (code, name in the request's language, default priority) a report may name: those in use."""
    principal = scope.principal
    responder = None
    if principal.responder_id is not None:
        responder = session.execute(
            text("SELECT id, callsign, status FROM responders WHERE id = :r"),
            {"r": principal.responder_id},
        ).first()
    grid = None
    if principal.area_code is not None:
        grid = session.execute(
            text(
                "SELECT id, code, coalesce(names ->> :lang, name) AS name FROM areas "
                "WHERE version_id = :v AND code = :c AND level = 'grid'"
            ),
            # the header shows the grid's name in the page's language (areas.names)
            {"v": version_in_force(session), "c": principal.area_code, "lang": names_language()},
        ).first()
    categories = session.execute(
        text(
            "SELECT code, name, names, default_priority FROM categories "
            "WHERE retired_at IS NULL ORDER BY code"
        )
    ).all()
    return {
        "responder_id": responder.id if responder else "",
        "callsign": responder.callsign if responder else "",
        "responder_status": responder.status if responder else "",
        "grid_id": grid.id if grid else "",
        "grid_code": grid.code if grid else "",
        "grid_name": grid.name if grid else "",
        "categories": [
            (c.code, localized(c.names, c.name), c.default_priority) for c in categories
        ],
    }

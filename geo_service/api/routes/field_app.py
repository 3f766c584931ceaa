"""The grid worker's phone page: ``/app`` (issue 20), its service worker and its manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from geo_service.api.deps import SessionDep, SettingsDep, require
from geo_service.i18n import current_language, gettext
from geo_service.services.access.scope import Scope
from geo_service.services.access.web_sessions import SESSION_COOKIE, csrf_token_for
from geo_service.services.dispatch.field import field_page_context
from geo_service.web.basemaps import base_maps
from geo_service.web.pages import render_page, tile_source

router = APIRouter(tags=["maps"])

PAGES = Path(__file__).resolve().parents[2] / "web" / "static" / "pages"
# positions are shared every POSITION_INTERVAL_S while on duty (the simulator's and the
# soak bench's rate: one fix every 30 s a phone)
POSITION_INTERVAL_S = 30


@router.get("/app", response_class=HTMLResponse)
def read_field_app(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("responders:self"))],
) -> HTMLResponse:
    """The grid worker's phone page: my tasks (the grid's open incidents and those dispatched
    to me, urgency first, with the time left against the stage's target; accept, arrive,
    resolve with a note and resolution code, escalate with a reason; live over
    ``/console/stream``), report what I find (``source: grid_worker``, GPS or a tap on the
    map), an on-duty switch (a position every 30 s while on duty, never while off), and an
    offline queue (IndexedDB, sent with Idempotency-Keys when the connection returns).
    Writes ride the sign-in session with its CSRF token. 403 page for roles without
    ``responders:self`` (dispatchers, planners, analysts)."""
    scope.require("incidents:write")
    csrf = csrf_token_for(session, request.cookies.get(SESSION_COOKIE))
    tiles = tile_source(settings.api.map_tiles)
    page = render_page(
        "field_app.html",
        csrf_token=csrf,
        tiles=json.dumps(tiles) if tiles else "",
        basemaps=json.dumps(base_maps(settings.maps, settings.api.map_tiles), ensure_ascii=False),
        position_interval_s=POSITION_INTERVAL_S,
        **field_page_context(session, scope=scope),
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/app/sw.js", include_in_schema=False)
def read_field_app_worker() -> Response:
    """The page's service worker: keeps the page and its scripts for use without a connection.
    Served under ``/app`` and allowed the scope ``/app`` (Service-Worker-Allowed)."""
    return Response(
        (PAGES / "field_app_sw.js").read_bytes(),
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/app", "Cache-Control": "no-cache"},
    )


@router.get("/app/manifest.webmanifest", include_in_schema=False)
def read_field_app_manifest() -> Response:
    """The web app manifest that makes ``/app`` installable (W3C Web Application Manifest),
    its ``name``, ``short_name`` and ``description`` in the request's language (``lang``)."""
    manifest = json.loads((PAGES / "field_app.webmanifest").read_bytes())
    manifest.update(
        name=gettext("geo-service: my grid"),
        short_name=gettext("My grid"),
        description=gettext("Tasks, reports and household visits for the grid worker"),
        lang=current_language(),
    )
    return Response(
        json.dumps(manifest, ensure_ascii=False).encode(),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )

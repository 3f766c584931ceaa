"""Map pages for people: ``/map``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.api.deps import HEAVY, SessionDep, SettingsDep, require
from geo_service.api.params import Instant
from geo_service.i18n import localized
from geo_service.instants import local_day
from geo_service.services.access.scope import Scope
from geo_service.services.access.web_sessions import SESSION_COOKIE, csrf_token_for
from geo_service.services.layers.maps import city_map_layers
from geo_service.settings import Settings
from geo_service.web.basemaps import base_maps, image_origins
from geo_service.web.city_map import render_city_map
from geo_service.web.pages import content_security_policy, new_nonce, render_page, tile_source

router = APIRouter(tags=["maps"])


@router.get("/map", response_class=HTMLResponse, dependencies=[HEAVY])
def read_city_map(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("map:read"))],
    days: Annotated[int | None, Query(ge=1, le=3660, description="window length")] = None,
    until: Annotated[Instant | None, Query(description="end of the window; default now")] = None,
) -> HTMLResponse:
    """The city divided into grids, coloured by incidents in the last 30 days (or the
    ``days`` before ``until``).
    """
    layers = city_map_layers(
        session, window_days=days or settings.api.map_window_days, until=until, scope=scope
    )
    # folium writes its map as inline script: those tags (and only those) carry a nonce
    nonce = new_nonce()
    page = render_city_map(
        layers, tiles=settings.api.map_tiles, nonce=nonce, basemaps=_basemaps_config(settings)
    )
    origins = image_origins(settings.maps, settings.api.map_tiles)
    policy = content_security_policy(settings.api.map_tiles, nonce, origins)
    return HTMLResponse(page, headers={"Content-Security-Policy": policy})


@router.get("/map/heatmap", response_class=HTMLResponse)
def read_heatmap_page(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("map:read"))],
) -> HTMLResponse:
    """Heatmap and hot spot classes over community outlines, with category, window and week
    controls (data loads from /heatmap/h3 and /hotspots with the page's sign-in cookie).
    """
    categories = session.execute(
        text("SELECT code, name, names FROM categories ORDER BY code")
    ).all()
    newest = session.execute(
        text("SELECT coalesce(max(reported_at), now()) FROM incidents")
    ).scalar_one()
    # windows are whole local days ending at the local midnight after the newest incident
    end = local_day(newest) + timedelta(days=1)
    page = render_page(
        "heatmap.html",
        categories=[(c, localized(names, n)) for c, n, names in categories],  # names, never codes
        weeks=52,
        end=end.isoformat(),
        tiles=_tiles_config(settings.api.map_tiles),
        basemaps=_basemaps_config(settings),
    )
    return HTMLResponse(page)


@router.get("/map/dispatch", response_class=HTMLResponse)
def read_dispatch_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("responders:read"))],
) -> HTMLResponse:
    """The dispatcher's console: every open incident the caller sees, urgency first (by
    priority, then how far past the target of its stage since the report), with the server's
    counts, paged in the list and all on the map; responders by status; grid outlines. One
    full load (``/console/incidents``), then changes pushed over ``/console/stream``. Click
    an incident to pan to it, see candidates with ETAs and dispatch, reassign, act for a
    responder, escalate or cancel. Writes ride the sign-in session cookie with the session's
    CSRF token, which the page carries (no bearer token in the page).
    """
    scope.require("incidents:read")
    return _session_page(request, session, settings, "dispatch.html", page_size=DISPATCH_PAGE_ROWS)


DISPATCH_PAGE_ROWS = 50  # rows of the console's list per page (the map shows them all)


@router.get("/map/planner", response_class=HTMLResponse)
def read_planner_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("workload:read"))],
) -> HTMLResponse:
    """The planner's page: choose a district, street or community and the proposal's
    settings; today's grids and the draft side by side (or toggled), coloured by workload, with
    per-grid tables and the balance from ``GET /workload``; hand edits of the draft, export
    links, publishing. Proposals, edits and publishing ride the sign-in session cookie with
    its CSRF token."""
    scope.require("proposals:write")
    return _session_page(request, session, settings, "planner.html")


def _session_page(
    request: Request, session: Session, settings: Settings, template: str, **extra: Any
) -> HTMLResponse:
    csrf = csrf_token_for(session, request.cookies.get(SESSION_COOKIE))
    page = render_page(
        template,
        csrf_token=csrf,
        tiles=_tiles_config(settings.api.map_tiles),
        basemaps=_basemaps_config(settings),
        **extra,
    )
    # the CSRF token is this session's: never cache the page
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def _tiles_config(setting: str) -> str:
    """The base layer of a Leaflet page as JSON for its ``data-tiles`` ('' for none)."""
    source = tile_source(setting)
    return json.dumps(source) if source else ""


def _basemaps_config(settings: Settings) -> str:
    """The base maps a Leaflet page offers, as JSON for its ``data-basemaps``
    (``web/basemaps.py``; ``static/pages/basemaps.js`` draws the switcher)."""
    return json.dumps(base_maps(settings.maps, settings.api.map_tiles), ensure_ascii=False)

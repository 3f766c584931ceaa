"""Map pages for people: ``/map``."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import text

from geo_service.api.deps import PrincipalDep, SessionDep, SettingsDep, require
from geo_service.services.access import Scope
from geo_service.services.auth import Principal, issue_token
from geo_service.services.maps import city_map_layers
from geo_service.settings import Settings
from geo_service.web.city_map import render_city_map

router = APIRouter(tags=["maps"])


@router.get("/map", response_class=HTMLResponse)
def read_city_map(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("map:read"))],
    days: Annotated[int | None, Query(ge=1, le=3660, description="window length")] = None,
    until: Annotated[datetime | None, Query(description="end of the window; default now")] = None,
) -> HTMLResponse:
    """The city divided into grids, coloured by incidents in the last 30 days (or the
    ``days`` before ``until``).
    """
    layers = city_map_layers(
        session, window_days=days or settings.api.map_window_days, until=until, scope=scope
    )
    tiles = None if settings.api.map_tiles.lower() == "none" else settings.api.map_tiles
    return HTMLResponse(render_city_map(layers, tiles=tiles))


TEMPLATES = Path(__file__).resolve().parent.parent.parent / "web" / "templates"


@router.get("/map/heatmap", response_class=HTMLResponse)
def read_heatmap_page(
    session: SessionDep,
    settings: SettingsDep,
    scope: Annotated[Scope, Depends(require("map:read"))],
) -> HTMLResponse:
    """Heatmap and hot spot classes over community outlines, with category, window and week
    controls (data loads from /heatmap/h3 and /hotspots with the page's sign-in cookie).
    """
    categories = session.execute(text("SELECT code, name FROM categories ORDER BY code")).all()
    end = session.execute(
        text("SELECT coalesce(max(reported_at), now()) FROM incidents")
    ).scalar_one()
    options = "".join(
        f'<option value="{html.escape(c)}">{html.escape(n)}</option>' for c, n in categories
    )
    tiles = _leaflet_tiles(settings.api.map_tiles)
    page = (TEMPLATES / "heatmap.html").read_text()
    page = (
        page.replace("{category_options}", options)
        .replace("{weeks}", "52")
        .replace("{end}", (end + timedelta(seconds=1)).isoformat())
        .replace("{tiles}", tiles)
    )
    return HTMLResponse(page)


@router.get("/map/dispatch", response_class=HTMLResponse)
def read_dispatch_page(
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    scope: Annotated[Scope, Depends(require("responders:read"))],
) -> HTMLResponse:
    """The dispatcher's live map: open incidents by priority and age (overdue ones pulse),
    responders by status, grid outlines; click an incident for candidates with ETAs and
    dispatch. Polls every few seconds. Writes carry a bearer token issued with the page (the
    sign-in cookie only reads), valid for ``GEO_JWT_TTL_S``.
    """
    scope.require("incidents:read")
    return _page_with_token(
        request, settings, principal, "dispatch.html", poll_ms=str(DISPATCH_POLL_MS)
    )


DISPATCH_POLL_MS = 5000


@router.get("/map/planner", response_class=HTMLResponse)
def read_planner_page(
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    scope: Annotated[Scope, Depends(require("workload:read"))],
) -> HTMLResponse:
    """The planner's page: today's grids and a proposal side by side (or toggled), coloured
    by workload, with the balance table and a publish button. Proposals and publishing carry
    a bearer token issued with the page (the sign-in cookie only reads)."""
    scope.require("proposals:write")
    return _page_with_token(request, settings, principal, "planner.html")


def _page_with_token(
    request: Request, settings: Settings, principal: Principal, template: str, **extra: str
) -> HTMLResponse:
    token = issue_token(principal, request.app.state.jwt_secret, settings.auth)["access_token"]
    page = (TEMPLATES / template).read_text()
    page = page.replace("{token}", token).replace("{tiles}", _leaflet_tiles(settings.api.map_tiles))
    for name, value in extra.items():
        page = page.replace("{" + name + "}", value)
    # the token is this person's: never cache the page
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def _leaflet_tiles(setting: str) -> str:
    """The base layer line of a Leaflet page: OpenStreetMap, a tile URL template, or none."""
    if setting.lower() == "none":
        return ""
    url = setting if "{z}" in setting else OSM_TILES
    attribution = "&copy; OpenStreetMap contributors" if url == OSM_TILES else ""
    return (
        f"L.tileLayer({json.dumps(url)}, {{maxZoom: 19, "
        f"attribution: {json.dumps(attribution)}}}).addTo(map);"
    )

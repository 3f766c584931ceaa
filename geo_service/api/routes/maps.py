"""Map pages for people: ``/map``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from geo_service.api.deps import SessionDep, SettingsDep, require
from geo_service.services.access import Scope
from geo_service.services.maps import city_map_layers
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

"""Map pages for people: ``/map``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from geo_service.api.deps import SessionDep, SettingsDep
from geo_service.services.maps import city_map_layers
from geo_service.web.city_map import render_city_map

router = APIRouter(tags=["maps"])


@router.get("/map", response_class=HTMLResponse)
def read_city_map(session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The city divided into grids, coloured by incidents in the last 30 days."""
    layers = city_map_layers(session, window_days=settings.api.map_window_days)
    tiles = None if settings.api.map_tiles.lower() == "none" else settings.api.map_tiles
    return HTMLResponse(render_city_map(layers, tiles=tiles))

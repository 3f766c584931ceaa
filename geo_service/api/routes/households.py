"""Households: rows for admins and the grid's own worker, published aggregates for others."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from geo_service.api.deps import PublicScopeDep, ScopeDep, SessionDep, SettingsDep
from geo_service.api.params import OutputCrs
from geo_service.api.responses import geojson_in_crs
from geo_service.api.schemas import INT32_MAX, INT64_MAX
from geo_service.api.schemas.residents import HouseholdAggregatePublic, HouseholdRowsPublic
from geo_service.geo.bbox import BBox
from geo_service.geo.crs import rows_from_wgs84
from geo_service.services.residents import households as household_service

router = APIRouter(prefix="/households", tags=["households"])


@router.get("", response_model=HouseholdRowsPublic, response_description="a page of household rows")
def read_households(
    session: SessionDep,
    settings: SettingsDep,
    scope: ScopeDep,
    grid_id: Annotated[int, Query(ge=1, le=INT32_MAX)],
    limit: Annotated[int, Query(ge=1)] = 100,
    after_id: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    crs: OutputCrs = "wgs84",
) -> dict[str, Any]:
    """Household rows of one grid (admins and that grid's own worker only), ``lon``/``lat``
    in ``crs``."""
    limit = min(limit, settings.api.max_page_size)
    page = household_service.list_household_rows(
        session, scope, grid_id, limit=limit, after_id=after_id
    )
    return {**page, "data": rows_from_wgs84(page["data"], crs)}


@router.get(
    "/aggregate",
    response_model=HouseholdAggregatePublic,
    response_description="published counts per area or H3 cell, as GeoJSON",
)
def read_household_aggregate(
    session: SessionDep,
    settings: SettingsDep,
    scope: PublicScopeDep,
    level: Literal["district", "street", "community", "grid"] | None = None,
    res: Annotated[int | None, Query(description="H3 resolution")] = None,
    crs: OutputCrs = "wgs84",
    bbox: Annotated[
        str | None,
        Query(
            description="minx,miny,maxx,maxy (WGS84): the areas or cells that meet the box, "
            "each with its whole count (not only the homes inside the box)"
        ),
    ] = None,
) -> dict[str, Any]:
    """Households, residents and rental units per area or H3 cell, published by disclosure
    control (random rounding to base ``min_cell_count``, consistent across every path); with
    ``bbox``, only the features that meet it, each published as without it."""
    box = BBox.parse(bbox, max_km2=settings.limits.bbox_km2) if bbox else None
    layer = household_service.aggregate(
        session,
        scope,
        level=level,
        res=res,
        min_count=settings.auth.min_cell_count,
        public_max_res=settings.auth.public_max_h3_res,
        bbox=box,
    )
    return geojson_in_crs(layer, crs)

"""Request and response models of the planning room: ``GET /workload`` and proposals."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from geo_service.api.params import CrsName, Instant
from geo_service.api.schemas.geojson import Timestamp
from geo_service.api.schemas.strict import Exact


class WeightsIn(BaseModel):
    """Multipliers of the workload terms (1 = the documented default hours)."""

    incidents: float = Field(1.0, ge=0, le=100)
    households: float = Field(1.0, ge=0, le=100)
    rental_units: float = Field(1.0, ge=0, le=100)
    travel: float = Field(1.0, ge=0, le=100)


class AtomsIn(BaseModel):
    """The pieces new grids are made of."""

    h3_res: Literal[9, 10, 11] = 10


class ConstraintsIn(BaseModel):
    """Bounds every new grid must keep, checked on the drawn polygons (none by default)."""

    households_min: int | None = Field(None, ge=0, le=1_000_000)
    households_max: int | None = Field(None, ge=0, le=1_000_000)
    area_min_m2: float | None = Field(None, ge=0, le=1e10)
    area_max_m2: float | None = Field(None, ge=0, le=1e10)
    compactness_min: float | None = Field(
        None, ge=0, le=1, description="Polsby-Popper (4 pi area / perimeter^2), reported"
    )


class ProposalIn(BaseModel):
    """A redraw request."""

    scope: list[str] = Field(
        min_length=1,
        max_length=200,
        description="codes of areas above grid level (community, street, district): their "
        "grids are redrawn, parent by parent",
    )
    target_grids: int | None = Field(None, ge=1, le=5000, description="default: today's count")
    weights: WeightsIn = Field(default_factory=WeightsIn)
    tolerance: float = Field(0.05, ge=0.005, le=0.5, description="share of the mean workload")
    locked_grids: list[str] = Field(default_factory=list, max_length=1000)
    atoms: AtomsIn = Field(default_factory=AtomsIn)
    stability: float = Field(1.0, ge=0, le=100, description="weight against moves")
    compactness: float = Field(1.0, ge=0, le=100)
    window_days: int = Field(90, ge=1, le=3660)
    until: Instant | None = Field(
        None, description="end of the history window (RFC 3339, with an offset); default now"
    )
    name: str | None = Field(None, max_length=200)
    constraints: ConstraintsIn = Field(default_factory=ConstraintsIn)


class WorkloadWeights(Exact):
    """The multipliers used."""

    incidents: float
    households: float
    rental_units: float
    travel: float


class WorkloadArea(Exact):
    """One area's workload terms and index."""

    id: int
    code: str
    name: str
    parent_id: int | None
    incident_hours: float
    incidents: int
    households: int | None = Field(description="published (rounded) unless seen exactly")
    rental_units: int | None
    area_km2: float
    index: float


class Balance(Exact):
    """How even the loads are (1 / 0 / 0 = perfectly even)."""

    max_over_mean: float
    cv: float
    gini: float


class ParentBalance(Balance):
    """Balance of the areas under one parent."""

    parent_id: int | None
    parent_code: str | None
    areas: int
    mean_index: float


class OverallBalance(Exact):
    """Balance of all areas shown (an empty object when there are none)."""

    max_over_mean: float | None = None
    cv: float | None = None
    gini: float | None = None


class WorkerLoad(Exact):
    """A grid worker's grids and summed index."""

    callsign: str
    grids: list[str]
    index: float


class WorkloadPublic(Exact):
    """``GET /workload``: the workload per area, its balance, and per grid worker."""

    level: Literal["grid", "community", "street", "district"]
    version_id: int = Field(description="the boundary version measured")
    attribution: Literal["stored", "located"] = Field(
        description="``stored``: records counted in the grid they are filed under (the version "
        "in force); ``located``: in the grid of this version holding their point"
    )
    window_days: int
    until: Timestamp
    weights: WorkloadWeights
    areas: list[WorkloadArea]
    parents: list[ParentBalance]
    overall: OverallBalance
    workers: list[WorkerLoad] = Field(description="grid level only")


class BlockMoveIn(BaseModel):
    """A street block of a draft moved to the grid next to it."""

    model_config = {"extra": "forbid"}

    lon: float = Field(ge=-180, le=180, description="longitude of a point in the block (crs)")
    lat: float = Field(ge=-90, le=90, description="latitude of a point in the block (crs)")
    to_grid: str = Field(min_length=1, max_length=100, description="code of the grid it joins")
    crs: CrsName = Field(
        default="wgs84", description="system of lon/lat and of the grids' polygons answered"
    )


class MovedPiece(Exact):
    """What moved."""

    kind: Literal["block", "cell"] = Field(
        description="a street block, or the H3 cell under the point where the block is most "
        "of its grid or no roads are loaded"
    )
    from_: str = Field(alias="from")
    to: str
    area_m2: float


class EditedGrid(Exact):
    """A grid the edit changed: its new polygon (GeoJSON, WGS84), area, and the grid of today
    it continues now."""

    code: str
    area_m2: float
    geometry: dict
    continues: str | None = Field(
        description="the code of the grid in force it covers more than half of (sharing the "
        "most area when several), else the one it shares most area with; null: none"
    )


class BlockMoveOut(Exact):
    """The edit made."""

    version_id: int
    moved: MovedPiece
    grids: list[EditedGrid]

"""Contracts of the boundaries room: areas (the hierarchy) and boundary versions (list,
validation, publish, diff)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from geo_service.api.params import Instant
from geo_service.api.schemas.geojson import AreaGeometry, Feature, FeatureCollection, Timestamp
from geo_service.api.schemas.intake import AreaLevel
from geo_service.api.schemas.planning import WorkloadWeights
from geo_service.api.schemas.strict import Exact

# The vocabulary's words (geo_service.vocabulary; a test keeps them equal).
VersionStatus = Literal["draft", "scheduled", "published", "retired"]

AREA_COUNTS = "areas per level (district, street, community, grid)"
RESTRICTED = "present for users bound to an area: the area the figures are cut to"

# --- areas ---------------------------------------------------------------------------------


class AreaProperties(Exact):
    """An area of the hierarchy."""

    id: int
    code: str = Field(
        description="unique in its version; '<parent code>/<local code>' where the source's "
        "codes are unique only within their parent"
    )
    local_code: str = Field(description="the code as the source gave it (within its parent)")
    name: str
    names: dict[str, str] = Field(
        default_factory=dict,
        description='the name per language, BCP 47 tag -> name (`{"en": "Anhe Community", '
        '"zh-CN": "安和社区"}`); `name` is the name as imported',
    )
    display_name: str = Field(
        description="the name in the request's language (`names`), else `name`"
    )
    level: AreaLevel
    parent_id: int | None
    version_id: int


class AreaFeature(Feature[AreaGeometry, AreaProperties]):
    """An area as a GeoJSON Feature (``id`` is the area id)."""

    id: int


class AreasPublic(FeatureCollection[AreaFeature]):
    """``GET /areas``: the areas asked for, as GeoJSON."""


class AreaStats(Exact):
    """An area's counts: homes published by disclosure control unless you may see the rows."""

    households: int | None
    residents: int | None
    rental_units: int | None
    suppressed: list[str] = Field(description="the fields published as null")
    open_incidents: int


class AreaDetailProperties(AreaProperties):
    """An area with its size and counts."""

    area_m2: float
    stats: AreaStats


class AreaDetailPublic(Feature[AreaGeometry, AreaDetailProperties]):
    """``GET /areas/{id}``: one area as a GeoJSON Feature."""

    id: int


# --- boundary versions ---------------------------------------------------------------------


class PublishRequest(BaseModel):
    """When the version takes effect, and whether to publish despite validation findings."""

    model_config = {"extra": "forbid"}

    effective_from: Instant
    force: bool = False
    override_reason: str | None = Field(
        None,
        min_length=3,
        max_length=500,
        description="why a proposal whose balance ended outside its band is published anyway "
        "(kept in the audit log); required for such a draft",
    )


class VersionPublic(Exact):
    """A boundary version."""

    id: int
    name: str
    status: VersionStatus
    effective_from: Timestamp | None
    effective_to: Timestamp | None
    notes: str | None
    created_at: Timestamp
    areas: dict[str, int] = Field(description=AREA_COUNTS)
    restricted_to: str | None = Field(default=None, description=RESTRICTED)


class VersionsPublic(Exact):
    """``GET /boundaries/versions``: every version, newest first."""

    data: list[VersionPublic]
    count: int


class InvalidGeometry(Exact):
    """An area whose geometry is not valid."""

    code: str
    level: str
    reason: str


class SiblingOverlap(Exact):
    """Two areas of one parent that overlap."""

    a: str
    b: str
    level: str
    area_m2: float


class GapInParent(Exact):
    """Part of a parent that none of its children covers."""

    parent: str
    level: str
    area_m2: float


class ChildCrossingParent(Exact):
    """A child reaching outside its parent."""

    child: str
    parent: str
    area_m2: float


class Sliver(Exact):
    """An area too small to be meant."""

    code: str
    level: str
    area_m2: float


class UnreachedArea(Exact):
    """A parent that no child reaches."""

    code: str
    level: str


class ValidationFindings(Exact):
    """The findings of each check (at most a fixed number each)."""

    invalid_geometries: list[InvalidGeometry]
    sibling_overlaps: list[SiblingOverlap]
    gaps_in_parent: list[GapInParent]
    children_crossing_parent: list[ChildCrossingParent]
    slivers: list[Sliver]
    unreached_areas: list[UnreachedArea]


class ValidationPublic(Exact):
    """A version's validation report."""

    version_id: int
    status: VersionStatus
    areas: dict[str, int] = Field(description=AREA_COUNTS)
    valid: bool
    findings: ValidationFindings
    summary: dict[str, int] = Field(description="findings per check")
    restricted_to: str | None = Field(default=None, description=RESTRICTED)


class MovedCounts(Exact):
    """Rows re-attributed to the new version's grids (homes published unless exact)."""

    total: int | None
    moved: int | None


class SharedGrid(Exact):
    """A grid homing more than one grid worker after a publish."""

    code: str
    workers: list[str] = Field(description="the workers' callsigns")


class GridWorkersAfterPublish(Exact):
    """What the planner must settle after grid workers followed their grids by overlap."""

    vacant_grids: list[str] = Field(description="changed grids left without a grid worker")
    shared_grids: list[SharedGrid]
    unhomed_workers: list[str] = Field(
        default_factory=list,
        description="callsigns of grid workers whose old grid no new grid covers (now homeless)",
    )


class UserRebound(Exact):
    """A user bound to an area the new version no longer has (or a re-homed grid worker)."""

    user: str
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str | None = None


class UsersAfterPublish(Exact):
    """Users whose area followed the new version, and those left with none."""

    rebound: list[UserRebound]
    unbound: list[UserRebound]


class UnschedulePublic(Exact):
    """A scheduled version taken back."""

    version_id: int
    status: Literal["draft"]


class DeletedVersionPublic(Exact):
    """A draft deleted, with its areas."""

    version_id: int
    name: str
    status: Literal["deleted"]
    areas: dict[str, int] = Field(description="areas deleted with it, per level")


class PublishPublic(Exact):
    """What publishing a version did."""

    version_id: int
    previous_version_id: int | None
    effective_from: Timestamp
    scheduled: bool = Field(
        False,
        description="true: effective_from lies ahead; the switch-over happens then and "
        "nothing moved yet",
    )
    reattributed: dict[str, MovedCounts] = Field(
        description="per table: households, rental_units, responders, incidents (empty when "
        "scheduled)"
    )
    grid_workers: GridWorkersAfterPublish | None = None
    users: UsersAfterPublish | None = None


class AreaSize(Exact):
    """An area added or removed."""

    code: str
    level: str
    area_m2: float


class AreaChange(Exact):
    """An area whose outline changed."""

    code: str
    level: str
    area_before_m2: float
    area_after_m2: float
    area_change_m2: float
    symmetric_difference_m2: float


class EntityMove(Exact):
    """Rows of one kind that move from one grid to another."""

    entity: str
    old_grid_id: int | None
    old_code: str | None
    new_grid_id: int | None
    new_code: str | None
    count: int | None = Field(description="homes published unless you see exact counts")
    suppressed: list[str]


class DiffPublic(Exact):
    """Areas added, removed and changed from one version to another, and entity moves."""

    from_version: int
    to_version: int
    added: list[AreaSize]
    removed: list[AreaSize]
    changed: list[AreaChange]
    unchanged: int
    entity_moves: list[EntityMove]


# --- a version as a plan table (export) -----------------------------------------------------


class PlanAreaProperties(Exact):
    """One area of a version with its workload over the window (as ``GET /workload``)."""

    code: str
    name: str
    level: AreaLevel
    parent_code: str | None
    households: int | None = Field(description="published (rounded) unless seen exactly")
    rental_units: int | None = Field(description="units, published as households are")
    incidents: int = Field(description="reported in the window")
    incident_hours: float = Field(description="their handling effort, hours")
    workload_index: float = Field(description="the weighted workload, hours over the window")
    area_m2: float = Field(description="the area's own, on the spheroid")
    continues: str | None = Field(
        None, description="grids only: the code of the grid in force it shares most area with"
    )


class PlanArea(Feature[AreaGeometry, PlanAreaProperties]):
    """One area of the plan (id: the area's)."""


class PlanLayer(FeatureCollection[PlanArea]):
    """``GET /boundaries/versions/{id}/export?format=geojson``: the plan table (RFC 7946)."""

    version_id: int
    level: AreaLevel
    window_days: int
    until: Timestamp
    weights: WorkloadWeights

"""Response models of the batch room: batch runs (``/analytics/runs``) and jobs (``/jobs``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from geo_service.api.schemas.geojson import Timestamp
from geo_service.api.schemas.layers import BatchCell
from geo_service.api.schemas.strict import Exact

RunKind = Literal["heatmap", "hotspots", "emerging", "workload", "reattribute", "proposals"]


class RunPublic(Exact):
    """A batch run's metadata."""

    id: int
    kind: RunKind
    engine: Literal["local", "dask"]
    params: dict[str, Any] = Field(description="the request, less the dataset's path")
    summary: dict[str, Any] = Field(description="kind-specific figures (homes published)")
    partitions: int = Field(description="GeoParquet partitions read")
    seconds: float
    created_by: str
    created_at: Timestamp


class RunsPublic(Exact):
    """Batch runs, newest first."""

    data: list[RunPublic]
    count: int


class RunCells(Exact):
    """A cell run (heatmap, hotspots, emerging): a page of its cells."""

    type: Literal["FeatureCollection"]
    run: RunPublic
    features: list[BatchCell]
    numberMatched: int  # noqa: N815 - the OGC member names
    numberReturned: int  # noqa: N815


class WorkloadRunRow(Exact):
    """A workload run's row: one grid."""

    grid_id: int
    code: str | None = Field(description="null when the grid is no longer in the database")
    incident_hours: float
    incidents: int
    households: int | None = Field(description="published (rounded); null when that is 0")
    rental_units: int | None
    area_km2: float
    index: float


class CrosswalkRow(Exact):
    """A reattribute run's row: records of one entity moving from one grid to another."""

    entity: str
    old_grid_id: int | None
    new_grid_id: int | None
    count: int | None = Field(description="homes are published (rounded); null when that is 0")


class RunRows(Exact):
    """A workload or reattribute run: a page of its rows."""

    run: RunPublic
    data: list[WorkloadRunRow] | list[CrosswalkRow]
    count: int


class RunOnly(Exact):
    """A proposals run: its metadata (the drafts are boundary versions)."""

    run: RunPublic


RunDetail = RunCells | RunRows | RunOnly


class JobAccepted(Exact):
    """A job was queued: poll ``href``."""

    job_id: str
    status: Literal["queued"]
    href: str


class JobError(Exact):
    """Why a job failed."""

    status: int
    code: str
    detail: str


class JobPublic(Exact):
    """A job: progress while it runs, its result when done, its error when failed."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float = Field(description="0..1")
    message: str | None = Field(None, description="absent until the job says something")
    result: dict[str, Any] | None = Field(None, description="present once done")
    error: JobError | None = Field(None, description="present once failed")
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp

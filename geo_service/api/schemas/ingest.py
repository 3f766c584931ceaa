"""Response models of the ingest room: the report of ``POST /imports/{kind}``."""

from __future__ import annotations

from pydantic import Field

from geo_service.api.schemas.strict import Exact


class RejectedRow(Exact):
    """A row that was not imported, and why."""

    row: int = Field(description="1-based row (feature) number in the file")
    reason: str


class ImportReportPublic(Exact):
    """What an import took and every row it refused."""

    kind: str
    file: str = Field(description="the client's file name")
    read: int
    accepted: int
    inserted: int
    already_present: int
    rejected: int
    rejected_by_reason: dict[str, int]
    reject_file: None = Field(description="always null over HTTP (a server-side file)")
    ignored_columns: list[str]
    version_id: int | None = Field(description="boundaries: the draft version written")
    merged_parts: int
    encoding: str | None = Field(
        default=None, description="the encoding a Shapefile's DBF text was read in"
    )
    dimensions_dropped: list[str] = Field(
        default_factory=list, description='"Z" / "M" values dropped: geometries stored 2D'
    )
    rejects: list[RejectedRow] = Field(description="at most 1,000")

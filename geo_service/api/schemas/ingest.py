"""Response models of the ingest room: the report of ``POST /imports/{kind}``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from geo_service.api.schemas import Problem
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
    updated: int = Field(
        default=0,
        description="rows already present that the file changed (households: an address "
        "filled or changed by a re-import; a blank cell keeps the stored one)",
    )
    merged_parts: int
    encoding: str | None = Field(
        default=None, description="the encoding a Shapefile's DBF or a text table was read in"
    )
    dimensions_dropped: list[str] = Field(
        default_factory=list, description='"Z" / "M" values dropped: geometries stored 2D'
    )
    assumptions: dict[str, Any] = Field(
        default_factory=dict,
        description="what was assumed to read the file: encoding, crs, transformation and "
        "its accuracy in metres, tz, layer, columns matched by truncated names, "
        "dimensions dropped, rows given to the nearest grid at the edge",
    )
    rejects: list[RejectedRow] = Field(description="at most 1,000")
    rejects_csv: str | None = Field(
        default=None,
        description="every rejected row as CSV (RFC 4180, the CLI's reject file without its "
        "BOM): row (1-based; a table's header not counted), reason, then source_<column> for "
        "each of the file's columns as read; null when nothing was rejected",
    )


class RejectedShareProblem(Problem):
    """A 422 problem of ``POST /imports/{kind}``; with code ``rejected-share-exceeded`` (more
    rows rejected than ``max_rejected_share`` allows: nothing was written) it carries the
    counts below, absent for other invalid input."""

    read: int | None = Field(default=None, description="rows read")
    rejected: int | None = Field(default=None, description="rows rejected")
    rejected_share: float | None = Field(
        default=None, description="rejected rows / rows read, 0..1"
    )
    max_rejected_share: float | None = Field(default=None, description="the limit, 0..1")
    rejected_by_reason: dict[str, int] | None = None
    rejects_csv: str | None = Field(
        default=None, description="the rejected rows as CSV, as in a report"
    )

"""Managers' reports: ``GET /reports/performance`` (JSON, CSV, XLSX, PDF) and the ``/reports``
page (ECharts)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from geo_service.api.deps import HEAVY, SessionDep, SettingsDep, require
from geo_service.api.responses import DictJSONResponse
from geo_service.api.schemas.reports import PerformancePublic
from geo_service.services.access.scope import Scope
from geo_service.services.reports import exports
from geo_service.services.reports.labels import localized_labels
from geo_service.services.reports.performance import (
    ReportRequest,
    default_file_level,
    performance,
    report_title,
)
from geo_service.services.reports.periods import parse_local_instant
from geo_service.web.pages import render_page

router = APIRouter(tags=["reports"])
ReportScope = Annotated[Scope, Depends(require("reports:read"))]
FILE_TYPES = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report (JSON), or as a file (Content-Disposition: attachment)",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media, _ in FILE_TYPES.values()
        },
    }
}
WINDOW_HELP = (
    "a date (YYYY-MM-DD: that local day's midnight in GEO_TIMEZONE), a local date-time, or "
    "RFC 3339 with an offset"
)


@router.get(
    "/reports/performance",
    response_model=PerformancePublic,
    dependencies=[HEAVY],
    responses=FILE_RESPONSES,
)
def read_performance(
    session: SessionDep,
    settings: SettingsDep,
    scope: ReportScope,
    level: Annotated[
        Literal["grid", "community", "street", "district"] | None,
        Query(
            description="the level of the rows; default grid, but for format=pdf the level "
            "below parent_id's (else below your area's: district for a city-wide caller)"
        ),
    ] = None,
    parent_id: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="report under this area")
    ] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=40,
            description=f"start of the window: {WINDOW_HELP}; default the "
            "first day of the month two months back",
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            max_length=40,
            description=f"end of the window, excluded (half-open [since, until): a month is "
            f"since=11-01&until=12-01): {WINDOW_HELP}; default the end of today",
        ),
    ] = None,
    format: Annotated[  # noqa: A002 - the parameter's public name
        Literal["json", "csv", "xlsx", "pdf"], Query(description="json | csv | xlsx | pdf (A4)")
    ] = "json",
) -> Response:
    """Per area of ``level`` (under ``parent_id``) and per grid worker, over ``[since,
    until)``: incidents received by source, handled, closed, the closure rate; on time per
    response tier and stage (dispatch, arrival, resolution) with median and 90th-percentile
    times; the backlog by age; escalations by level and the shares resolved inside the grid
    and the community; disputes and mediations; reopened incidents; week-over-week and
    month-over-month trends; rankings by the lower bound of the 95% Wilson score interval.
    Rates carry their interval and ``small_sample`` (n < 30). Without ``level`` a PDF shows
    the level below ``parent_id`` (else below the caller's area), other formats grids. 404
    for a ``parent_id`` outside the version in force or your area; 422 for a bad window."""
    tz = settings.api.timezone
    rows: str = level or (
        default_file_level(session, scope, parent_id) if format == "pdf" else "grid"
    )
    request = ReportRequest(
        level=rows,
        parent_id=parent_id,
        since=None if since is None else parse_local_instant(since, tz, "since"),
        until=None if until is None else parse_local_instant(until, tz, "until"),
        visit_period_days=settings.visits.period_days,
        min_count=settings.auth.min_cell_count,
    )
    report = performance(session, request, scope=scope, tz=tz)
    if format == "json":
        return DictJSONResponse(report)
    media, suffix = FILE_TYPES[format]
    if format == "csv":
        content = exports.to_csv(report)
    elif format == "xlsx":
        content = exports.to_xlsx(report, words=localized_labels())
    else:
        content = exports.to_pdf(report, title=report_title(report), font=settings.reports.font)
    name = f"performance_{rows}_{report['since'][:10]}_{report['until'][:10]}.{suffix}"
    return Response(
        content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/reports", response_class=HTMLResponse)
def read_reports_page(
    session: SessionDep, settings: SettingsDep, scope: ReportScope
) -> HTMLResponse:
    """The managers' page: pick a level, an area and a window; charts (ECharts) of sources,
    weekly trends, on-time rates per stage and tier, the backlog and escalations; the
    rankings with their intervals; links to the CSV, XLSX and PDF. Data loads from
    ``/reports/performance`` with the page's sign-in cookie."""
    labels = localized_labels()  # in the request's language
    page = render_page(
        "reports.html",
        labels=labels,
        labels_json=json.dumps(labels),
        timezone=settings.api.timezone,
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})

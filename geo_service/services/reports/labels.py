"""Every word the reports show people (the PDF, the weekly report, the ``/reports`` page),
in one place so that they can be translated (issue 19's i18n work reads them from here)."""

from __future__ import annotations

LABELS: dict[str, str] = {
    "title": "Performance report",
    "period": "Period",
    "as_of": "as of",
    "received": "Received",
    "handled": "Handled",
    "closed": "Closed",
    "open": "Open now",
    "closure_rate": "Closure rate",
    "on_time": "On time",
    "on_time_resolution": "Resolved on time",
    "resolved_in_grid": "Resolved in the grid",
    "resolved_in_community": "Resolved in the community",
    "disputes": "Disputes received",
    "mediated": "Mediated successfully",
    "reopened": "Reopened",
    "source": "Source",
    "citizen": "citizen",
    "grid_worker": "grid worker's discovery",
    "hotline": "hotline",
    "sensor": "sensor",
    "import": "imported",
    "stages": "Stages: on time per response tier, and times",
    "stage": "Stage",
    "median": "Median",
    "p90": "90th pct.",
    "weekly_trend": "Received and closed per week",
    "monthly_trend": "Received and closed per month",
    "areas": "Areas",
    "workers": "Grid workers",
    "code": "Code",
    "name": "Name",
    "grid": "Grid",
    "callsign": "Worker",
    "assigned": "Assigned",
    "discovered": "Own discoveries in grid",
    "backlog": "Backlog",
    "escalations": "Escalations by level",
    "ranking": "Resolved on time: ranking (bar: rate, line: 95% interval)",
    "small_sample": "small",
    "week_over_week": "week over week",
    "all_areas": "all areas in your view",
    "level": "Level",
    "under": "Under",
    "from": "From",
    "to": "To (excluded)",
    "show": "Show",
    "pdf_note": "Rates show the 95% Wilson score interval and n, the cases counted; * marks "
    "fewer than 30 cases. Rankings order by the interval's lower bound. Stages are counted "
    "from the report: dispatch until accepted (the priority's target, the response tier), "
    "arrival until on scene (the category's arrival target, when set), resolution until "
    "resolved (the category's resolution target). Escalations count each climb to a level.",
}
STAGE_NAMES: dict[str, str] = {
    "dispatch": "Dispatch",
    "arrival": "Arrival",
    "resolution": "Resolution",
}

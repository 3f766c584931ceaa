"""Every word the reports show people (the PDF, the weekly report, the ``/reports`` page),
in one place, marked for the ``messages`` catalogue: ``localized_labels`` gives them in the
request's language (``geo_service.i18n``)."""

from __future__ import annotations

from geo_service.i18n import N_, gettext

LABELS: dict[str, str] = {
    "title": N_("Performance report"),
    "period": N_("Period"),
    "as_of": N_("as of"),
    "received": N_("Received"),
    "handled": N_("Handled"),
    "closed": N_("Closed"),
    "open": N_("Open now"),
    "open_at": N_("Open at {as_of}"),
    "open_at_as_of": N_("Open at the report's as-of time"),
    "closure_rate": N_("Closure rate"),
    "on_time": N_("On time"),
    "on_time_resolution": N_("Resolved on time"),
    "resolved_in_grid": N_("Resolved in the grid"),
    "resolved_in_community": N_("Resolved in the community"),
    "disputes": N_("Disputes received"),
    "mediated": N_("Mediated successfully"),
    "reopened": N_("Reopened"),
    "visit_coverage": N_("Households visited"),
    "visit_households": N_("Households"),
    "visit_visited": N_("Visited"),
    "visit_period": N_("within {days} days"),
    "source": N_("Source"),
    "citizen": N_("citizen"),
    "grid_worker": N_("grid worker's discovery"),
    "hotline": N_("hotline"),
    "sensor": N_("sensor"),
    "import": N_("imported"),
    "stages": N_("Stages: on time per response tier, and times"),
    "stage": N_("Stage"),
    "median": N_("Median"),
    "p90": N_("90th pct."),
    "weekly_trend": N_("Received and closed per week"),
    "monthly_trend": N_("Received and closed per month"),
    "areas": N_("Areas"),
    "workers": N_("Grid workers"),
    "code": N_("Code"),
    "name": N_("Name"),
    "grid": N_("Grid"),
    "callsign": N_("Worker"),
    "assigned": N_("Assigned"),
    "discovered": N_("Own discoveries in grid"),
    "backlog": N_("Backlog"),
    "escalations": N_("Escalations by level"),
    "ranking": N_("Resolved on time: ranking (bar: rate; line: 95%)"),
    "small_sample": N_("small"),
    "week_over_week": N_("week over week"),
    "all_areas": N_("all areas in your view"),
    "level": N_("Level"),
    "under": N_("Under"),
    "from": N_("From"),
    "to": N_("To (excluded)"),
    "show": N_("Show"),
    "to_included": N_("To (included)"),
    "this_week": N_("This week"),
    "last_week": N_("Last week"),
    "this_month": N_("This month"),
    "last_month": N_("Last month"),
    "show_all": N_("Show all"),
    "workers_cut": N_(
        "{n} grid workers: the {k} best and the {k} last by resolution on time (all of "
        "them in the CSV and XLSX)"
    ),
    "col_kind": N_("Row"),
    "col_cancelled": N_("Cancelled"),
    "col_low": N_("Lower bound (95%)"),
    "col_high": N_("Upper bound (95%)"),
    "col_escalated": N_("Escalated"),
    "col_until": N_("Until (excluded)"),
    "col_start": N_("Period start"),
    "col_whole": N_("Whole period"),
    "col_ranking": N_("Ranking"),
    "col_rank": N_("Rank"),
    "col_rate": N_("Rate"),
    "col_partial": N_("Partial period"),
    "col_days": N_("Days seen"),
    "col_period_days": N_("Days in period"),
    "col_escalations": N_("Escalations"),
    "escalated_incidents": N_("Incidents escalated (at least once)"),
    "partial_week": N_("partial week: {days} of {period_days} days"),
    "partial_legend": N_("hatched: a partial week (the window cuts it, or it is not over)"),
    "partial_mark": N_("* a partial period (the window cuts it, or it is not over)"),
    "not_ranked": N_("Grid workers not ranked (no cases to rate in the period): {n}"),
    "unit_min": N_("min"),
    "duration_min": N_("{n} min"),
    "duration_h": N_("{n} h"),
    "duration_days": N_("{n} days"),
    "loading": N_("loading…"),
    "error": N_("error"),
    "pdf_note": N_(
        "Rates show the 95% Wilson score interval and n, the cases counted; * marks "
        "fewer than 30 cases. Rankings order by the interval's lower bound. Stages are counted "
        "from the report: dispatch until accepted (the priority's target, the response tier), "
        "arrival until on scene (the category's arrival target, when set), resolution until "
        "resolved (the category's resolution target). Escalations count each climb to a level."
    ),
}
# the levels' names (the page's level picker, the escalations chart)
LEVEL_NAMES: dict[str, str] = {
    "district": N_("district"),
    "street": N_("street"),
    "community": N_("community"),
    "grid": N_("grid"),
}
STAGE_NAMES: dict[str, str] = {
    "dispatch": N_("Dispatch"),
    "arrival": N_("Arrival"),
    "resolution": N_("Resolution"),
}


def localized_labels() -> dict[str, str]:
    """Every label in the current language: ``LABELS``, ``stage_<stage>`` and
    ``level_<level>`` keys, translated through the ``messages`` catalogue (English when a
    string has no translation)."""
    words = {
        **LABELS,
        **{f"stage_{k}": v for k, v in STAGE_NAMES.items()},
        **{f"level_{k}": v for k, v in LEVEL_NAMES.items()},
    }
    return {key: gettext(value) for key, value in words.items()}

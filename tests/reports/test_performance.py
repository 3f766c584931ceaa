"""``GET /reports/performance`` against an independent count: every figure the report gives
per area, per grid worker, per week and in total is counted again here, row by row, from the
``incidents`` table with plain pandas and Python (not the service's code), and intervals are
scipy's Wilson intervals. The demo city's own history (statuses without stamps) is joined by
a few hundred incidents with full lifecycles written here, so that every stage, tier,
escalation, dispute and reopen is exercised. The clock is held: nothing reads the wall."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy.stats import binomtest
from sqlalchemy import Engine, text

from geo_service.api.schemas.reports import PerformancePublic
from geo_service.demo.city import DemoCity
from geo_service.services.reports.periods import period_end
from tests.conftest import as_role, problem

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
SOURCES = ["citizen", "grid_worker", "hotline", "sensor", "import"]
OPEN = {"reported", "dispatched", "accepted", "on_scene"}
BANDS = [("0-1h", 0, 1), ("1-4h", 1, 4), ("4-24h", 4, 24), ("1-3d", 24, 72),
         ("3-7d", 72, 168), ("7d+", 168, float("inf"))]  # fmt: skip


# --- the independent count ----------------------------------------------------------------------


def _incidents(engine: Engine) -> pd.DataFrame:
    """Every incident with its targets and the area of each level it is filed under (walking
    up ``areas.parent_id`` from its grid: the test cities have one boundary version)."""
    query = """
        SELECT i.id, i.grid_id, i.source, i.priority, i.status, i.responder_id,
               i.escalation_level, i.outcome, i.reopened_count, c."group" AS category_group,
               i.reported_at, i.accepted_at, i.arrived_at, i.resolved_at, i.closed_at,
               i.cancelled_at, t.dispatch_s, c.response_target_s,
               c.resolution_target_min
        FROM incidents i JOIN categories c ON c.code = i.category
        JOIN response_targets t ON t.priority = i.priority
    """
    with engine.connect() as conn:
        frame = pd.read_sql(text(query), conn)
        areas = pd.read_sql(text("SELECT id, code, name, level, parent_id FROM areas"), conn)
        history = pd.read_sql(text("SELECT incident_id, to_level FROM incident_escalations"), conn)
    for level, name in ((1, "community"), (2, "street"), (3, "district")):
        climbs = history[history.to_level == level].incident_id.astype(str).value_counts()
        frame[f"to_{name}"] = frame.id.astype(str).map(climbs).fillna(0).astype(int)
    parent = areas.set_index("id")["parent_id"].to_dict()
    level_of = areas.set_index("id")["level"].to_dict()

    def ancestor(grid: Any, level: str) -> Any:
        node = None if pd.isna(grid) else int(grid)
        while node is not None and level_of.get(node) != level:
            up = parent.get(node)
            node = None if up is None or pd.isna(up) else int(up)
        return node

    for level in ("grid", "community", "street", "district"):
        frame[f"{level}_id"] = [ancestor(g, level) for g in frame.grid_id]
    for col in ("reported_at", "accepted_at", "arrived_at", "resolved_at", "closed_at",
                "cancelled_at"):  # fmt: skip
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def _grids_under(areas: pd.DataFrame, roots: set[int]) -> set[int]:
    """The grids at or below any of ``roots``."""
    children = areas.groupby("parent_id").id.apply(list).to_dict()
    found, todo = set(), list(roots)
    while todo:
        node = todo.pop()
        kids = children.get(node, [])
        if not kids:
            found.add(node)
        todo.extend(kids)
    level = areas.set_index("id").level
    return {g for g in found if level[g] == "grid"}


def _wilson(k: int, n: int) -> tuple[float, float] | None:
    if n == 0:
        return None
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def _stage(row: Any, stamp: str, target: float | None, as_of: pd.Timestamp) -> bool | None:
    """On time (True), late (False) or neither (None), one incident at a time."""
    if target is None or pd.isna(target):
        return None
    ended = getattr(row, stamp)
    if not pd.isna(ended):
        return (ended - row.reported_at).total_seconds() <= target
    if row.status in OPEN and (as_of - row.reported_at).total_seconds() > target:
        return False
    return None


def _rate(k: int, n: int) -> dict[str, Any]:
    return {"k": k, "n": n, "ci": _wilson(k, n)}


def _count(rows: pd.DataFrame, open_rows: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, Any]:
    out: dict[str, Any] = {"received": len(rows)}
    out["by_source"] = {s: int((rows.source == s).sum()) for s in SOURCES}
    out["closed"] = int((rows.status == "closed").sum())
    out["cancelled"] = int((rows.status == "cancelled").sum())
    out["handled"] = int(rows.status.isin(["resolved", "closed"]).sum())
    out["open"] = int(rows.status.isin(OPEN).sum())
    out["closure_rate"] = _rate(out["closed"], len(rows) - out["cancelled"])
    stages = {
        "dispatch": ("accepted_at", "dispatch_s", 1),
        "arrival": ("arrived_at", "response_target_s", 1),
        "resolution": ("resolved_at", "resolution_target_min", 60),
    }
    out["on_time"] = {}
    for stage, (stamp, target_col, unit) in stages.items():
        verdicts = []
        for row in rows.itertuples():
            target = getattr(row, target_col)
            target = None if target is None or pd.isna(target) else float(target) * unit
            verdicts.append((row.priority, _stage(row, stamp, target, as_of)))
        decided = [(p, v) for p, v in verdicts if v is not None]
        tiers = {
            str(t): _rate(
                sum(v for p, v in decided if p == t), sum(1 for p, _ in decided if p == t)
            )
            for t in (1, 2, 3, 4)
        }
        durations = [
            (getattr(r, stamp) - r.reported_at).total_seconds()
            for r in rows.itertuples()
            if not pd.isna(getattr(r, stamp))
        ]
        out["on_time"][stage] = {
            "all": _rate(sum(v for _, v in decided), len(decided)),
            "tiers": tiers,
            "median": float(np.median(durations)) if durations else None,
            "p90": float(np.quantile(durations, 0.9)) if durations else None,
        }
    level = rows.escalation_level
    out["escalated"] = int((level > 0).sum())
    out["by_level"] = {name: int(rows[f"to_{name}"].sum())
                       for name in ("community", "street", "district")}  # fmt: skip
    handled = rows.status.isin(["resolved", "closed"])
    out["in_grid"] = _rate(int((handled & (level == 0)).sum()), int(handled.sum()))
    out["in_community"] = _rate(int((handled & (level <= 1)).sum()), int(handled.sum()))
    disputes = rows[rows.category_group == "mediation"]
    out["disputes"] = len(disputes)
    out["mediated"] = _rate(
        int((disputes.outcome == "settled").sum()), int(disputes.outcome.notna().sum())
    )
    out["reopened"] = int((rows.reopened_count > 0).sum())
    hours = [(as_of - r).total_seconds() / 3600 for r in open_rows.reported_at]
    out["backlog"] = {name: sum(1 for h in hours if lo <= h < hi) for name, lo, hi in BANDS}
    return out


def _open_at(frame: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    def still_open(r: Any) -> bool:
        if r.reported_at >= at:
            return False
        if r.status in OPEN:
            return True
        ends = [e for e in (r.resolved_at, r.closed_at, r.cancelled_at) if not pd.isna(e)]
        return bool(ends) and min(ends) > at

    return frame[[still_open(r) for r in frame.itertuples()]]


def _same_rate(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    assert (got["numerator"], got["denominator"]) == (want["k"], want["n"]), what
    if want["n"] == 0:
        assert got["rate"] is None and got["low"] is None, what
        return
    assert got["rate"] == pytest.approx(want["k"] / want["n"], abs=6e-5), what
    assert got["low"] == pytest.approx(want["ci"][0], abs=6e-5), what
    assert got["high"] == pytest.approx(want["ci"][1], abs=6e-5), what
    assert got["small_sample"] == (want["n"] < 30), what


def _same(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    for key in ("received", "by_source", "closed", "cancelled", "handled", "open", "reopened"):
        assert got[key] == want[key], (what, key, got[key], want[key])
    _same_rate(got["closure_rate"], want["closure_rate"], f"{what} closure")
    for stage, expected in want["on_time"].items():
        figures = got["on_time"][stage]
        _same_rate(figures["all"], expected["all"], f"{what} {stage}")
        for tier, r in expected["tiers"].items():
            _same_rate(figures["tiers"][tier], r, f"{what} {stage} P{tier}")
        for key, mine in (("median_s", expected["median"]), ("p90_s", expected["p90"])):
            if mine is None:
                assert figures["times"][key] is None, (what, stage, key)
            else:
                assert figures["times"][key] == pytest.approx(mine, abs=0.051), (what, stage, key)
    assert got["escalations"]["escalated"] == want["escalated"], what
    assert got["escalations"]["by_level"] == want["by_level"], what
    _same_rate(got["resolved_in_grid"], want["in_grid"], f"{what} in grid")
    _same_rate(got["resolved_in_community"], want["in_community"], f"{what} in community")
    assert got["disputes"]["received"] == want["disputes"], what
    _same_rate(got["disputes"]["mediated"], want["mediated"], f"{what} mediated")
    assert got["backlog"] == want["backlog"], what


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["district", "community", "grid"])
def test_every_figure_equals_an_independent_count(
    client: TestClient, engine: Engine, city_with_lifecycles: DemoCity, window: dict, level: str
) -> None:
    since, until, now = window["since"], window["until"], window["now"]
    params: dict[str, Any] = {
        "level": level,
        "since": since.date().isoformat(),
        "until": until.date().isoformat(),
    }
    frame = _incidents(engine)
    with engine.connect() as conn:
        areas = pd.read_sql(text("SELECT id, code, level, parent_id FROM areas"), conn)
    if level == "grid":  # the grids of one community, the busiest in the window
        in_window = frame[(frame.reported_at >= since) & (frame.reported_at < until)]
        parent_id = int(in_window.community_id.value_counts().index[0])
        params["parent_id"] = parent_id
    body = client.get("/reports/performance", params=params).json()
    PerformancePublic.model_validate(body)  # exactly the documented members
    assert body["since"] == since.isoformat() and body["until"] == until.isoformat()
    as_of = pd.Timestamp(now)
    assert pd.Timestamp(body["as_of"]) == as_of

    key = f"{level}_id"
    everywhere = frame[(frame.reported_at >= since) & (frame.reported_at < until)]
    open_everywhere = _open_at(frame, as_of)
    assert len(everywhere) > 300 and everywhere.accepted_at.notna().sum() > 200  # means something
    rows, open_rows = everywhere, open_everywhere
    if level == "grid":
        rows = rows[rows.community_id == parent_id]
        open_rows = open_rows[open_rows.community_id == parent_id]
    shown = areas[areas.level == level]
    if level == "grid":
        shown = shown[shown.parent_id == parent_id]
    assert [a["code"] for a in body["areas"]] == sorted(shown.code)
    for area in body["areas"]:
        want = _count(rows[rows[key] == area["id"]], open_rows[open_rows[key] == area["id"]], as_of)
        _same(area, want, area["code"])
    _same(body["total"], _count(rows, open_rows, as_of), "total")
    if level != "grid":  # every kind of figure is exercised, not only zeros and nulls
        total = body["total"]
        assert sum(total["backlog"].values()) > 0 and total["reopened"] > 0
        assert total["disputes"]["mediated"]["denominator"] > 0
        assert total["escalations"]["by_level"]["district"] > 0
        assert all(total["on_time"][s]["times"]["median_s"] for s in ("dispatch", "arrival"))
        arrival = total["on_time"]["arrival"]  # the demo's categories have arrival targets
        assert 0 < arrival["all"]["numerator"] < arrival["all"]["denominator"]
        assert all(arrival["tiers"][t]["denominator"] > 0 for t in "1234")
        dispatch = total["on_time"]["dispatch"]["all"]
        assert 0 < dispatch["numerator"] < dispatch["denominator"]

    # grid workers homed in the grids shown: the incidents assigned to them, wherever they lay
    grids = _grids_under(areas, set(shown.id))
    with engine.connect() as conn:
        workers = dict(
            conn.execute(
                text(
                    "SELECT id, home_grid_id FROM responders WHERE kind = 'grid_worker' "
                    "AND home_grid_id = ANY(:g)"
                ),
                {"g": sorted(grids)},
            ).all()
        )
    assert {w["responder_id"] for w in body["workers"]} == set(workers)
    assert sum(w["received"] for w in body["workers"]) > 0
    for worker in body["workers"]:
        rid = worker["responder_id"]
        want = _count(
            everywhere[everywhere.responder_id == rid],
            open_everywhere[open_everywhere.responder_id == rid],
            as_of,
        )
        _same(worker, want, worker["callsign"])
        home = workers[rid]
        assert worker["discovered_in_grid"] == int(
            ((everywhere.grid_id == home) & (everywhere.source == "grid_worker")).sum()
        )

    # local weeks from Monday 00:00 Asia/Shanghai, every week of the window
    local_day = rows.reported_at.dt.tz_convert(TZ).dt.date
    monday = [d - timedelta(days=d.weekday()) for d in local_day]
    counted = pd.Series(monday).value_counts()
    weeks = body["trends"]["weeks"]
    assert [w["start"] for w in weeks] == [
        (since.date() + timedelta(days=7 * i)).isoformat() for i in range(len(weeks))
    ]
    for w in weeks:
        start = datetime.fromisoformat(w["start"]).date()
        assert w["received"] == int(counted.get(start, 0)), w["start"]
    whole = [w for w in weeks if w["whole"]]
    wow = body["trends"]["week_over_week"]
    assert (wow["current"], wow["previous"]) == (whole[-1]["start"], whole[-2]["start"])
    # rankings: by the lower bound of the Wilson interval, a small denominator flagged
    ranking = body["rankings"]["closure_rate"]
    lows = [r["low"] for r in ranking if r["low"] is not None]
    assert lows == sorted(lows, reverse=True)
    assert {r["code"] for r in ranking} == {a["code"] for a in body["areas"]}


def test_a_report_without_a_window_covers_two_months_and_this_one(
    client: TestClient, loaded_city: DemoCity
) -> None:
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    clock.set(datetime(2026, 3, 15, 10, tzinfo=ZONE))
    try:
        body = client.get("/reports/performance", params={"level": "district"}).json()
    finally:
        clock.release()
    assert body["since"] == "2026-01-01T00:00:00+08:00"
    assert body["until"] == "2026-03-16T00:00:00+08:00"
    assert body["as_of"] == "2026-03-15T10:00:00+08:00"
    assert [m["start"] for m in body["trends"]["months"]] == [
        "2026-01-01",
        "2026-02-01",
        "2026-03-01",
    ]
    assert [m["whole"] for m in body["trends"]["months"]] == [True, True, False]
    assert body["trends"]["month_over_month"]["current"] == "2026-02-01"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"level": "block"}, 422),
        ({"since": "2026-13-01"}, 422),
        ({"since": "yesterday"}, 422),
        ({"since": "2026-06-02", "until": "2026-06-01"}, 422),
        ({"since": "2020-01-01", "until": "2026-01-01"}, 422),
        ({"since": "0001-01-01"}, 422),
        ({"parent_id": 2_000_000_000}, 404),
        ({"format": "docx"}, 422),
    ],
)
def test_bad_requests_are_refused_with_problem_details(
    client: TestClient, loaded_city: DemoCity, params: dict, status: int
) -> None:
    answer = client.get("/reports/performance", params=params)
    assert answer.status_code == status, answer.text
    problem(answer)


def test_who_may_read_reports(client: TestClient, role_keys: dict, loaded_city: DemoCity) -> None:
    for role in ("dispatcher", "planner", "analyst"):
        assert (
            client.get("/reports/performance", headers=as_role(role_keys, role)).status_code == 200
        )
    refused = client.get("/reports/performance", headers=as_role(role_keys, "grid_worker"))
    assert refused.status_code == 403
    problem(refused)
    anonymous = client.get("/reports/performance", headers={"X-API-Key": ""})
    assert anonymous.status_code == 401


def test_a_user_bound_to_an_area_sees_its_areas_only(
    client: TestClient, role_keys: dict, engine: Engine, loaded_city: DemoCity
) -> None:
    headers = as_role(role_keys, "analyst@district")
    mine = client.get("/reports/performance", params={"level": "community"}, headers=headers)
    everyone = client.get("/reports/performance", params={"level": "community"}).json()
    body = mine.json()
    streets = {a["parent_id"] for a in body["areas"]}  # the streets of one district
    with engine.connect() as conn:
        districts = set(
            conn.execute(
                text("SELECT parent_id FROM areas WHERE id = ANY(:s)"), {"s": list(streets)}
            ).scalars()
        )
    assert len(districts) == 1
    assert 0 < len(body["areas"]) < len(everyone["areas"])
    assert body["total"]["received"] == sum(a["received"] for a in body["areas"])
    # another district's id answers as a missing one
    other = next(a for a in everyone["areas"] if a["parent_id"] not in streets)
    outside = client.get("/reports/performance", params={"parent_id": other["id"]}, headers=headers)
    assert outside.status_code == 404
    problem(outside)


def test_reports_show_no_household_rows_only_visit_coverage(
    client: TestClient, loaded_city: DemoCity
) -> None:
    body = client.get("/reports/performance", params={"level": "grid"}).json()
    text_body = json.dumps(body)
    assert "resident" not in text_body and '"description"' not in text_body
    for area in [*body["areas"], body["total"]]:
        # the one household figure is the visit coverage aggregate (issue 20)
        assert set(area["visits"]) == {"households", "visited", "coverage", "period_days", "exact"}
        rest = json.dumps({k: v for k, v in area.items() if k != "visits"})
        assert "household" not in rest


def _visit(engine: Engine, household_ids: list[int], day: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO household_visits (household_id, visited_on, outcome) "
                "SELECT unnest(CAST(:ids AS bigint[])), CAST(:d AS date), 'met'"
            ),
            {"ids": household_ids, "d": day},
        )


def test_visit_coverage_per_area_is_exact_for_admins_and_published_for_others(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    """Households visited within the period before as_of, per community: an admin reads the
    independent count; an analyst reads both counts rounded to the base (multiples of it,
    within base-1 of the truth), the coverage from those, never the exact small count."""
    base = 5  # GEO_MIN_CELL_COUNT's default
    with engine.connect() as conn:
        homes = conn.execute(
            text(
                "SELECT h.id, g.parent_id AS community FROM households h "
                "JOIN areas g ON g.id = h.grid_id ORDER BY h.id"
            )
        ).all()
    by_community: dict[int, list[int]] = {}
    for h in homes:
        by_community.setdefault(h.community, []).append(h.id)
    community, ids = max(by_community.items(), key=lambda kv: len(kv[1]))
    _visit(engine, ids[:7], "2026-03-10")  # 7 visited within 90 days of 15 March
    _visit(engine, ids[7:10], "2025-10-01")  # 3 visited long before: not counted
    _visit(engine, ids[10:12], "2026-03-20")  # 2 visited after as_of: not counted
    try:
        params = {"level": "community", "since": "2026-03-01", "until": "2026-03-16"}
        admin = client.get("/reports/performance", params=params).json()
        analyst = client.get(
            "/reports/performance", params=params, headers=as_role(role_keys, "analyst")
        ).json()
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("DELETE FROM household_visits WHERE household_id = ANY(:ids)"),
                {"ids": ids[:12]},
            )
    mine = next(a for a in admin["areas"] if a["id"] == community)["visits"]
    assert mine == {
        "households": len(ids),
        "visited": 7,
        "coverage": round(7 / len(ids), 4),
        "period_days": 90,
        "exact": True,
    }
    assert all(a["visits"]["visited"] == 0 for a in admin["areas"] if a["id"] != community)
    shown = next(a for a in analyst["areas"] if a["id"] == community)["visits"]
    assert shown["exact"] is False
    assert shown["visited"] in (5, 10) and shown["households"] % base == 0
    assert abs(shown["households"] - len(ids)) < base
    assert shown["coverage"] == round(shown["visited"] / shown["households"], 4)
    total = analyst["total"]["visits"]
    assert total["visited"] == sum(a["visits"]["visited"] or 0 for a in analyst["areas"])


# --- what a fresh user found (issue 19, the second look) ---------------------------------------


def test_open_at_as_of_is_the_backlog_then_by_an_independent_count(
    client: TestClient, engine: Engine, city_with_lifecycles: DemoCity, window: dict
) -> None:
    """A window ending a week ago is judged at its end: ``open_at_as_of`` counts the
    incidents open then (reported before it, not yet resolved, closed or cancelled), row by
    row here, not those whose status is open now; it is the backlog's sum everywhere."""
    until = window["until"] - timedelta(days=7)
    params = {"level": "district", "since": window["since"].date().isoformat(),
              "until": until.date().isoformat()}  # fmt: skip
    body = client.get("/reports/performance", params=params).json()
    PerformancePublic.model_validate(body)
    as_of = pd.Timestamp(until)
    assert pd.Timestamp(body["as_of"]) == as_of  # the window's end, not the clock's now
    frame = _incidents(engine)
    open_then = _open_at(frame, as_of)
    total = body["total"]
    assert total["open_at_as_of"] == len(open_then) == sum(total["backlog"].values())
    # incidents closed since then were open at as_of: the count differs from "open now"
    in_window = frame[(frame.reported_at >= window["since"]) & (frame.reported_at < as_of)]
    assert total["open"] == int(in_window.status.isin(OPEN).sum())
    assert total["open_at_as_of"] != total["open"]
    for area in body["areas"]:
        assert area["open_at_as_of"] == len(open_then[open_then.district_id == area["id"]])
        assert area["open_at_as_of"] == sum(area["backlog"].values())
    for worker in body["workers"]:
        mine = open_then[open_then.responder_id == worker["responder_id"]]
        assert worker["open_at_as_of"] == len(mine) == sum(worker["backlog"].values())


def test_workers_without_cases_are_listed_apart_not_ranked_last(
    client: TestClient, city_with_lifecycles: DemoCity, window: dict
) -> None:
    """Over two days some grid workers had no case to rate (n = 0): they are listed apart
    (``workers_not_ranked``), so the last ten are workers who were judged."""
    until = window["until"] - timedelta(days=7)
    params = {"level": "district", "since": (until - timedelta(days=2)).date().isoformat(),
              "until": until.date().isoformat()}  # fmt: skip
    body = client.get("/reports/performance", params=params).json()
    PerformancePublic.model_validate(body)
    ranked = body["rankings"]["workers_on_time_resolution"]
    apart = body["rankings"]["workers_not_ranked"]
    by_id = {w["responder_id"]: w for w in body["workers"]}
    assert ranked and apart  # both kinds exist in the demo city
    # every worker once: ranked with a case to rate, or apart with none
    assert sorted([r["id"] for r in ranked] + [u["id"] for u in apart]) == sorted(by_id)
    for entry in ranked:
        rate = by_id[entry["id"]]["on_time"]["resolution"]["all"]
        assert entry["denominator"] == rate["denominator"] > 0
        assert entry["small_sample"] == (entry["denominator"] < 30)  # still flagged
    for entry in apart:
        worker = by_id[entry["id"]]
        assert worker["on_time"]["resolution"]["all"]["denominator"] == 0
        assert (entry["code"], entry["received"]) == (worker["callsign"], worker["received"])
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert any(r["small_sample"] for r in ranked[-10:])  # the last ten: real, small samples
    lows = [r["low"] for r in ranked]
    assert lows == sorted(lows, reverse=True)


def test_partial_first_and_last_weeks_are_marked_and_not_compared(
    client: TestClient, city_with_lifecycles: DemoCity, window: dict
) -> None:
    """A window from a Wednesday to the window's end, judged two hours before that end: its
    first week has 5 of 7 days, its last the days up to as_of; both are partial, every week
    between is whole, and week over week compares the last two whole weeks."""
    since = window["since"] + timedelta(days=2)  # a Wednesday, local midnight
    assert since.weekday() == 2
    params = {"level": "district", "since": since.date().isoformat(),
              "until": window["until"].date().isoformat()}  # fmt: skip
    body = client.get("/reports/performance", params=params).json()
    PerformancePublic.model_validate(body)
    weeks = body["trends"]["weeks"]
    as_of = window["now"]
    last_day = (window["until"] - timedelta(microseconds=1)).astimezone(ZONE).date()
    last_monday = last_day - timedelta(days=last_day.weekday())
    seen_last = (as_of - datetime.combine(last_monday, datetime.min.time(), ZONE)).total_seconds()
    assert (weeks[0]["partial"], weeks[0]["days"], weeks[0]["period_days"]) == (True, 5.0, 7)
    assert weeks[-1]["start"] == last_monday.isoformat()
    assert weeks[-1]["partial"] is True
    assert weeks[-1]["days"] == round(seen_last / 86400, 2) < 7
    for week in weeks[1:-1]:
        assert (week["partial"], week["whole"], week["days"]) == (False, True, 7.0)
    wow = body["trends"]["week_over_week"]
    assert (wow["current"], wow["previous"]) == (weeks[-2]["start"], weeks[-3]["start"])
    assert wow["received"] == weeks[-2]["received"]
    # months: the first one starts before the window (cut by it), it ends before as_of
    first_month = body["trends"]["months"][0]
    month_start = date.fromisoformat(first_month["start"])
    month_end = period_end(first_month["start"], "month")
    assert month_start < since.date() and month_end < as_of.astimezone(ZONE).date()
    assert first_month["partial"] is True
    assert first_month["days"] == float((month_end - since.date()).days)
    assert first_month["period_days"] == (month_end - month_start).days

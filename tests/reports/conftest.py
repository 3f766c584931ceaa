"""Shared by the reports' tests: a window in the demo city's history and a few hundred
incidents with full lifecycles written into it."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.db.sql import sql
from geo_service.demo.city import DemoCity
from geo_service.geo.h3cells import cells_for_points, exact_cells

ZONE = ZoneInfo("Asia/Shanghai")
SOURCES = ["citizen", "grid_worker", "hotline", "sensor", "import"]


# --- the window and the incidents with lifecycles ----------------------------------------------


@pytest.fixture(scope="module")
def window(engine: Engine, loaded_city: DemoCity) -> dict[str, Any]:
    """Five local weeks ending at the local midnight after the demo's newest incident, and
    the clock two hours before that end (so open incidents are judged at a fixed moment)."""
    with engine.connect() as conn:
        newest = conn.execute(text("SELECT max(reported_at) FROM incidents")).scalar_one()
    last_day = newest.astimezone(ZONE).date()
    until = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=ZONE)
    monday = until.date() - timedelta(days=until.weekday() + 35)
    since = datetime.combine(monday, time(0), tzinfo=ZONE)
    return {"since": since, "until": until, "now": until - timedelta(hours=2)}


def _lifecycles(engine: Engine, city: DemoCity, window: dict[str, Any], n: int = 400) -> None:
    """``n`` incidents in the window with every lifecycle the service knows, written as the
    service would have left them."""
    rng = np.random.default_rng(19)
    with engine.connect() as conn:
        grids = conn.execute(
            text(
                "SELECT a.id, ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom)), "
                "(SELECT r.id FROM responders r WHERE r.kind = 'grid_worker' "
                " AND r.home_grid_id = a.id ORDER BY r.id LIMIT 1) "
                "FROM areas a JOIN boundary_versions v ON v.id = a.version_id "
                "WHERE a.level = 'grid' AND v.status = 'published' ORDER BY a.id"
            )
        ).all()
        categories = conn.execute(
            text("SELECT code, resolution_target_min FROM categories ORDER BY code")
        ).all()
        targets = dict(
            conn.execute(text("SELECT priority, dispatch_s FROM response_targets")).all()
        )
        others = (
            conn.execute(
                text("SELECT id FROM responders WHERE kind <> 'grid_worker' ORDER BY id LIMIT 20")
            )
            .scalars()
            .all()
        )
    span = (window["now"] - window["since"]).total_seconds()
    rows = []
    for k in range(n):
        grid_id, lon, lat, worker = grids[rng.integers(len(grids))]
        code, resolution_min = categories[rng.integers(len(categories))]
        priority = int(rng.integers(1, 5))
        reported = window["since"] + timedelta(seconds=float(rng.uniform(0, span)))
        fate = rng.choice(
            ["reported", "dispatched", "accepted", "on_scene", "resolved", "closed", "cancelled"],
            p=[0.06, 0.04, 0.05, 0.05, 0.1, 0.62, 0.08],
        )
        stamps: dict[str, datetime | None] = dict.fromkeys(
            ("dispatched_at", "accepted_at", "arrived_at", "resolved_at", "closed_at",
             "cancelled_at")
        )  # fmt: skip
        at = reported
        order = ["reported", "dispatched", "accepted", "on_scene", "resolved", "closed"]
        reach = order.index(fate) if fate in order else int(rng.integers(0, 3))
        delays = {
            "dispatched_at": targets[priority] * 0.4,
            "accepted_at": targets[priority] * 0.5,
            "arrived_at": 600.0,
            "resolved_at": (resolution_min or 600) * 60 * 0.5,
            "closed_at": 3600.0,
        }
        for stage, name in enumerate(delays):
            if stage >= reach:
                break
            if name == "arrived_at" and rng.random() < 0.2:
                continue  # settled without a visit
            at = at + timedelta(seconds=float(delays[name] * np.exp(rng.normal(0, 1))))
            stamps[name] = at
        if fate == "cancelled":
            stamps["cancelled_at"] = at + timedelta(minutes=float(rng.uniform(1, 600)))
        handled = fate in ("resolved", "closed")
        responder = None
        if handled or (fate == "cancelled" and stamps["dispatched_at"]):
            responder = worker if rng.random() < 0.7 or not others else others[k % len(others)]
        dispute = code == "disputes"
        rows.append(
            {
                "category": code,
                "priority": priority,
                "status": str(fate),
                "source": SOURCES[int(rng.integers(len(SOURCES)))],
                "reported_at": reported,
                "lon": lon,
                "lat": lat,
                "grid_id": grid_id,
                "responder_id": responder,
                "escalation_level": int(rng.choice([0, 1, 2, 3], p=[0.7, 0.15, 0.1, 0.05])),
                "outcome": (
                    str(rng.choice(["settled", "unsettled"])) if rng.random() < 0.8 else None
                )
                if dispute and handled
                else None,
                "reopened_count": int(rng.random() < 0.05),
                **stamps,
            }
        )
    lons = np.array([r["lon"] for r in rows])
    lats = np.array([r["lat"] for r in rows])
    cells = {"h3": cells_for_points(lons, lats), **exact_cells(lons, lats)}
    for i, r in enumerate(rows):
        r.update({name: int(values[i]) for name, values in cells.items()})
    columns = [c for c in rows[0] if c not in ("lon", "lat")]
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO incidents ({', '.join(columns)}, location) VALUES "
                f"({', '.join(':' + c for c in columns)}, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            ),
            rows,
        )
        # their escalation history, as generated history gets it (one row per level passed)
        conn.execute(sql("escalations_from_levels"))


@pytest.fixture
def city_with_lifecycles(
    engine: Engine, loaded_city: DemoCity, window: dict[str, Any], client: TestClient
) -> Any:
    """The demo city and 400 incidents with lifecycles (removed after the test by
    ``clean_writes``), the service's clock held at the window's ``now``."""
    _lifecycles(engine, loaded_city, window)
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    clock.set(window["now"])
    yield loaded_city
    clock.release()

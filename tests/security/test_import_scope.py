"""Imports by area-bound users reach only objects of their own area (issue 13, item 4).

Rows used to be checked only by where they stand. A stable key (a responder's callsign, a
household's or rental unit's id) names an existing object wherever *it* is, so a dispatcher
bound to a community could re-import another district's callsign at a point inside their
community and the upsert changed that unit's kind, skills and position. Each test first sets
up the object of another area (as admin), then tries the reach as the area-bound user.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.services.ingest import points
from tests.conftest import as_role, grid_point

# --- helpers ---------------------------------------------------------------------------------


def _places(city: DemoCity) -> dict[str, str]:
    """The busiest grid (the test grid worker's), another grid of its community (the
    community dispatcher's), and a grid of another district."""
    grids = city.areas[city.areas.level == "grid"]
    busiest = city.households.grid_code.value_counts().index[0]
    community = grids.set_index("code").parent_code[busiest]
    district = busiest.split("-")[0]
    return {
        "busiest": busiest,
        "inside": next(c for c in grids.code if c.startswith(community + "-") and c != busiest),
        "foreign": next(c for c in grids.code if not c.startswith(district + "-")),
    }


def _upload(rows: list[dict[str, Any]], name: str = "scope.csv") -> dict:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return {"file": (name, buffer.getvalue().encode(), "text/csv")}


def _import(
    client: TestClient, kind: str, rows: list[dict[str, Any]], headers: dict | None = None
) -> dict:
    response = client.post(
        f"/imports/{kind}",
        files=_upload(rows),
        data={"source_name": "scopetest"},
        headers=headers or {},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _responder_row(city: DemoCity, callsign: str, code: str, **fields: str) -> dict[str, Any]:
    lon, lat, _ = grid_point(city, code)
    return {"callsign": callsign, "kind": "patrol", "skills": "", "lon": lon, "lat": lat, **fields}


def _responder(engine: Engine, callsign: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT r.kind, r.skills, ST_X(r.position) AS lon, ST_Y(r.position) AS lat, "
                "r.position_at, g.code AS home FROM responders r "
                "LEFT JOIN areas g ON g.id = r.home_grid_id WHERE r.callsign = :c"
            ),
            {"c": callsign},
        ).one()
    return dict(row._mapping)


def _point_row(engine: Engine, table: str, ref: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                # the table name comes from the tests' own literals, never from input
                f"SELECT t.*, ST_X(t.location) AS lon, ST_Y(t.location) AS lat, g.code AS grid "
                f"FROM {table} t LEFT JOIN areas g ON g.id = t.grid_id WHERE t.external_ref = :r"
            ),
            {"r": ref},
        ).one()
    return {k: v for k, v in row._mapping.items() if k != "location"}


# --- responders --------------------------------------------------------------------------------


def test_area_dispatcher_cannot_take_over_another_areas_callsign(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str], engine: Engine
) -> None:
    places = _places(loaded_city)
    made = _import(
        client,
        "responders",
        [_responder_row(loaded_city, "SCOPE-FAR-1", places["foreign"], skills="first_aid")],
    )
    assert made["inserted"] == 1, made
    before = _responder(engine, "SCOPE-FAR-1")
    assert before["home"] == places["foreign"]

    # The attack: the same callsign, at a point inside the dispatcher's community, another
    # kind and skills.
    attack = _responder_row(loaded_city, "SCOPE-FAR-1", places["inside"], kind="fire")
    attack["skills"] = "hazmat"
    body = _import(client, "responders", [attack], as_role(role_keys, "dispatcher@community"))

    assert (body["accepted"], body["inserted"], body["rejected"]) == (0, 0, 1), body
    assert body["rejects"] == [
        {"row": 1, "reason": "callsign belongs to another area's responder: 'SCOPE-FAR-1'"}
    ]
    assert body["rejected_by_reason"] == {"callsign belongs to another area's responder": 1}
    assert _responder(engine, "SCOPE-FAR-1") == before  # kind, skills, position, home unchanged


def test_area_dispatcher_cannot_change_a_city_wide_unit(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str], engine: Engine
) -> None:
    places = _places(loaded_city)
    with engine.connect() as conn:
        callsign = conn.execute(
            text("SELECT callsign FROM responders WHERE home_grid_id IS NULL ORDER BY id LIMIT 1")
        ).scalar_one()
    before = _responder(engine, callsign)
    row = _responder_row(loaded_city, callsign, places["inside"], kind="mediator")

    body = _import(client, "responders", [row], as_role(role_keys, "dispatcher@community"))

    assert body["rejects"] == [
        {"row": 1, "reason": f"callsign belongs to a city-wide responder: {callsign!r}"}
    ]
    assert body["inserted"] == 0
    assert _responder(engine, callsign) == before


def test_area_dispatcher_still_imports_and_updates_units_of_their_own_area(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str], engine: Engine
) -> None:
    places = _places(loaded_city)
    dispatcher = as_role(role_keys, "dispatcher@community")
    first = _import(
        client,
        "responders",
        [_responder_row(loaded_city, "SCOPE-OWN-1", places["inside"])],
        dispatcher,
    )
    assert first["inserted"] == 1, first
    _import(client, "responders", [_responder_row(loaded_city, "SCOPE-FAR-2", places["foreign"])])

    # One file: an update of their own unit (moved to another grid of the community), a new
    # unit, and another area's callsign. Only the last is refused; the rest is written.
    rows = [
        _responder_row(loaded_city, "SCOPE-OWN-1", places["busiest"], kind="medical"),
        _responder_row(loaded_city, "SCOPE-FAR-2", places["inside"], kind="fire"),
        _responder_row(loaded_city, "SCOPE-OWN-2", places["inside"]),
    ]
    body = _import(client, "responders", rows, dispatcher)

    assert (body["accepted"], body["inserted"], body["rejected"]) == (2, 2, 1), body
    assert body["rejects"] == [
        {"row": 2, "reason": "callsign belongs to another area's responder: 'SCOPE-FAR-2'"}
    ]
    own = _responder(engine, "SCOPE-OWN-1")
    assert (own["kind"], own["home"]) == ("medical", places["inside"])
    assert (own["lon"], own["lat"]) == pytest.approx(grid_point(loaded_city, places["busiest"])[:2])
    assert _responder(engine, "SCOPE-OWN-2")["home"] == places["inside"]
    assert _responder(engine, "SCOPE-FAR-2")["kind"] == "patrol"


def test_city_wide_dispatcher_still_updates_any_unit(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str], engine: Engine
) -> None:
    places = _places(loaded_city)
    _import(client, "responders", [_responder_row(loaded_city, "SCOPE-FAR-3", places["foreign"])])

    row = _responder_row(loaded_city, "SCOPE-FAR-3", places["inside"], kind="fire")
    body = _import(client, "responders", [row], as_role(role_keys, "dispatcher"))

    assert (body["inserted"], body["rejected"]) == (1, 0), body
    assert _responder(engine, "SCOPE-FAR-3")["kind"] == "fire"


def test_responder_upsert_itself_leaves_other_areas_units_alone(
    client: TestClient,
    loaded_city: DemoCity,
    role_keys: dict[str, str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upsert repeats the rule, for a unit another transaction creates or moves out of
    the area between the check and the write (simulated by switching the check off)."""
    places = _places(loaded_city)
    _import(client, "responders", [_responder_row(loaded_city, "SCOPE-FAR-4", places["foreign"])])
    before = _responder(engine, "SCOPE-FAR-4")

    def check_finds_nothing(conn, kind, rows, scope):  # noqa: ANN001, ANN202
        return pd.Series(False, index=rows.index).to_numpy(), pd.Series(None, index=rows.index)

    monkeypatch.setattr(points, "foreign_keys", check_finds_nothing)
    row = _responder_row(loaded_city, "SCOPE-FAR-4", places["inside"], kind="fire")
    body = _import(client, "responders", [row], as_role(role_keys, "dispatcher@community"))

    assert (body["accepted"], body["inserted"], body["already_present"]) == (1, 0, 1), body
    assert _responder(engine, "SCOPE-FAR-4") == before


# --- households and rental units ---------------------------------------------------------------


def test_grid_worker_cannot_reach_another_grids_household_by_its_id(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str], engine: Engine
) -> None:
    places = _places(loaded_city)
    lon, lat, _ = grid_point(loaded_city, places["foreign"])
    made = _import(
        client, "households", [{"id": "far", "household_size": 2, "lon": lon, "lat": lat}]
    )
    assert made["inserted"] == 1, made
    before = _point_row(engine, "households", "scopetest:far")
    assert before["grid"] == places["foreign"]

    lon, lat, _ = grid_point(loaded_city, places["busiest"])
    rows = [
        {"id": "far", "household_size": 7, "lon": lon, "lat": lat},
        {"id": "mine", "household_size": 3, "lon": lon, "lat": lat},
    ]
    body = _import(client, "households", rows, as_role(role_keys, "grid_worker"))

    assert (body["accepted"], body["inserted"], body["already_present"]) == (1, 1, 0), body
    assert body["rejects"] == [
        {"row": 1, "reason": "external_ref belongs to another area's household: 'scopetest:far'"}
    ]
    assert _point_row(engine, "households", "scopetest:far") == before
    assert _point_row(engine, "households", "scopetest:mine")["grid"] == places["busiest"]

    # Their own household's id, re-imported, is simply already there (not refused).
    again = _import(client, "households", rows[1:], as_role(role_keys, "grid_worker"))
    assert (again["inserted"], again["already_present"], again["rejected"]) == (0, 1, 0), again


def test_grid_worker_cannot_reach_another_grids_rental_unit_by_its_id(
    client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str], engine: Engine
) -> None:
    places = _places(loaded_city)
    lon, lat, _ = grid_point(loaded_city, places["foreign"])
    far = {"id": "far", "unit_count": 2, "occupants": 3, "lon": lon, "lat": lat}
    assert _import(client, "rental-units", [far])["inserted"] == 1
    before = _point_row(engine, "rental_units", "scopetest:far")

    lon, lat, _ = grid_point(loaded_city, places["busiest"])
    attack = {"id": "far", "unit_count": 9, "occupants": 40, "lon": lon, "lat": lat}
    body = _import(client, "rental-units", [attack], as_role(role_keys, "grid_worker"))

    assert (body["accepted"], body["inserted"], body["rejected"]) == (0, 0, 1), body
    assert body["rejects"] == [
        {"row": 1, "reason": "external_ref belongs to another area's rental unit: 'scopetest:far'"}
    ]
    assert _point_row(engine, "rental_units", "scopetest:far") == before

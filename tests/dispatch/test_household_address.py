"""The household's address (issue 20, migration 0034): where a grid worker knocks.

Imported with the households (a column ``address``, up to 200 characters; a longer one is a
rejected row that writes nothing), shown in the household rows (``GET /households``,
``GET /households/visits``, the phone page) to the grid's own worker and admins only, and in
no aggregate.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import chromium, sign_in_on_phone
from tests.conftest import ARTIFACTS, as_role, grid_point, problem
from tests.dispatch.test_field_app import busiest_grid, make_worker

DOOR = '锦绣小区 3栋2单元501 <b>"east"</b>'


def _upload(rows: list[dict[str, Any]]) -> dict[str, Any]:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return {"file": ("homes.csv", buffer.getvalue().encode(), "text/csv")}


def _address_of(engine: Engine, ref: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT id, address, grid_id FROM households WHERE external_ref LIKE :r"),
            {"r": f"%{ref}"},
        ).first()


def test_the_household_import_reads_the_address_and_refuses_one_too_long(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city, busiest_grid(loaded_city))
    rows = [
        {"id": "door-a", "household_size": 2, "address": DOOR, "lon": lon, "lat": lat},
        {"id": "door-b", "household_size": 1, "address": "  ", "lon": lon, "lat": lat},
        {"id": "door-c", "household_size": 3, "address": "x" * 201, "lon": lon, "lat": lat},
    ]
    response = client.post("/imports/households", files=_upload(rows))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["read"], body["inserted"], body["rejected"]) == (3, 2, 1)
    assert body["rejects"] == [{"row": 3, "reason": "address longer than 200 characters"}]
    assert _address_of(engine, "door-a").address == DOOR
    assert _address_of(engine, "door-b").address is None  # blank: not given
    assert _address_of(engine, "door-c") is None  # the rejected row wrote nothing


def test_the_address_is_shown_in_rows_to_the_grids_own_worker_only(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    code = busiest_grid(loaded_city)
    lon, lat, _ = grid_point(loaded_city, code)
    rows = [{"id": "door-w", "household_size": 2, "address": DOOR, "lon": lon, "lat": lat}]
    assert client.post("/imports/households", files=_upload(rows)).status_code == 200
    home = _address_of(engine, "door-w")
    worker = make_worker(engine, code, "field-address")
    # the grid's own worker: in the rows and in the visit list
    listed = client.get(
        "/households", params={"grid_id": home.grid_id, "limit": 500}, headers=worker["headers"]
    )
    assert listed.status_code == 200, listed.text
    mine = [h for h in listed.json()["data"] if h["id"] == home.id]
    assert mine and mine[0]["address"] == DOOR
    visits = client.get(
        "/households/visits", params={"grid_id": home.grid_id}, headers=worker["headers"]
    )
    assert visits.status_code == 200, visits.text
    assert [h["address"] for h in visits.json()["data"] if h["id"] == home.id] == [DOOR]
    # the phone page shows it as text (escaped by the page: el() sets textContent)
    assert "address" in client.get("/static/pages/field_app.js").text
    # another grid's worker, a dispatcher and an analyst: no rows, so no address
    codes = [c for c in loaded_city.areas[loaded_city.areas.level == "grid"].code if c != code]
    other = make_worker(engine, codes[0], "field-address-other")
    for headers in (
        other["headers"],
        as_role(role_keys, "dispatcher"),
        as_role(role_keys, "analyst"),
    ):
        for path in ("/households", "/households/visits"):
            refused = client.get(path, params={"grid_id": home.grid_id}, headers=headers)
            assert refused.status_code == 403, (path, refused.text)
            assert DOOR not in refused.text
            problem(refused)
    # aggregates carry counts only, for everyone
    for headers in (as_role(role_keys, "analyst"), {}):
        for params in ({"level": "grid"}, {"res": 9}):
            published = client.get("/households/aggregate", params=params, headers=headers)
            assert published.status_code == 200, published.text
            assert "address" not in published.text and DOOR not in published.text
    coverage = client.get("/households/visits/coverage", headers=worker["headers"])
    assert coverage.status_code == 200 and "address" not in coverage.text


@pytest.mark.browser
def test_the_phone_page_shows_the_address_as_text(
    client: TestClient, engine: Engine, loaded_city: DemoCity, live_server: str
) -> None:
    code = busiest_grid(loaded_city)
    lon, lat, _ = grid_point(loaded_city, code)
    rows = [{"id": "door-p", "household_size": 2, "address": DOOR, "lon": lon, "lat": lat}]
    assert client.post("/imports/households", files=_upload(rows)).status_code == 200
    home = _address_of(engine, "door-p")
    worker = make_worker(engine, code, "field-address-phone")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
                locale="zh-CN",
            ).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            sign_in_on_phone(page, live_server, worker["headers"]["X-API-Key"])
            page.locator('#tabs button[data-tab="visits"]').tap()
            row = page.locator(f'li.household[data-id="{home.id}"]')
            row.wait_for()
            # as text: the markup in it is shown, never made into elements
            assert row.locator(".address").text_content() == DOOR
            assert row.locator(".address b").count() == 0
            assert row.locator(".hid").text_content() == f"#{home.id}"
            row.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "field-app-address.png"))
            assert errors == [], errors
        finally:
            browser.close()


def _audited_imports(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT diff FROM audit_log WHERE action = 'import' AND entity = 'households' "
                    "ORDER BY id"
                )
            ).scalars()
        )


def test_a_reimport_fills_or_changes_the_address_of_the_same_household(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city, busiest_grid(loaded_city))
    # by the source's id: first without addresses, then with them
    first = [
        {"id": "re-a", "household_size": 2, "lon": lon, "lat": lat},
        {"id": "re-b", "household_size": 4, "lon": lon, "lat": lat},
    ]
    made = client.post("/imports/households", files=_upload(first)).json()
    assert (made["inserted"], made["updated"]) == (2, 0)
    before = {ref: _address_of(engine, ref).id for ref in ("re-a", "re-b")}
    again = [
        {"id": "re-a", "household_size": 2, "address": "锦绣小区 1栋101", "lon": lon, "lat": lat},
        {"id": "re-b", "household_size": 4, "address": "", "lon": lon, "lat": lat},
    ]
    seen = _audited_imports(engine)
    filled = client.post("/imports/households", files=_upload(again))
    assert filled.status_code == 200, filled.text
    body = filled.json()
    assert (body["inserted"], body["already_present"], body["updated"]) == (0, 2, 1)
    assert _address_of(engine, "re-a").address == "锦绣小区 1栋101"
    assert _address_of(engine, "re-b").address is None  # a blank cell erases nothing
    # the same rows (no new household), and the change audited with the import
    assert {ref: _address_of(engine, ref).id for ref in ("re-a", "re-b")} == before
    audited = _audited_imports(engine)[len(seen) :]
    assert [(d["inserted"], d["updated"]) for d in audited] == [(0, 1)]
    # a changed address is changed; the same file again changes nothing
    again[0]["address"] = "锦绣小区 1栋102"
    assert client.post("/imports/households", files=_upload(again)).json()["updated"] == 1
    assert _address_of(engine, "re-a").address == "锦绣小区 1栋102"
    assert client.post("/imports/households", files=_upload(again)).json()["updated"] == 0

    # without ids: the content key (location, size, flags; not the address) finds the row
    plain = [{"household_size": 7, "elderly_living_alone": "yes", "lon": lon, "lat": lat}]
    assert client.post("/imports/households", files=_upload(plain)).json()["inserted"] == 1
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM households")).scalar_one()
    plain[0]["address"] = "幸福里 9号"
    body = client.post("/imports/households", files=_upload(plain)).json()
    assert (body["inserted"], body["updated"]) == (0, 1)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM households")).scalar_one() == count
        assert (
            conn.execute(
                text("SELECT count(*) FROM households WHERE address = '幸福里 9号'")
            ).scalar_one()
            == 1
        )


def test_a_reimport_with_an_address_too_long_changes_nothing(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city, busiest_grid(loaded_city))
    rows = [{"id": "re-long", "household_size": 2, "address": "1栋", "lon": lon, "lat": lat}]
    assert client.post("/imports/households", files=_upload(rows)).json()["inserted"] == 1
    rows[0]["address"] = "x" * 201
    refused = client.post("/imports/households", files=_upload(rows)).json()
    assert (refused["rejected"], refused["updated"]) == (1, 0)  # the row refused, not used
    assert _address_of(engine, "re-long").address == "1栋"

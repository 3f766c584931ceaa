"""What a fresh user found in dispatch and the API: candidates of the kinds an incident
needs, no positions off duty, no going off duty with incidents in hand, crs names in any
case, unknown categories named, sources a caller may claim, each role's page after sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.geo.crs import from_wgs84
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, as_role, grid_point, problem

# ~111 m per 0.001 degree of latitude
NEAR, FARTHER = 0.0005, 0.002


def _report(client: TestClient, city: DemoCity, category: str, **extra) -> dict:  # noqa: ANN003
    lon, lat, _ = grid_point(city)
    made = client.post(
        "/incidents", json={"category": category, "location": {"lon": lon, "lat": lat}, **extra}
    )
    assert made.status_code == 201, made.text
    return made.json()


def _audit_rows(engine: Engine, entity: str, entity_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM audit_log WHERE entity = :e AND entity_id = :i"),
            {"e": entity, "i": entity_id},
        ).scalar_one()


@pytest.fixture
def units_around(
    engine: Engine, loaded_city: DemoCity, responders_restored: None
) -> Iterator[dict[str, int]]:
    """Everyone off duty but one unit of each kind (not grid workers), available with a fresh
    position by the first grid's point: the fire unit on it, the others a little farther."""
    lon, lat, _ = grid_point(loaded_city)
    picked: dict[str, int] = {}
    with engine.begin() as conn:
        conn.execute(text("UPDATE responders SET status = 'off_duty'"))
        for kind, dlat in (("fire", 0.0), ("mediator", NEAR), ("patrol", FARTHER),
                           ("medical", NEAR / 2)):  # fmt: skip
            rid = conn.execute(
                text("SELECT min(id) FROM responders WHERE kind = :k"), {"k": kind}
            ).scalar_one()
            conn.execute(
                text(
                    "UPDATE responders SET status = 'available', position_at = now(), "
                    "position = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :id"
                ),
                {"x": lon, "y": lat + dlat, "id": rid},
            )
            picked[kind] = rid
    yield picked


# --- (1) candidates of the kinds the incident needs --------------------------------------------


def test_a_dispute_gets_no_fire_unit_and_a_hazard_no_mediator(
    client: TestClient, loaded_city: DemoCity, units_around: dict[str, int]
) -> None:
    dispute = _report(client, loaded_city, "disputes", priority=2)
    found = client.get(f"/incidents/{dispute['id']}/candidates", params={"k": 5})
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["kinds"] == ["mediator", "grid_worker", "patrol"]
    kinds = [c["kind"] for c in body["candidates"]]
    # the fire unit stands on the spot and the medical unit nearer than the mediator: neither
    assert kinds == ["mediator", "patrol"], kinds
    assert body["candidates"][0]["id"] == units_around["mediator"]

    hazard = _report(client, loaded_city, "safety_hazard")
    body = client.get(f"/incidents/{hazard['id']}/candidates", params={"k": 5}).json()
    assert [c["kind"] for c in body["candidates"]] == ["fire", "patrol"]
    assert body["candidates"][0]["id"] == units_around["fire"]


def test_a_dispatcher_may_still_ask_for_another_kind(
    client: TestClient, loaded_city: DemoCity, units_around: dict[str, int]
) -> None:
    dispute = _report(client, loaded_city, "disputes")
    body = client.get(
        f"/incidents/{dispute['id']}/candidates", params={"k": 5, "kind": "fire"}
    ).json()
    assert body["kinds"] == ["fire"]
    assert [c["id"] for c in body["candidates"]] == [units_around["fire"]]


def test_nearest_by_category_offers_its_kinds_and_refuses_an_unknown_one(
    client: TestClient, loaded_city: DemoCity, units_around: dict[str, int]
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    anyone = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 2}).json()
    assert [c["kind"] for c in anyone["candidates"]] == ["fire", "medical"]
    fit = client.get(
        "/responders/nearest", params={"lon": lon, "lat": lat, "k": 2, "category": "disputes"}
    ).json()
    assert [c["kind"] for c in fit["candidates"]] == ["mediator", "patrol"]
    bad = client.get(
        "/responders/nearest", params={"lon": lon, "lat": lat, "category": "nonexistent"}
    )
    assert bad.status_code == 422
    assert "disputes" in problem(bad)["known_categories"]


# --- (3) positions off duty, and going off duty with incidents in hand ------------------------


def test_a_fix_of_a_responder_off_duty_is_refused_and_not_stored(
    client: TestClient, engine: Engine, loaded_city: DemoCity, units_around: dict[str, int]
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    on, off = units_around["mediator"], units_around["fire"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE responders SET status = 'off_duty' WHERE id = :id"), {"id": off})
        before = conn.execute(
            text(
                "SELECT id, ST_AsText(position), position_at FROM responders WHERE id IN (:a, :b)"
            ),
            {"a": on, "b": off},
        ).all()
        at = conn.execute(text("SELECT now()")).scalar_one().isoformat()
    batch = [{"id": rid, "lon": lon + 0.01, "lat": lat, "at": at} for rid in (on, off)]
    refused = client.post("/responders/positions", json={"positions": batch})
    assert refused.status_code == 409, refused.text
    body = problem(refused)
    assert body["off_duty"] == [off] and "off duty" in body["detail"]
    with engine.connect() as conn:
        after = conn.execute(
            text(
                "SELECT id, ST_AsText(position), position_at FROM responders WHERE id IN (:a, :b)"
            ),
            {"a": on, "b": off},
        ).all()
    assert sorted(after) == sorted(before)  # all or nothing: the one on duty moved neither
    assert _audit_rows(engine, "responder", "batch of 2") == 0
    alone = client.post("/responders/positions", json={"positions": batch[:1]})
    assert alone.status_code == 200 and alone.json()["updated"] == 1


def test_going_off_duty_with_an_incident_in_hand_names_it_unless_forced(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    units_around: dict[str, int],
) -> None:
    rid = units_around["patrol"]
    made = _report(client, loaded_city, "traffic")
    sent = client.post(f"/incidents/{made['id']}/dispatch", json={"responder_id": rid})
    assert sent.status_code == 200, sent.text
    assert client.post(f"/incidents/{made['id']}/accept").status_code == 200
    audits = _audit_rows(engine, "responder", str(rid))
    refused = client.patch(f"/responders/{rid}", json={"status": "off_duty"})
    assert refused.status_code == 409
    body = problem(refused)
    assert body["incidents"] == [{"id": made["id"], "status": "accepted"}]
    assert made["id"] in body["detail"]
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM responders WHERE id = :id"), {"id": rid}
        ).scalar_one()
    assert status == "busy" and _audit_rows(engine, "responder", str(rid)) == audits
    # a grid worker cannot force it
    worker = client.patch(
        f"/responders/{rid}",
        json={"status": "off_duty", "force": True},
        headers=as_role(role_keys, "grid_worker"),
    )
    assert worker.status_code == 403
    forced = client.patch(f"/responders/{rid}", json={"status": "off_duty", "force": True})
    assert forced.status_code == 200 and forced.json()["status"] == "off_duty"
    with engine.connect() as conn:
        diff = conn.execute(
            text(
                "SELECT diff FROM audit_log WHERE entity = 'responder' AND entity_id = :i "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"i": str(rid)},
        ).scalar_one()
    assert diff["forced_off_duty_holding"] == [made["id"]]


# --- (4) crs in any case, unknown categories, sources a caller may claim ----------------------


@pytest.mark.parametrize("name", ["GCJ02", "GCJ-02", "gcj_02", "Gcj02"])
def test_crs_is_read_in_any_case(client: TestClient, loaded_city: DemoCity, name: str) -> None:
    lon, lat, code = grid_point(loaded_city)
    listed = client.get("/incidents", params={"crs": name, "limit": 1})
    assert listed.status_code == 200, listed.text
    assert client.get("/areas", params={"level": "district", "crs": name}).status_code == 200
    (x,), (y,) = from_wgs84([lon], [lat], "gcj02")
    found = client.get("/areas/lookup", params={"lon": x, "lat": y, "crs": name})
    assert found.status_code == 200 and found.json()["grid"]["code"] == code
    made = client.post(
        "/incidents",
        json={"category": "traffic", "location": {"lon": x, "lat": y}, "crs": name},
    )
    assert made.status_code == 201 and made.json()["grid"]["code"] == code


def test_an_unknown_crs_is_still_a_422(client: TestClient) -> None:
    bad = client.get("/incidents", params={"crs": "epsg:3857"})
    assert bad.status_code == 422
    problem(bad)


def test_an_unknown_category_filter_is_a_422_naming_the_known(client: TestClient) -> None:
    bad = client.get("/incidents", params={"category": "nonexistent"})
    assert bad.status_code == 422
    body = problem(bad)
    assert "nonexistent" in body["detail"] and "disputes" in body["known_categories"]
    assert client.get("/incidents", params={"category": "disputes"}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/heatmap/h3",
        "/heatmap/grids",
        "/hotspots",
        "/hotspots/emerging",
        "/tiles/incidents.json",
        "/tiles/incidents/12/3355/1681.mvt",
    ],
)
def test_every_category_filter_refuses_an_unknown_code(client: TestClient, path: str) -> None:
    bad = client.get(path, params={"category": "nonexistent"})
    assert bad.status_code == 422, bad.text
    assert "disputes" in problem(bad)["known_categories"]
    assert client.get(path, params={"category": "disputes"}).status_code in (200, 204)


@pytest.mark.parametrize(
    ("role", "source", "status"),
    [
        ("dispatcher", "import", 403),
        ("dispatcher", "hotline", 201),
        ("dispatcher", "grid_worker", 201),
        ("admin", "import", 403),
        ("grid_worker", "citizen", 403),
        ("grid_worker", "import", 403),
        ("grid_worker", "grid_worker", 201),
    ],
)
def test_a_caller_files_only_the_sources_it_may_claim(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    role: str,
    source: str,
    status: int,
) -> None:
    busiest = loaded_city.households.grid_code.value_counts().index[0]
    lon, lat, _ = grid_point(loaded_city, busiest)  # inside the grid worker's own grid
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    made = client.post(
        "/incidents",
        json={"category": "sanitation", "location": {"lon": lon, "lat": lat}, "source": source},
        headers=as_role(role_keys, role),
    )
    assert made.status_code == status, made.text
    with engine.connect() as conn:
        after = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    if status == 403:
        assert source not in problem(made)["allowed_sources"]
        assert after == before
    else:
        assert made.json()["source"] == source and after == before + 1


@pytest.mark.parametrize(
    ("role", "source"), [("dispatcher", "citizen"), ("grid_worker", "grid_worker")]
)
def test_without_a_source_a_report_carries_the_callers_own(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, role: str, source: str
) -> None:
    busiest = loaded_city.households.grid_code.value_counts().index[0]
    lon, lat, _ = grid_point(loaded_city, busiest)
    made = client.post(
        "/incidents",
        json={"category": "sanitation", "location": {"lon": lon, "lat": lat}},
        headers=as_role(role_keys, role),
    )
    assert made.status_code == 201, made.text
    assert made.json()["source"] == source


# --- (5) each role's own page after signing in ------------------------------------------------


def _sign_in(client: TestClient, key: str, next_page: str | None = None) -> str:
    browser = TestClient(client.app)
    form = browser.get("/login", params={"next": next_page} if next_page else None)
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    data = {"api_key": key, "login_token": token}
    hidden = re.search(r'name="next" value="([^"]*)"', form.text).group(1)
    data["next"] = hidden
    done = browser.post("/login", data=data, follow_redirects=False)
    assert done.status_code == 303, done.text
    return done.headers["location"]


@pytest.mark.parametrize(
    ("role", "page"),
    [
        ("grid_worker", "/app"),
        ("dispatcher", "/map/dispatch"),
        ("planner", "/map/planner"),
        ("analyst", "/map/heatmap"),
        ("admin", "/map"),
    ],
)
def test_each_role_lands_on_its_own_page(
    client: TestClient, role_keys: dict, role: str, page: str
) -> None:
    assert _sign_in(client, role_keys[role]) == page


def test_next_still_wins_and_a_foreign_next_is_ignored(client: TestClient, role_keys: dict) -> None:
    assert _sign_in(client, role_keys["grid_worker"], "/map/heatmap") == "/map/heatmap"
    assert _sign_in(client, role_keys["grid_worker"], "https://evil.example/") == "/app"
    assert _sign_in(client, role_keys["dispatcher"], "//evil.example/x") == "/map/dispatch"


def test_a_grid_worker_following_the_redirects_reaches_the_phone_page(
    client: TestClient, role_keys: dict
) -> None:
    browser = TestClient(client.app)
    form = browser.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    page = browser.post("/login", data={"api_key": role_keys["grid_worker"], "login_token": token})
    assert page.status_code == 200 and str(page.url).endswith("/app")
    assert 'rel="manifest"' in page.text


# --- (2) the kinds of unit named in the console's language ------------------------------------

KIND_NAMES = {
    "zh-CN": ["调解员", "巡逻警力"],
    "en": ["mediator", "police patrol"],
}


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize(("device", "viewport"), [("desktop", (1400, 900)), ("phone", (390, 844))])
def test_the_console_names_the_kinds_in_its_language_and_offers_only_fitting_ones(
    live_server: str,
    client: TestClient,
    loaded_city: DemoCity,
    role_keys: dict,
    units_around: dict[str, int],
    lang: str,
    device: str,
    viewport: tuple[int, int],
) -> None:
    dispute = _report(client, loaded_city, "disputes", priority=1, description="<b>noise</b>")
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"], viewport) as (
        page,
        errors,
    ):
        page.goto(f"{live_server}/map/dispatch?lang={lang}")
        row = page.locator(f"tr.row[data-id='{dispute['id']}']")
        row.wait_for()
        row.click()
        page.wait_for_selector("#detail .candidates .kind")
        kinds = page.locator("#detail .candidates .kind").all_text_contents()
        assert kinds == KIND_NAMES[lang], kinds
        values = page.locator("#detail .candidates .kind").evaluate_all(
            "nodes => nodes.map(n => n.dataset.kind)"
        )
        assert values == ["mediator", "patrol"]  # the API's values stay
        offered = page.locator("#detail .candidates .kinds").text_content() or ""
        assert KIND_NAMES[lang][0] in offered, offered
        # what people typed shows as text, never as markup
        assert "<b>noise</b>" in (page.locator("#detail").text_content() or "")
        assert page.locator("#detail b", has_text="noise").count() == 0
        page.locator("#detail .candidates").scroll_into_view_if_needed()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"console_kinds_{device}_{lang}.png"))
        assert errors == []


def test_a_hotline_account_files_as_the_hotline_only(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    from sqlalchemy.orm import Session

    from geo_service.services.access.auth import create_key, create_user

    with Session(engine) as session:
        user = create_user(
            session,
            name="test-hotline-desk",
            role="dispatcher",
            area_code=None,
            channel="hotline",
            actor="tests",
        )
        key = create_key(session, user, actor="tests")[1]
        session.commit()
    lon, lat, _ = grid_point(loaded_city)
    body = {"category": "sanitation", "location": {"lon": lon, "lat": lat}}
    made = client.post("/incidents", json=body, headers={"X-API-Key": key})
    assert made.status_code == 201 and made.json()["source"] == "hotline"
    refused = client.post(
        "/incidents", json={**body, "source": "citizen"}, headers={"X-API-Key": key}
    )
    assert refused.status_code == 403
    assert problem(refused)["allowed_sources"] == ["hotline"]

"""Issue 20's "done means", in headless Chromium on a phone (390 x 844, touch, GPS, offline):
a grid worker receives a task, shares their position only while on duty, goes offline,
accepts, arrives, reports what they found with a photo and records two household visits,
then comes back online; the server then holds exactly those actions once each (even though
every one of them is sent twice, as a phone does when an answer is lost), the photo without
EXIF, and the dispatcher's console shows the changes; a dispatcher's escalation shows on the
phone without a reload. The server's clock is held and the phone's is installed at the same
instant; positions are counted after the phone's clock is moved on, not after waiting.
Screenshots: tests/artifacts/field-app-*.png."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.services.intake.photo_store import LocalPhotoStore
from geo_service.settings import Settings
from tests.browser import PHONE, chromium, new_phone
from tests.conftest import ARTIFACTS, grid_point, serving
from tests.dispatch.test_console import db_now
from tests.dispatch.test_field_app import (
    busiest_grid,
    make_worker,
    new_incident,
    photo_with_exif,
    visits_restored,  # noqa: F401 (a fixture)
)

DESKTOP = {"width": 1400, "height": 900}


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def fixes(engine: Engine, responder_id: int) -> int:
    """Position batches the responder's phone sent (each is audited)."""
    return count(
        engine,
        "SELECT count(*) FROM audit_log WHERE action = 'positions' AND entity_id = :r",
        r=str(responder_id),
    )


def wait_until(predicate: Any, what: str, timeout_s: float = 30.0) -> None:
    """Poll the server's state until ``predicate()`` holds (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def sign_in(page: Any, base: str, path: str, key: str) -> None:
    page.goto(f"{base}{path}")
    assert "/login" in page.url, page.url
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")


@pytest.mark.browser
def test_a_worker_goes_offline_and_nothing_is_lost_or_doubled(
    settings: Settings,
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    tmp_path: Path,
    visits_restored: None,  # noqa: F811
) -> None:
    code = busiest_grid(loaded_city)
    worker = make_worker(engine, code, "field-phone")
    lon, lat, _ = grid_point(loaded_city, code)
    task = new_incident(
        client, loaded_city, code, priority=2, description="Blocked fire lane <b>behind</b> 5"
    )
    sent = client.post(f"/incidents/{task}/dispatch", json={"responder_id": worker["id"]})
    assert sent.status_code == 200, sent.text
    with engine.connect() as conn:
        homes = list(
            conn.execute(
                text("SELECT id FROM households WHERE grid_id = :g ORDER BY id"),
                {"g": worker["grid_id"]},
            ).scalars()
        )
    app = create_app(settings)
    app.state.photo_store = LocalPhotoStore(tmp_path / "photos")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with serving(app) as base, sync_playwright() as pw:
        now = db_now(engine)
        app.state.runtime.clock.set(now)
        browser = chromium(pw)
        try:
            where = {"longitude": lon, "latitude": lat, "accuracy": 10}
            phone, page, errors = new_phone(browser, geolocation=where, clock_at=now)
            page.goto(f"{base}/app")
            assert "/login" in page.url, page.url
            # the sign-in page fits the phone: no sideways scrolling, a full-width field
            assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
            assert page.locator("input[name=api_key]").bounding_box()["width"] > 300
            page.screenshot(path=str(ARTIFACTS / "field-app-login.png"))
            page.fill("input[name=api_key]", worker["headers"]["X-API-Key"])
            page.locator("button[type=submit]").tap()
            page.wait_for_url(f"{base}/app")
            row = page.locator(f'li.task[data-id="{task}"]')
            row.locator(".act-accept").wait_for()
            # the description is shown as text, never as markup
            assert row.locator(".desc").text_content() == "Blocked fire lane <b>behind</b> 5"
            assert row.locator(".left").text_content().endswith(("left", "late"))
            page.wait_for_function("() => navigator.serviceWorker.controller !== null")

            # on duty (busy with the task): a fix now; off duty: none however long
            wait_until(lambda: fixes(engine, worker["id"]) >= 1, "the first fix")
            assert "Sharing my position every 30 s" in page.locator("#duty-detail").inner_text()
            page.locator("#duty").tap()
            wait_until(
                lambda: (
                    count(
                        engine,
                        "SELECT count(*) FROM responders WHERE id = :r AND status = 'off_duty'",
                        r=worker["id"],
                    )
                    == 1
                ),
                "off duty",
            )
            assert page.locator("#duty-detail").inner_text() == "Not sharing my position"
            before = fixes(engine, worker["id"])
            page.clock.fast_forward("05:00")
            app.state.runtime.clock.set(now + timedelta(minutes=5))  # the server keeps up
            page.wait_for_timeout(500)
            assert fixes(engine, worker["id"]) == before
            page.locator("#duty").tap()  # on again: busy, since the task is still open
            wait_until(
                lambda: (
                    count(
                        engine,
                        "SELECT count(*) FROM responders WHERE id = :r AND status = 'busy'",
                        r=worker["id"],
                    )
                    == 1
                ),
                "back on duty",
            )
            page.clock.fast_forward("00:31")
            app.state.runtime.clock.set(now + timedelta(minutes=5, seconds=31))
            wait_until(lambda: fixes(engine, worker["id"]) >= before + 2, "fixes every 30 s")
            page.screenshot(path=str(ARTIFACTS / "field-app-tasks.png"))

            # the visits and the report map once online, so the phone keeps them
            page.locator('#tabs button[data-tab="visits"]').tap()
            page.locator("li.household").first.wait_for()
            assert page.locator("li.household").count() == len(homes)
            # the households on a map: a point brings its row into view
            assert page.locator("#v-map path.home").count() == len(homes)
            page.screenshot(path=str(ARTIFACTS / "field-app-visits-map.png"))
            page.locator(f"#v-map path.home-{homes[3]}").dispatch_event("click")
            page.locator(f'li.household.chosen[data-id="{homes[3]}"]').wait_for()
            page.screenshot(path=str(ARTIFACTS / "field-app-visits.png"))
            page.locator('#tabs button[data-tab="report"]').tap()
            page.locator("#r-where").filter(has_text="GPS").wait_for()
            page.locator("#r-map path.leaflet-interactive, #r-map path").first.wait_for()
            page.locator("#r-map").tap()  # a tap on the map sets the place too
            page.locator("#r-where").filter(has_text="(map)").wait_for()
            page.locator('#tabs button[data-tab="tasks"]').tap()

            # --- offline ---------------------------------------------------------------------
            phone.set_offline(True)
            page.locator("#net.offline").wait_for()
            row.locator(".act-accept").tap()
            row.locator(".act-arrive").tap()
            page.locator("#outbox-toggle").filter(has_text="2 waiting to send").wait_for()
            assert row.get_attribute("data-status") == "on_scene"
            page.locator('#tabs button[data-tab="report"]').tap()
            page.locator("#r-gps").tap()
            page.locator("#r-where").filter(has_text="GPS").wait_for()
            page.select_option("#r-category", "facilities")
            page.fill("#r-description", "Streetlight out at the east gate")
            page.set_input_files(
                "#r-photo",
                files=[{"name": "gate.jpg", "mimeType": "image/jpeg", "buffer": photo_with_exif()}],
            )
            page.screenshot(path=str(ARTIFACTS / "field-app-report.png"))
            page.locator("#r-send").tap()
            page.locator('#tabs button[data-tab="visits"]').tap()
            for n, home in enumerate(homes[:2]):
                item = page.locator(f'li.household[data-id="{home}"]')
                item.locator(".record-visit").tap()
                item.locator("select[name=outcome]").select_option("met" if n == 0 else "no_answer")
                if n == 0:
                    item.locator("input[name=elderly_living_alone]").check()
                item.locator("form button[type=submit]").tap()
                item.locator(".pending").wait_for()
            page.locator("#outbox-toggle").filter(has_text="5 waiting to send").wait_for()
            page.locator("#outbox-toggle").tap()
            page.screenshot(path=str(ARTIFACTS / "field-app-offline.png"))
            # nothing has reached the server
            assert (
                count(
                    engine,
                    "SELECT count(*) FROM incidents WHERE id = :i AND status = 'dispatched'",
                    i=task,
                )
                == 1
            )
            assert (
                count(
                    engine,
                    "SELECT count(*) FROM incidents WHERE source = 'grid_worker' "
                    "AND created_at >= :t",
                    t=now,
                )
                == 0
            )
            assert count(engine, "SELECT count(*) FROM household_visits") == 0
            # the page opens again without a connection, with its tasks and what waits
            page.reload()
            page.locator(f'li.task[data-id="{task}"] .pending').first.wait_for()
            page.locator("#outbox-toggle").filter(has_text="5 waiting to send").wait_for()
            # a phone that lost the answers sends everything again: every item twice
            page.evaluate(
                "() => outboxAll().then((items) => Promise.all(items.map((item) => {"
                " const copy = {...item}; delete copy.seq; return outboxAdd(copy); })))"
            )
            # --- back online -------------------------------------------------------------------
            phone.set_offline(False)
            page.locator("#outbox").wait_for(state="hidden", timeout=30_000)
            assert errors == [], errors
            page.screenshot(path=str(ARTIFACTS / "field-app-online.png"))

            # the server holds each action once
            state = client.get(f"/incidents/{task}").json()
            assert state["status"] == "on_scene" and state["responder_id"] == worker["id"]
            for action in ("accept", "arrive"):
                assert (
                    count(
                        engine,
                        "SELECT count(*) FROM audit_log WHERE action = :a AND entity_id = :i",
                        a=action,
                        i=task,
                    )
                    == 1
                ), action
            reports = client.get(
                "/incidents", params={"grid_id": worker["grid_id"], "since": now.isoformat()}
            ).json()["features"]
            mine = [f for f in reports if f["properties"]["source"] == "grid_worker"]
            assert len(mine) == 1
            report = mine[0]["properties"]
            assert report["description"] == "Streetlight out at the east gate"
            assert report["category"] == "facilities"
            assert abs(mine[0]["geometry"]["coordinates"][0] - lon) < 1e-6
            photos = client.get(f"/incidents/{report['id']}/photos").json()
            assert photos["count"] == 1
            # served by the app under test, whose photo store is this test's directory
            stored = httpx.get(f"{base}{photos['data'][0]['url']}", headers=worker["headers"])
            assert stored.status_code == 200, stored.text
            image = Image.open(io.BytesIO(stored.content))
            assert dict(image.getexif()) == {} and b"PhoneMaker" not in stored.content
            assert len(list((tmp_path / "photos").glob("*/*.jpg"))) == 2
            with engine.connect() as conn:
                visits = conn.execute(
                    text("SELECT household_id, outcome FROM household_visits ORDER BY household_id")
                ).all()
                flag = conn.execute(
                    text("SELECT elderly_living_alone FROM households WHERE id = :h"),
                    {"h": homes[0]},
                ).scalar_one()
            assert [tuple(v) for v in visits] == [(homes[0], "met"), (homes[1], "no_answer")]
            assert flag is True
            assert (
                count(
                    engine,
                    "SELECT count(*) FROM audit_log "
                    "WHERE entity IN ('household_visit', 'incident_photo') AND at >= :t",
                    t=now,
                )
                == 3
            )

            # the dispatcher's console shows the changes; an escalation shows on the phone live
            desk = browser.new_context(viewport=DESKTOP)
            console = desk.new_page()
            sign_in(console, base, "/map/dispatch", role_keys["dispatcher"])
            console.locator("#live.ok").wait_for()
            console.wait_for_function(
                "([task, report]) => incidents.get(task)?.status === 'on_scene' "
                "&& incidents.has(report)",
                arg=[task, report["id"]],
            )
            # the report's photo, as a thumbnail in the console's detail (loaded: its pixels)
            console.evaluate("(id) => select(id)", report["id"])
            console.wait_for_function(
                "() => { const img = document.querySelector('#detail .photos img.thumb');"
                " return img && img.complete && img.naturalWidth > 0; }"
            )
            console.screenshot(path=str(ARTIFACTS / "field-app-console.png"))
            console.evaluate("(id) => select(id)", task)
            escalated = client.post(
                f"/incidents/{task}/escalate", json={"note": "the community office takes it"}
            )
            assert escalated.status_code == 200
            page.locator(f'li.task[data-id="{task}"] .level').filter(has_text="community").wait_for(
                timeout=20_000
            )
            page.locator('#tabs button[data-tab="tasks"]').tap()
            # the report's photo under it on the phone too
            page.wait_for_function(
                "(id) => { const img = document.querySelector("
                "`li.task[data-id='${id}'] img.thumb`);"
                " return img && img.complete && img.naturalWidth > 0; }",
                arg=report["id"],
            )
            # the worker holds one open incident: the new report is not offered to take
            reported = page.locator(f'li.task[data-id="{report["id"]}"]')
            assert reported.get_attribute("data-status") == "reported"
            assert reported.locator(".act-take").count() == 0
            page.screenshot(path=str(ARTIFACTS / "field-app-escalated.png"))
            # escalate with a reason, from the phone (a reason is required)
            page.locator(f'li.task[data-id="{task}"] .act-escalate').tap()
            assert page.locator("#act-note").get_attribute("required") is not None
            page.fill("#act-note", "the property company must act")
            page.locator("#act-ok").tap()
            wait_until(
                lambda: client.get(f"/incidents/{task}").json()["escalated_to"] == "street",
                "the worker's escalation",
            )
            with engine.connect() as conn:
                reason = conn.execute(
                    text(
                        "SELECT diff->>'reason' FROM audit_log WHERE action = 'escalate' "
                        "AND entity_id = :i ORDER BY id DESC LIMIT 1"
                    ),
                    {"i": task},
                ).scalar_one()
            assert reason == "the property company must act"
            # resolve with a resolution code and a note, from the phone
            page.locator(f'li.task[data-id="{task}"] .act-resolve').tap()
            page.select_option("#act-code", "referred")
            page.fill("#act-note", "handed to the property office")
            page.screenshot(path=str(ARTIFACTS / "field-app-resolve.png"))
            page.locator("#act-ok").tap()
            wait_until(
                lambda: client.get(f"/incidents/{task}").json()["resolution_code"] == "referred",
                "the resolve",
            )
            assert client.get(f"/incidents/{task}").json()["status"] == "resolved"
            page.locator(f'li.task[data-id="{task}"]').wait_for(state="detached")
            # another worker's queued visit on this phone is not sent under this sign-in
            page.evaluate(
                "(home) => outboxAdd({owner: 'other-phone', kind: 'visit', method: 'POST',"
                " household: home, key: 'other-phone-1', label: `#${home}`,"
                " path: `/households/${home}/visits`,"
                " body: {visited_on: '2026-01-05', outcome: 'met'}})"
                ".then(() => outboxAll()).then((items) => { waiting = items; return flush(); })",
                homes[2],
            )
            page.locator("#outbox-toggle").filter(has_text="1 kept for other-phone").wait_for()
            assert count(engine, "SELECT count(*) FROM household_visits") == 2
            # signing out ends the session and forgets what the phone kept to read offline
            assert page.evaluate("() => caches.keys().then((k) => k.length)") > 0
            session = {c["name"]: c["value"] for c in phone.cookies()}
            page.locator("#sign-out").tap()
            page.wait_for_url("**/login")
            assert page.evaluate("() => caches.keys().then((k) => k.length)") == 0
            # the old cookie no longer opens the page (its session was revoked)
            assert httpx.get(f"{base}/app", cookies=session).status_code == 401
            page.set_viewport_size(DESKTOP)
            page.screenshot(path=str(ARTIFACTS / "field-app-desktop.png"))
            page.set_viewport_size(PHONE)
        finally:
            app.state.runtime.clock.release()
            browser.close()


@pytest.mark.browser
def test_a_role_that_may_not_open_a_page_sees_why_on_a_phone(
    live_server: str, role_keys: dict
) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
            sign_in(page, live_server, "/map/dispatch", role_keys["analyst"])
            assert page.locator("h1").inner_text() == "This page is not for your role"
            assert "incidents:write" in page.locator("#detail").inner_text() or (
                "responders:read" in page.locator("#detail").inner_text()
            )
            assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
            page.screenshot(path=str(ARTIFACTS / "field-app-forbidden.png"))
            page.locator("button[type=submit]").tap()  # sign in as someone else
            page.wait_for_url("**/login")
        finally:
            browser.close()


# what the page's JavaScript sees of one address without a connection
FETCHED = """async (path) => {
  try {
    const r = await fetch(path);
    return {ok: r.ok, type: r.headers.get("content-type"), size: (await r.clone().blob()).size,
            body: path.endsWith(".webmanifest") ? await r.json() : null};
  } catch (err) { return {ok: false, error: String(err)}; }
}"""


@pytest.mark.browser
def test_the_manifest_and_its_icons_open_without_a_connection(
    engine: Engine, loaded_city: DemoCity, live_server: str
) -> None:
    """The phone keeps the installable app's manifest and every icon it names (they were
    fetched from the network only: an offline reload had no manifest and no PNG icon)."""
    worker = make_worker(engine, busiest_grid(loaded_city), "field-manifest")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    names = {"zh-CN": "geo-service：我的网格", "en": "geo-service: my grid"}
    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            for locale in ("zh-CN", "en-US"):
                tag = "en" if locale == "en-US" else locale
                phone = browser.new_context(
                    viewport=PHONE,
                    device_scale_factor=2,
                    is_mobile=True,
                    has_touch=True,
                    locale=locale,
                    timezone_id="Asia/Shanghai",
                )
                page = phone.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                sign_in(page, live_server, "/app", worker["headers"]["X-API-Key"])
                page.wait_for_function("() => navigator.serviceWorker.controller !== null")
                assert page.evaluate("() => caches.keys()") == ["geo-service-field-v9"]
                phone.set_offline(True)
                page.reload()
                page.locator("#net.offline").wait_for()
                assert page.evaluate("() => document.documentElement.lang") == tag
                manifest = page.evaluate(FETCHED, "/app/manifest.webmanifest")
                assert manifest["ok"], manifest
                assert manifest["type"].startswith("application/manifest+json")
                assert manifest["body"]["name"] == names[tag]
                assert manifest["body"]["start_url"] == "/app"
                icons = manifest["body"]["icons"]
                assert {i["type"] for i in icons} == {"image/svg+xml", "image/png"}
                for icon in icons:
                    got = page.evaluate(FETCHED, icon["src"])
                    assert got["ok"] and got["type"].startswith(icon["type"]), (icon, got)
                    assert got["size"] > 100, (icon, got)
                # the icons drawn offline, to look at
                page.evaluate(
                    "(srcs) => { const bar = document.createElement('div');"
                    " bar.id = 'offline-icons'; bar.style.cssText = 'display:flex;gap:8px';"
                    " for (const src of srcs) { const img = new Image(64, 64); img.src = src;"
                    " bar.append(img); } document.body.prepend(bar); }",
                    [i["src"] for i in icons],
                )
                page.wait_for_function(
                    "() => [...document.querySelectorAll('#offline-icons img')]"
                    ".every((img) => img.complete && img.naturalWidth > 0)"
                )
                page.screenshot(path=str(ARTIFACTS / f"field-app-{tag}-offline-manifest.png"))
                assert errors == [], errors
                phone.close()
        finally:
            browser.close()

"""Issue 13, pages: stored XSS on the maps (run in Chromium), the Content-Security-Policy, no
long-lived credential in page source, the sign-in session cookie (flags, logout, revocation),
CSRF on cookie writes and on the sign-in form."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.api.app import create_app
from geo_service.db.models import User
from geo_service.demo.city import DemoCity
from geo_service.runtime import PrincipalCache
from geo_service.services.access.auth import create_key, create_user, revoke_key
from geo_service.settings import Settings
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, as_role, grid_point, problem

# Runs in whichever place a value lands: an HTML sink (onerror) or a broken-out script block.
PAYLOAD = (
    "</script><script>window.__pwned=2;fetch('/pwned-script')</script>"
    "<img src=x onerror=\"window.__pwned=1;fetch('/pwned-img')\">"
)
PAGES = ("/map", "/map/heatmap", "/map/dispatch", "/map/planner", "/login", "/docs")
JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+")
API_KEY = re.compile(r"gs_[0-9a-f]{12}_[\w-]{20,}")


def sign_in(app, api_key: str, **client_args) -> tuple[TestClient, object]:  # noqa: ANN001
    """A fresh client signed in through the form the way a browser does; and the response."""
    browser = TestClient(app, **client_args)
    form = browser.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    done = browser.post(
        "/login", data={"api_key": api_key, "login_token": token}, follow_redirects=False
    )
    return browser, done


def session_cookie(response) -> str:  # noqa: ANN001
    """The Set-Cookie header of the sign-in session."""
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith("geo_session="))


def page_csrf(browser: TestClient) -> str:
    """The CSRF token a signed-in page carries."""
    page = browser.get("/map/dispatch")
    return re.search(r'data-csrf="([^"]*)"', page.text).group(1)


@pytest.fixture
def poisoned_grid(engine: Engine, loaded_city: DemoCity) -> Iterator[str]:
    """A grid whose name (as a planner could import it) is a script payload; restored after."""
    _, _, code = grid_point(loaded_city)
    with engine.begin() as conn:
        before = conn.execute(
            text("SELECT id, name FROM areas WHERE code = :c AND level = 'grid'"), {"c": code}
        ).all()
        conn.execute(
            text("UPDATE areas SET name = :p WHERE code = :c AND level = 'grid'"),
            {"p": PAYLOAD, "c": code},
        )
    try:
        yield code
    finally:
        with engine.begin() as conn:
            for area_id, name in before:
                conn.execute(
                    text("UPDATE areas SET name = :n WHERE id = :i"), {"n": name, "i": area_id}
                )


@pytest.mark.browser
def test_a_script_in_a_grid_name_does_not_run_when_an_admin_hovers_the_grid(
    live_server: str, role_keys: dict[str, str], poisoned_grid: str
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map", role_keys["admin"]) as (page, errors):
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(r.url))
        page.wait_for_selector("path.leaflet-interactive")
        for outline in ("Street boundaries", "District boundaries"):  # leave the grids on top
            control = page.locator(".leaflet-control-layers label", has_text=outline)
            control.locator("input").uncheck()
        # Find the poisoned grid's polygon, lift it above the outlines, and hover its centre
        # with the real mouse (the tooltip opens on mouseover, as it does for a person).
        point = None
        for _ in range(20):  # the map's own fit-to-bounds may still be moving it: re-aim
            point = page.evaluate(
                """(code) => {
                  for (const name of Object.keys(window)) {
                    let value;
                    try { value = window[name]; } catch (e) { continue; }
                    if (!(value instanceof L.GeoJSON)) continue;
                    for (const layer of value.getLayers()) {
                      if (layer.feature.properties.code !== code
                          || layer.feature.properties.level === "community") continue;
                      if (!("incidents" in layer.feature.properties)) continue;
                      const map = layer._map;
                      if (!window.__viewSet) {  // first call: move the view, then let it settle
                        map.setView(layer.getCenter(), map.getZoom() + 1, {animate: false});
                        map.panBy([250, 0], {animate: false});  // room on the right for the tooltip
                        layer.bringToFront();
                        window.__viewSet = true;
                        return "moved";
                      }
                      // A point the grid's own polygon is drawn at (a concave grid's centre can
                      // lie in a neighbour): the centre, else points between it and each vertex.
                      const box = map.getContainer().getBoundingClientRect();
                      const c = map.latLngToContainerPoint(layer.getCenter());
                      const ring = layer.getLatLngs().flat(3);
                      const tries = [[c.x, c.y]];
                      for (const f of [0.5, 0.25, 0.75, 0.9])
                        for (const ll of ring) {
                          const v = map.latLngToContainerPoint(ll);
                          tries.push([c.x + f * (v.x - c.x), c.y + f * (v.y - c.y)]);
                        }
                      for (const [x, y] of tries)
                        if (document.elementFromPoint(box.left + x, box.top + y) === layer._path)
                          return [box.left + x, box.top + y];
                      return null;
                    }
                  }
                  return null;
                }""",
                poisoned_grid,
            )
            if point not in (None, "moved"):
                break
            page.wait_for_timeout(250)
        assert point not in (None, "moved")
        page.mouse.move(point[0] - 3, point[1] - 3)
        page.mouse.move(point[0], point[1])
        tooltip = page.locator(".leaflet-tooltip")
        tooltip.wait_for()
        page.wait_for_timeout(500)  # an onerror fires once the broken image fails to load
        shown = tooltip.inner_text()
        images_in_tooltip = tooltip.locator("img").count()
        pwned = page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
        page.screenshot(path=str(ARTIFACTS / "xss-map-tooltip.png"))
    assert not errors, errors
    assert poisoned_grid in shown and "<img src=x onerror=" in shown  # shown as text
    assert images_in_tooltip == 0
    assert pwned is None
    assert not [u for u in fetched if "/pwned" in u]


@pytest.mark.browser
def test_a_script_in_an_incident_description_does_not_run_on_the_dispatch_map(
    live_server: str, client: TestClient, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    made = client.post(
        "/incidents",
        json={
            "category": "safety_hazard",
            "priority": 1,
            "description": PAYLOAD,
            "location": {"lon": lon, "lat": lat},
        },
    ).json()
    iid = made["id"]
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"], (1400, 900)) as (
        page,
        errors,
    ):
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(r.url))
        marker = page.locator(f"path.incident-{iid}")
        marker.wait_for()
        marker.click()
        page.wait_for_function(
            "() => document.getElementById('detail').textContent.includes('onerror')"
        )
        page.wait_for_timeout(500)
        detail = page.inner_text("#detail")
        pwned = page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
        source = page.content()
        page.screenshot(path=str(ARTIFACTS / "xss-dispatch-detail.png"))
    client.post(f"/incidents/{iid}/cancel")
    assert not errors, errors
    assert "<img src=x onerror=" in detail and pwned is None
    assert not [u for u in fetched if "/pwned" in u]
    assert not JWT.search(source) and not API_KEY.search(source)


@pytest.mark.browser
def test_swagger_ui_still_works_under_its_policy(live_server: str) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security" in m.text else None,
            )
            page.goto(f"{live_server}/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            operations = page.locator(".opblock").count()
        finally:
            browser.close()
    assert operations > 20
    assert not violations, violations


def _directives(policy: str) -> dict[str, list[str]]:
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part
    }


def test_every_page_forbids_inline_script(
    client: TestClient, role_keys: dict[str, str], poisoned_grid: str
) -> None:
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        policy = _directives(response.headers["content-security-policy"])
        scripts = policy["script-src"]
        assert scripts[0] == "'self'", (path, scripts)
        assert not {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*"} & set(scripts)
        assert all(s == "'self'" or s.startswith("'nonce-") for s in scripts), (path, scripts)
        assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        html = response.text
        nonce = next((s[7:-1] for s in scripts if s.startswith("'nonce-")), None)
        for tag in re.findall(r"<script\b[^>]*>", html, flags=re.IGNORECASE):
            # an inline script runs only with this response's nonce
            assert "src=" in tag or (nonce and f'nonce="{nonce}"' in tag), (path, tag)
        handlers = re.findall(r"<[a-z][^>]*\son[a-z]+\s*=", html, flags=re.IGNORECASE)
        assert not handlers, (path, handlers[:3])
    # the poisoned name reaches /map only as inert text
    page = client.get("/map").text
    assert "<img src=x" not in page and "</script><script>window" not in page
    # a nonce is per response
    first, second = (client.get("/map").headers["content-security-policy"] for _ in range(2))
    assert first != second


def test_the_tile_server_is_the_only_other_image_source(
    settings: Settings, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    internal = "https://tiles.city.internal/{z}/{x}/{y}.png"
    custom = settings.model_copy(
        update={"api": settings.api.model_copy(update={"map_tiles": internal})}
    )
    with TestClient(create_app(custom), headers=as_role(role_keys, "dispatcher")) as c:
        for path in ("/map", "/map/dispatch", "/login"):
            policy = _directives(c.get(path).headers["content-security-policy"])
            assert policy["img-src"] == ["'self'", "data:", "https://tiles.city.internal"], path
            assert policy["connect-src"] == ["'self'"]


def test_no_token_or_key_in_any_page_source(client: TestClient, role_keys: dict[str, str]) -> None:
    for role, pages in (("dispatcher", PAGES[:3]), ("planner", ("/map/planner",))):
        browser, done = sign_in(client.app, role_keys[role])
        assert done.status_code == 303
        for path in pages:
            source = browser.get(path).text
            assert not JWT.search(source), (role, path)
            assert not API_KEY.search(source) and role_keys[role] not in source, (role, path)
            assert "Bearer" not in source and "TOKEN" not in source, (role, path)
        for script in ("common.js", "dispatch.js", "planner.js", "heatmap.js"):
            body = browser.get(f"/static/pages/{script}").text
            assert "Bearer" not in body and "X-CSRF-Token" not in body or script == "common.js"


def test_sign_in_cookie_is_a_random_revocable_session_id_with_safe_flags(
    client: TestClient, engine: Engine, role_keys: dict[str, str], settings: Settings
) -> None:
    key = role_keys["dispatcher"]
    _, done = sign_in(client.app, key)
    cookie = session_cookie(done)
    value = re.search(r"geo_session=([^;]+)", cookie).group(1)
    assert len(value) >= 40 and key not in cookie and key.split("_")[2] not in cookie
    flags = [f.strip().lower() for f in cookie.split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    max_age = int(next(f for f in flags if f.startswith("max-age=")).split("=")[1])
    assert max_age == settings.auth.session_ttl_s
    with engine.connect() as conn:  # only the id's hash is stored
        assert (
            conn.execute(
                text(
                    "SELECT count(*) FROM web_sessions WHERE id_sha256 = encode(sha256(:v), 'hex')"
                ),
                {"v": value.encode()},
            ).scalar_one()
            == 1
        )
        assert not conn.execute(
            text("SELECT count(*) FROM web_sessions WHERE id_sha256 = :v OR csrf_token = :v"),
            {"v": value},
        ).scalar_one()

    # over HTTPS, and behind a trusted proxy that says so, the cookie is Secure
    _, over_https = sign_in(client.app, key, base_url="https://testserver")
    assert "secure" in session_cookie(over_https).lower().split("; ")
    _, spoofed = sign_in(client.app, key, headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in session_cookie(spoofed).lower().split("; ")
    trusting = settings.model_copy(
        update={"api": settings.api.model_copy(update={"trusted_proxies": ["testclient"]})}
    )
    with TestClient(create_app(trusting), headers={"X-Forwarded-Proto": "https"}) as c:
        form = c.get("/login")
        token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
        assert "secure" in form.headers["set-cookie"].lower().split("; ")
        # the browser (on https) sends the Secure login cookie back; plain-http httpx would not
        proxied = c.post(
            "/login",
            data={"api_key": key, "login_token": token},
            headers={"Cookie": f"geo_login_csrf={token}"},
            follow_redirects=False,
        )
    assert "secure" in session_cookie(proxied).lower().split("; ")


def test_logout_revokes_the_session_on_the_server(
    client: TestClient, role_keys: dict[str, str]
) -> None:
    browser, _ = sign_in(client.app, role_keys["analyst"])
    stolen = browser.cookies.get("geo_session")
    assert browser.get("/areas?level=district").status_code == 200
    out = browser.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and 'geo_session=""' in out.headers["set-cookie"]
    replay = TestClient(client.app, cookies={"geo_session": stolen})
    assert problem(replay.get("/areas?level=district"))["status"] == 401


def test_a_revoked_key_or_a_disabled_user_ends_its_sessions(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session:
        user = create_user(
            session, name="test-session-revocation", role="analyst", area_code=None, actor="t"
        )
        row, key = create_key(session, user, actor="t")
        prefix, user_id = row.prefix, user.id
        session.commit()
    by_key, _ = sign_in(client.app, key)
    assert by_key.get("/areas?level=district").status_code == 200
    with Session(engine) as session:
        revoke_key(session, prefix, actor="t")
        session.commit()
    assert problem(by_key.get("/areas?level=district"))["status"] == 401

    with Session(engine) as session:
        _, key2 = create_key(session, session.get(User, user_id), actor="t")
        session.commit()
    by_user, _ = sign_in(client.app, key2)
    assert by_user.get("/areas?level=district").status_code == 200
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET disabled = true WHERE id = :i"), {"i": user_id})
    PrincipalCache.forget_all()  # as disabling through the service would (other processes: ttl)
    assert problem(by_user.get("/areas?level=district"))["status"] == 401


def test_a_cookie_write_needs_the_sessions_csrf_token(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    body = {"category": "traffic", "location": {"lon": lon, "lat": lat}}
    browser, _ = sign_in(client.app, role_keys["dispatcher"])
    token = page_csrf(browser)
    assert len(token) >= 40
    refused = problem(browser.post("/incidents", json=body))
    assert refused["status"] == 403 and "X-CSRF-Token" in refused["detail"]
    wrong = browser.post("/incidents", json=body, headers={"X-CSRF-Token": token[:-2] + "xx"})
    assert problem(wrong)["status"] == 403
    other, _ = sign_in(client.app, role_keys["dispatcher"])
    assert (
        problem(other.post("/incidents", json=body, headers={"X-CSRF-Token": token}))["status"]
        == 403
    )  # another session's token is no good
    made = browser.post("/incidents", json=body, headers={"X-CSRF-Token": token})
    assert made.status_code in (200, 201), made.text
    iid = made.json()["id"]
    cancelled = browser.post(f"/incidents/{iid}/cancel", json={}, headers={"X-CSRF-Token": token})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_a_cross_site_sign_in_post_is_refused(
    client: TestClient, engine: Engine, role_keys: dict[str, str]
) -> None:
    key = role_keys["analyst"]
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM web_sessions")).scalar_one()
    # a form on another site: no login cookie reaches us (SameSite=Strict), its token is made up
    forged = TestClient(client.app).post(
        "/login",
        data={"api_key": key, "login_token": "made-up"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert problem(forged)["status"] == 403
    no_cookie = TestClient(client.app).post(
        "/login", data={"api_key": key, "login_token": "made-up"}, follow_redirects=False
    )
    assert problem(no_cookie)["status"] == 403
    # even with a genuine form token, a foreign Origin (or Referer) is refused
    for header in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        browser = TestClient(client.app)
        token = re.search(r'name="login_token" value="([^"]+)"', browser.get("/login").text)
        refused = browser.post(
            "/login",
            data={"api_key": key, "login_token": token.group(1)},
            headers=header,
            follow_redirects=False,
        )
        assert problem(refused)["status"] == 403, header
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM web_sessions")).scalar_one() == before
    # our own form, same origin: signed in
    browser = TestClient(client.app)
    token = re.search(r'name="login_token" value="([^"]+)"', browser.get("/login").text)
    ok = browser.post(
        "/login",
        data={"api_key": key, "login_token": token.group(1)},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    # no next asked for: the analyst's own page (login.ROLE_HOME)
    assert ok.status_code == 303 and ok.headers["location"] == "/map/heatmap"


def test_sessions_over_for_a_day_are_swept_when_someone_signs_in(
    client: TestClient, engine: Engine, role_keys: dict[str, str]
) -> None:
    browser, _ = sign_in(client.app, role_keys["analyst"])
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE web_sessions SET expires_at = now() - interval '2 days'"
                " WHERE id_sha256 = encode(sha256(:v), 'hex')"
            ),
            {"v": browser.cookies.get("geo_session").encode()},
        )
        stale = conn.execute(
            text("SELECT count(*) FROM web_sessions WHERE expires_at < now() - interval '1 day'")
        ).scalar_one()
    assert stale >= 1
    sign_in(client.app, role_keys["analyst"])
    with engine.connect() as conn:
        assert not conn.execute(
            text("SELECT count(*) FROM web_sessions WHERE expires_at < now() - interval '1 day'")
        ).scalar_one()

"""Issue 13, authentication and cost: tokens die with their key, failed credentials are limited
per client address and logged, expensive work is limited by concurrency, /health answers while
the pool is exhausted, and the calendar-edge and whole-world-bbox requests are 422, not 500.
"""

from __future__ import annotations

import http.client
import logging
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.geo.bbox import BBox
from geo_service.services.access.auth import create_key, create_user, revoke_key
from geo_service.settings import Settings
from tests.conftest import as_role, grid_point, problem

NO_KEY = {"X-API-Key": ""}


def _tuned(settings: Settings, **changes: object) -> Settings:
    tuned = settings.model_copy(deep=True)
    for dotted, value in changes.items():
        section, field = dotted.split("__")
        setattr(getattr(tuned, section), field, value)
    return tuned


def _new_key(engine: Engine, name: str, role: str = "analyst") -> tuple[int, str]:
    """A fresh user with one key (never used, so never cached): (key id, full key)."""
    with Session(engine) as session:
        user = create_user(session, name=name, role=role, area_code=None, actor="tests")
        key, full = create_key(session, user, actor="tests")
        session.commit()
        return key.id, full


def _bearer(token: str) -> dict[str, str]:
    return {**NO_KEY, "Authorization": f"Bearer {token}"}


def _token(client: TestClient, key: str) -> str:
    response = client.post("/auth/token", data={"client_secret": key}, headers=NO_KEY)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# --- tokens name their key and die with it ------------------------------------------------


def test_a_token_names_its_key_and_is_refused_once_the_key_is_revoked(
    client: TestClient, engine: Engine
) -> None:
    key_id, key = _new_key(engine, "token-holder")
    token = _token(client, key)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["kid"] == key_id
    # used, so the principal cache holds it: revocation must clear that too
    assert (
        client.get("/areas", params={"level": "district"}, headers=_bearer(token)).status_code
        == 200
    )

    with Session(engine) as session:
        revoke_key(session, key.split("_")[1], actor="tests")
        session.commit()

    refused = client.get("/areas", params={"level": "district"}, headers=_bearer(token))
    assert problem(refused)["status"] == 401
    assert "revoked" in refused.json()["detail"]
    # and it cannot be exchanged for a fresh token either
    assert (
        client.post("/auth/token", data={"client_secret": key}, headers=NO_KEY).status_code == 401
    )


def test_revoking_one_key_leaves_tokens_of_the_users_other_key_alive(
    client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session:
        user = create_user(session, name="two-keys", role="analyst", area_code=None, actor="t")
        _, first = create_key(session, user, actor="tests")
        _, second = create_key(session, user, actor="tests")
        session.commit()
    first_token, second_token = _token(client, first), _token(client, second)
    with Session(engine) as session:
        revoke_key(session, first.split("_")[1], actor="tests")
        session.commit()
    assert client.get("/areas", headers=_bearer(first_token)).status_code == 401
    assert client.get("/areas", headers=_bearer(second_token)).status_code == 200


def test_tokens_without_a_live_key_of_their_user_are_refused(
    client: TestClient, engine: Engine, role_keys: dict[str, str]
) -> None:
    key_id, key = _new_key(engine, "kid-owner")
    claims = jwt.decode(_token(client, key), options={"verify_signature": False})
    secret = client.app.state.jwt_secret
    keyless = {k: v for k, v in claims.items() if k != "kid"}
    cases = {
        # an external IdP's token (no kid) is refused unless GEO_JWT_ACCEPT_KEYLESS is on
        "no kid": keyless,
        # someone else's user id with this key: the key must be the user's own
        "other user": {**claims, "sub": str(int(claims["sub"]) + 100_000)},
        "unknown key": {**claims, "kid": key_id + 100_000},
        "kid true": {**claims, "kid": True},
        "kid text": {**claims, "kid": str(key_id)},
    }
    for name, payload in cases.items():
        forged = jwt.encode(payload, secret, algorithm="HS256")
        response = client.get("/areas", headers=_bearer(forged))
        assert problem(response)["status"] == 401, name


def test_keyless_tokens_pass_only_when_the_external_idp_path_is_on(
    settings: Settings, engine: Engine, loaded_city: DemoCity
) -> None:
    _, key = _new_key(engine, "idp-user")
    with TestClient(create_app(_tuned(settings, auth__jwt_accept_keyless=True))) as idp:
        claims = jwt.decode(_token(idp, key), options={"verify_signature": False})
        keyless = {k: v for k, v in claims.items() if k != "kid"}
        token = jwt.encode(keyless, idp.app.state.jwt_secret, algorithm="HS256")
        assert (
            idp.get("/areas", params={"level": "district"}, headers=_bearer(token)).status_code
            == 200
        )


# --- failed credentials: limited per client address, logged --------------------------------


def test_failed_credentials_lock_out_the_address_and_are_logged_without_the_secret(
    settings: Settings,
    engine: Engine,
    role_keys: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, fresh = _new_key(engine, "locked-out-colleague")
    app = create_app(_tuned(settings, limits__auth_failures_per_minute=3))
    attacker_address = ("198.51.100.7", 40000)
    wrong = [f"gs_{'ab' * 6}_guess{i}" for i in range(3)]
    with (
        caplog.at_level(logging.WARNING, logger="geo_service.auth"),
        TestClient(app, client=attacker_address) as attacker,
    ):
        # a colleague behind the same address signed in before the attack
        assert attacker.get("/areas", headers=as_role(role_keys, "analyst")).status_code == 200
        codes = [attacker.get("/areas", headers={"X-API-Key": k}).status_code for k in wrong[:2]]
        # the token endpoint counts too
        codes.append(
            attacker.post(
                "/auth/token", data={"client_secret": wrong[2]}, headers=NO_KEY
            ).status_code
        )
        assert codes == [401, 401, 401]

        for headers in ({"X-API-Key": "gs_0123456789ab_another"}, {"X-API-Key": fresh}):
            locked = attacker.get("/areas", headers=headers)
            assert problem(locked)["status"] == 429  # even the right key, during the lock-out
            assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert (
            attacker.post("/auth/token", data={"client_secret": fresh}, headers=NO_KEY).status_code
            == 429
        )
        # the colleague's credential was verified a moment ago: it keeps working
        assert attacker.get("/areas", headers=as_role(role_keys, "analyst")).status_code == 200
        # another address is not affected
        other = TestClient(app, client=("203.0.113.50", 40001))
        assert other.get("/areas", headers={"X-API-Key": fresh}).status_code == 200

    lines = [r.getMessage() for r in caplog.records if r.name == "geo_service.auth"]
    failures = [line for line in lines if "198.51.100.7" in line]
    assert len(failures) == 3, lines
    assert all(f"API key prefix {'ab' * 6}" in line for line in failures)
    for secret in ("guess0", "guess1", "guess2", fresh.split("_", 2)[2]):
        assert secret not in caplog.text


def test_expired_tokens_are_logged_but_not_counted_as_guesses(
    settings: Settings,
    client: TestClient,
    role_keys: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    claims = jwt.decode(_token(client, role_keys["analyst"]), options={"verify_signature": False})
    app = create_app(_tuned(settings, limits__auth_failures_per_minute=2))
    with (
        caplog.at_level(logging.WARNING, logger="geo_service.auth"),
        TestClient(app, client=("192.0.2.33", 40002)) as stale,
    ):
        expired = jwt.encode(
            {**claims, "exp": datetime.now(UTC) - timedelta(seconds=5)},
            app.state.jwt_secret,
            algorithm="HS256",
        )
        codes = [stale.get("/areas", headers=_bearer(expired)).status_code for _ in range(4)]
        assert codes == [401] * 4
    logged = [r.getMessage() for r in caplog.records if "192.0.2.33" in r.getMessage()]
    assert len(logged) == 4 and all("counted=False" in line for line in logged)


# --- cost: expensive work limited by concurrency -------------------------------------------


def test_one_users_concurrent_heavy_requests_are_capped_while_dispatch_answers(
    settings: Settings,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(_tuned(settings, limits__heavy_per_user=2, limits__heavy_total=3))
    analyst, planner, dispatcher = (
        as_role(role_keys, r) for r in ("analyst", "planner", "dispatcher")
    )
    results: list[int] = []
    with TestClient(app) as client:

        def emerging_as(headers: dict[str, str]) -> None:
            response = client.get("/hotspots/emerging", params={"res": 7}, headers=headers)
            results.append(response.status_code)

        threads = [threading.Thread(target=emerging_as, args=(analyst,)) for _ in range(2)]
        threads.append(threading.Thread(target=emerging_as, args=(planner,)))
        import geo_service.api.routes.hotspots as hotspot_routes

        original = hotspot_routes.emerging
        inside = threading.Semaphore(0)
        release = threading.Event()

        def held(*args: Any, **kwargs: Any) -> Any:
            inside.release()
            assert release.wait(30), "never released"
            return original(*args, **kwargs)

        monkeypatch.setattr(hotspot_routes, "emerging", held)
        try:
            for thread in threads:
                thread.start()
            assert all(inside.acquire(timeout=30) for _ in threads), "held requests did not start"

            # the analyst's third heavy request at once: 429, whatever the endpoint
            third = client.get("/hotspots", params={"res": 7}, headers=analyst)
            assert problem(third)["status"] == 429
            assert 1 <= int(third.headers["retry-after"]) <= 60
            # the process runs its cap of heavy work: another user's heavy request is 503
            busy = client.get("/workload", headers=as_role(role_keys, "admin"))
            assert problem(busy)["status"] == 503 and busy.json()["code"] == "server-busy"
            assert int(busy.headers["retry-after"]) >= 1
            # dispatch and health keep answering meanwhile
            lon, lat, _ = grid_point(loaded_city)
            started = time.monotonic()
            incidents = client.get("/incidents", params={"limit": 5}, headers=dispatcher)
            nearest = client.get(
                "/responders/nearest", params={"lon": lon, "lat": lat}, headers=dispatcher
            )
            assert incidents.status_code == 200 and nearest.status_code == 200
            assert client.get("/health").status_code == 200
            assert time.monotonic() - started < 5
        finally:
            release.set()
            for thread in threads:
                thread.join(timeout=60)
        assert sorted(results) == [200, 200, 200]
        # slots are given back: the analyst may run heavy work again
        assert client.get("/hotspots", params={"res": 7}, headers=analyst).status_code == 200


# --- /health has its own connection path ---------------------------------------------------


def test_health_answers_within_seconds_while_every_pooled_connection_is_held(
    settings: Settings, loaded_city: DemoCity
) -> None:
    tuned = _tuned(settings, database__pool_size=2)
    with TestClient(create_app(tuned)) as client:
        engine: Engine = client.app.state.engine
        size = engine.pool.size() + engine.pool._max_overflow  # type: ignore[attr-defined]
        held = [engine.connect() for _ in range(size)]
        try:
            assert engine.pool.checkedout() == size  # a pooled request would now wait 30 s
            started = time.monotonic()
            response = client.get("/health")
            elapsed = time.monotonic() - started
        finally:
            for conn in held:
                conn.close()
    assert response.status_code == 200 and response.json()["database"] == "ok"
    assert elapsed < 5, f"/health took {elapsed:.1f} s with the pool exhausted (29 s before)"


# --- the 500s, as classes ------------------------------------------------------------------

CALENDAR_EDGES = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
)
DATETIME_PARAMS = (
    ("/heatmap/h3", {"res": 6}, ("since", "until")),
    ("/heatmap/h3", {"res": 6, "format": "json"}, ("since", "until")),
    ("/heatmap/grids", {}, ("since", "until")),
    ("/hotspots", {"res": 6}, ("since", "until")),
    ("/hotspots/grids", {}, ("since", "until")),
    ("/hotspots/emerging", {"res": 6}, ("since", "until")),
    ("/hotspots/download", {"res": 6}, ("since", "until")),
    ("/incidents", {}, ("since", "until")),
    ("/tiles/heatmap/10/834/421.mvt", {}, ("since", "until")),
    ("/tiles/incidents/10/834/421.mvt", {}, ("since", "until")),
    ("/audit", {}, ("since",)),
    ("/map", {}, ("until",)),
    ("/areas/lookup", {"lon": 114.3, "lat": 30.59}, ("at",)),
)


def test_datetimes_at_the_edges_of_the_calendar_are_422_on_every_route(
    client: TestClient,
) -> None:
    seen = []
    for path, params, names in DATETIME_PARAMS:
        for name in names:
            for edge in CALENDAR_EDGES:
                response = client.get(path, params={**params, name: edge})
                body = problem(response)
                assert body["status"] == 422, (path, name, edge, body)
                assert "1900 to 2199" in body["detail"], body
                seen.append(path)
    assert len(seen) == 4 * sum(len(names) for _, _, names in DATETIME_PARAMS)
    # Open311 answers in its own error format: 400 with the specification's error list
    for name in ("start_date", "end_date"):
        for edge in CALENDAR_EDGES:
            response = client.get("/open311/v2/requests.json", params={name: edge})
            assert response.status_code == 400, (name, edge, response.text)
            assert "1900 to 2199" in response.json()[0]["description"]
    # OGC API Features takes its datetime as free text: the same rule applies
    for interval in ("0001-01-01T00:00:00Z/2020-01-01T00:00:00Z", "../9999-12-31T23:59:59-14:00"):
        response = client.get("/collections/heatmap-h3-res8/items", params={"datetime": interval})
        assert problem(response)["status"] == 400  # OGC routes: invalid parameters are 400
    # the years inside the range still work, at both ends
    for name, value in (("since", "1900-01-01T00:00:00Z"), ("until", "2199-12-31T23:59:59Z")):
        assert client.get("/heatmap/h3", params={"res": 6, name: value}).status_code == 200


def test_a_responder_fix_from_year_one_is_422(client: TestClient) -> None:
    fix = {"id": 1, "lon": 114.3, "lat": 30.59, "at": "0001-01-01T00:00:00+14:00"}
    response = client.post("/responders/positions", json={"positions": [fix]})
    assert problem(response)["status"] == 422


def test_the_calendar_edge_heatmap_keeps_the_connection_alive(
    live_server: str, role_keys: dict[str, str]
) -> None:
    url = urlsplit(live_server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(
            "GET",
            "/heatmap/h3?res=6&since=0001-01-01T00:00:00Z",
            headers={"X-API-Key": role_keys["analyst"]},
        )
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        assert first.status == 422 and sock is not None
        conn.request("GET", "/health")
        second = conn.getresponse()
        second.read()
        assert second.status == 200
        assert conn.sock is sock  # the same connection answered both
    finally:
        conn.close()


def _quadrangle_km2(minx: float, miny: float, maxx: float, maxy: float) -> float:
    """Closed-form area of a longitude/latitude box on the WGS84 ellipsoid (authalic
    latitude), an oracle independent of pyproj's geodesic polygons."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    e = math.sqrt(e2)

    def q(lat: float) -> float:
        s = math.sin(math.radians(lat))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return a * a * (1 - e2) / 2 * math.radians(maxx - minx) * (q(maxy) - q(miny)) / 1e6


@pytest.mark.parametrize(
    "box",
    [
        (-180, -90, 180, 90),
        (-180, -10, 180, 10),
        (-180, -90, -179, 90),
        (0, 89, 180, 90),
        (70, 15, 135, 55),
        (114.2, 30.5, 114.4, 30.7),
    ],
)
def test_bbox_area_is_the_true_area_on_the_ellipsoid(box: tuple[float, ...]) -> None:
    area = BBox(*box).area_km2()
    assert area == pytest.approx(_quadrangle_km2(*box), rel=1e-3)


def test_whole_world_and_degenerate_bboxes_are_422(client: TestClient) -> None:
    whole_world = "-180,-90,180,90"
    for path in ("/areas", "/incidents", "/responders", "/heatmap/h3"):
        body = problem(client.get(path, params={"bbox": whole_world}))
        assert body["status"] == 422 and "510,065,622 km²" in body["detail"], (path, body)
    # OGC API items take any box (a zoomed-out desktop GIS view): paging bounds the work
    world = client.get("/collections/grids/items", params={"bbox": whole_world, "limit": 5})
    assert world.status_code == 200 and world.json()["numberReturned"] == 5
    for degenerate, why in (
        ("-180,-1,180,1", "km²"),  # a band around the world: 44 million km², not 0
        ("170,-10,-170,10", "antimeridian"),
        ("114.3,30.5,114.3,30.6", "minx < maxx"),  # no width
        ("114.3,30.5,114.4,30.5", "miny < maxy"),  # no height
        ("nan,30.5,114.4,30.6", "minx < maxx"),
        ("114.3,30.5,inf,30.6", "minx < maxx"),
    ):
        body = problem(client.get("/incidents", params={"bbox": degenerate}))
        assert body["status"] == 422 and why in body["detail"], (degenerate, body)
    assert client.get("/incidents", params={"bbox": "114.2,30.5,114.4,30.7"}).status_code == 200

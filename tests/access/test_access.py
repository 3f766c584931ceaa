"""Who may see and change what: every route under every role, jurisdictions, privacy, audit."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import jwt
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, grid_point, problem

ROLES = ("admin", "dispatcher", "planner", "analyst", "grid_worker")


def _ids(client: TestClient, loaded_city: DemoCity) -> dict:
    lon, lat, code = grid_point(loaded_city)
    grid = client.get("/areas/lookup", params={"lon": lon, "lat": lat}).json()["grid"]
    version = next(
        v["id"]
        for v in client.get("/boundaries/versions").json()["data"]
        if v["status"] == "published"
    )
    return {"lon": lon, "lat": lat, "grid": grid["id"], "version": version}


def _csv(rows: list[dict]) -> dict:
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return {"file": ("f.csv", buffer.getvalue().encode(), "text/csv")}


# (method, path template, expected status per role: admin, dispatcher, planner, analyst,
#  grid_worker). "ok" means a 2xx; numbers are exact.
ROUTES = [
    ("GET", "/areas?level=district", ("ok", "ok", "ok", "ok", "ok")),
    ("GET", "/incidents?limit=5", ("ok", "ok", "ok", "ok", "ok")),
    ("GET", "/boundaries/versions", ("ok", "ok", "ok", "ok", 403)),
    ("GET", "/boundaries/versions/{version}/validation", ("ok", "ok", "ok", "ok", 403)),
    ("GET", "/boundaries/versions/{version}/export?format=csv", ("ok", 403, "ok", 403, 403)),
    ("GET", "/workload?version_id={version}", ("ok", 403, "ok", 403, 403)),
    ("GET", "/households?grid_id={grid}", ("ok", 403, 403, 403, 403)),
    ("GET", "/households/aggregate?level=community", ("ok", "ok", "ok", "ok", "ok")),
    ("GET", "/audit?limit=5", ("ok", 403, 403, 403, 403)),
    ("GET", "/map", ("ok", "ok", "ok", "ok", "ok")),
    ("POST", "/incidents", ("ok", "ok", 403, 403, 403)),
    ("POST", "/imports/households", ("ok", 403, 403, 403, "ok")),  # rows outside: rejected
    ("POST", "/imports/incidents", ("ok", "ok", 403, 403, 403)),
    ("POST", "/boundaries/versions/{version}/publish", (409, 403, 409, 403, 403)),
]


@pytest.mark.parametrize(
    ("method", "path", "expected"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_route_by_role(
    client: TestClient,
    loaded_city: DemoCity,
    role_keys: dict[str, str],
    method: str,
    path: str,
    expected: tuple,
) -> None:
    ids = _ids(client, loaded_city)
    url = path.format(**ids)
    for role, want in zip(ROLES, expected, strict=True):
        headers = as_role(role_keys, role)
        if method == "GET":
            response = client.get(url, headers=headers)
        elif url == "/incidents":
            response = client.post(
                url,
                headers=headers,
                json={"category": "sanitation", "location": {"lon": ids["lon"], "lat": ids["lat"]}},
            )
        elif url.startswith("/imports/"):
            rows = [
                {
                    "id": f"{role}-1",
                    "household_size": 2,
                    "category": "traffic",
                    "reported_at": "2026-01-05T10:00:00Z",
                    "lon": ids["lon"],
                    "lat": ids["lat"],
                }
            ]
            response = client.post(url, headers=headers, files=_csv(rows))
        else:
            response = client.post(
                url, headers=headers, json={"effective_from": "2026-01-01T00:00:00Z"}
            )
        if want == "ok":
            assert response.status_code < 300, (role, url, response.text[:300])
        else:
            assert response.status_code == want, (role, url, response.text[:300])
            problem(response)


def test_without_credentials_only_health_and_docs_answer(
    client: TestClient, loaded_city: DemoCity
) -> None:
    anonymous = {"X-API-Key": ""}
    for path in ("/health", "/openapi.json", "/docs"):
        assert client.get(path, headers=anonymous).status_code == 200, path
    for path in (
        "/areas",
        "/incidents",
        "/households/aggregate?res=8",
        "/audit",
        "/boundaries/versions",
        "/areas/lookup?lon=114.3&lat=30.59",
    ):
        response = client.get(path, headers=anonymous)
        body = problem(response)
        assert body["status"] == 401 and "WWW-Authenticate" in response.headers, path
    bad = client.get("/areas", headers={"X-API-Key": "gs_nothere_xxxxxxxx"})
    assert problem(bad)["status"] == 401
    assert problem(client.get("/areas", headers={"X-API-Key": "not-a-key"}))["status"] == 401


def test_a_browser_is_sent_to_sign_in(client: TestClient) -> None:
    response = client.get(
        "/map", headers={"X-API-Key": "", "Accept": "text/html"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/map"
    form = client.get("/login", headers={"X-API-Key": ""})
    token = form.text.split('name="login_token" value="')[1].split('"')[0]
    refused = client.post(
        "/login", data={"api_key": "gs_bad_key", "login_token": token}, headers={"X-API-Key": ""}
    )
    assert refused.status_code == 401 and "not valid" in refused.text


def test_cookie_signs_in_pages_but_writes_need_the_csrf_token(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    fresh = TestClient(client.app)
    form = fresh.get("/login")
    token = form.text.split('name="login_token" value="')[1].split('"')[0]
    done = fresh.post(
        "/login",
        data={"api_key": role_keys["dispatcher"], "next": "/map", "login_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "geo_session" in done.headers["set-cookie"]
    assert role_keys["dispatcher"] not in done.headers["set-cookie"]
    assert (
        "HttpOnly" in done.headers["set-cookie"]
        and "samesite=strict" in done.headers["set-cookie"].lower()
    )
    assert fresh.get("/map").status_code == 200
    write = fresh.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon, "lat": lat}}
    )
    assert problem(write)["status"] == 403  # no X-CSRF-Token (tests/security/test_pages.py)


def test_bearer_tokens(client: TestClient, role_keys: dict[str, str], settings) -> None:  # noqa: ANN001
    token = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_secret": role_keys["analyst"]},
        headers={"X-API-Key": ""},
    ).json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    bearer = {"X-API-Key": "", "Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/areas?level=district", headers=bearer).status_code == 200
    assert problem(client.get("/audit", headers=bearer))["status"] == 403
    # A key works as a bearer too (for GIS clients that can only send Authorization).
    as_bearer = {"X-API-Key": "", "Authorization": f"Bearer {role_keys['analyst']}"}
    assert client.get("/areas?level=district", headers=as_bearer).status_code == 200
    secret = client.app.state.jwt_secret
    claims = jwt.decode(
        token["access_token"], secret, algorithms=["HS256"], issuer=settings.auth.jwt_issuer
    )
    expired = jwt.encode(
        {**claims, "exp": datetime.now(UTC) - timedelta(seconds=5)}, secret, algorithm="HS256"
    )
    forged = jwt.encode({**claims, "role": "admin"}, "not-the-secret", algorithm="HS256")
    for bad in (expired, forged, "garbage"):
        response = client.get("/areas", headers={"X-API-Key": "", "Authorization": f"Bearer {bad}"})
        assert problem(response)["status"] == 401
    wrong = client.post("/auth/token", data={"grant_type": "password"}, headers={"X-API-Key": ""})
    assert problem(wrong)["status"] == 422
    nokey = client.post("/auth/token", headers={"X-API-Key": ""})
    assert problem(nokey)["status"] == 401


def test_jurisdiction_limits_reads_and_writes(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    busiest = loaded_city.households.grid_code.value_counts().index[0]
    grids = loaded_city.areas[loaded_city.areas.level == "grid"].set_index("code")
    community = grids.parent_code[busiest]
    inside = grids.geometry[busiest].representative_point()
    outside_code = next(c for c in grids.index if not c.startswith(community + "-"))
    outside = grids.geometry[outside_code].representative_point()
    headers = as_role(role_keys, "dispatcher@community")

    areas = client.get("/areas", headers=headers).json()["features"]
    codes = {f["properties"]["code"] for f in areas}
    assert community in codes and all(c.startswith(community) for c in codes)
    ok = client.get("/areas/lookup", params={"lon": inside.x, "lat": inside.y}, headers=headers)
    assert ok.status_code == 200
    far = client.get("/areas/lookup", params={"lon": outside.x, "lat": outside.y}, headers=headers)
    assert problem(far)["status"] == 403
    listed = client.get("/incidents", params={"limit": 1000}, headers=headers).json()
    assert listed["features"] and all(
        f["properties"]["grid"]["code"].startswith(community + "-") for f in listed["features"]
    )
    created = client.post(
        "/incidents",
        headers=headers,
        json={"category": "traffic", "location": {"lon": inside.x, "lat": inside.y}},
    )
    assert created.status_code == 201
    refused = client.post(
        "/incidents",
        headers=headers,
        json={"category": "traffic", "location": {"lon": outside.x, "lat": outside.y}},
    )
    assert problem(refused)["status"] == 403
    other = client.get(
        "/incidents",
        params={"limit": 1},
        headers=as_role(role_keys, "admin"),
    ).json()["features"]
    foreign = next(
        f
        for f in client.get("/incidents", params={"limit": 1000}).json()["features"]
        if not f["properties"]["grid"]["code"].startswith(community + "-")
    )
    # outside the area answers as a missing id does (no probing across areas)
    assert problem(client.get(f"/incidents/{foreign['id']}", headers=headers))["status"] == 404
    assert other


def test_analysts_see_no_descriptions_dispatchers_do(
    client: TestClient, role_keys: dict[str, str]
) -> None:
    analyst = client.get(
        "/incidents", params={"limit": 50}, headers=as_role(role_keys, "analyst")
    ).json()["features"]
    dispatcher = client.get(
        "/incidents", params={"limit": 50}, headers=as_role(role_keys, "dispatcher")
    ).json()["features"]
    assert all(f["properties"]["description"] is None for f in analyst)
    assert any(f["properties"]["description"] for f in dispatcher)
    one = client.get(f"/incidents/{analyst[0]['id']}", headers=as_role(role_keys, "analyst"))
    assert one.json()["description"] is None


def test_household_rows_only_for_admin_and_the_grids_own_worker(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    busiest = loaded_city.households.grid_code.value_counts().index[0]
    grids = client.get("/areas", params={"level": "grid"}).json()["features"]
    by_code = {f["properties"]["code"]: f["id"] for f in grids}
    own, other = by_code[busiest], next(i for c, i in by_code.items() if c != busiest)
    worker = as_role(role_keys, "grid_worker")
    rows = client.get("/households", params={"grid_id": own}, headers=worker).json()
    expected = int((loaded_city.households.grid_code == busiest).sum())
    assert len(rows["data"]) == min(expected, 100)
    assert set(rows["data"][0]) == {
        "id",
        "lon",
        "lat",
        "address",  # where the worker knocks (migration 0034); the grid's worker and admins
        "household_size",
        "elderly_living_alone",
        "needs_assistance",
    }
    assert (
        problem(client.get("/households", params={"grid_id": other}, headers=worker))["status"]
        == 403
    )
    admin = client.get("/households", params={"grid_id": other}).json()
    assert admin["grid_id"] == other


def test_no_aggregate_path_shows_exact_small_counts(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, settings
) -> None:  # noqa: ANN001
    """Aggregates for an analyst are published by disclosure control: multiples of the base
    within base-1 of the truth, hidden per record set when that is 0; admins see exact counts."""
    base = settings.auth.min_cell_count
    analyst = as_role(role_keys, "analyst")
    paths = [
        ("/households/aggregate", {"res": 10}),
        ("/households/aggregate", {"res": 9}),
        ("/households/aggregate", {"level": "grid"}),
    ]
    seen_hidden = seen_small_shown = False
    for path, params in paths:
        shown = {
            f["id"]: f["properties"]
            for f in client.get(path, params=params, headers=analyst).json()["features"]
        }
        exact = {
            f["id"]: f["properties"] for f in client.get(path, params=params).json()["features"]
        }
        assert shown.keys() == exact.keys()
        for fid, props in shown.items():
            for key in ("households", "residents", "rental_units"):
                value, true = props[key], exact[fid][key]
                assert true is not None  # admin: exact counts
                if value is None:
                    # residents go with their households (one record set), whatever their sum
                    anchor = "households" if key == "residents" else key
                    assert key in props["suppressed"], (path, params, props)
                    assert exact[fid][anchor] < base, (path, params, props)
                    seen_hidden = True
                else:
                    assert value % base == 0 and abs(value - true) < base, (path, params, props)
                    seen_small_shown |= 0 < true < base
            if props["households"] is None:  # hidden per record set, never field by field
                assert props["residents"] is None
                assert {"households", "residents"} <= set(props["suppressed"])
    assert seen_hidden and seen_small_shown, "the test data must contain small cells"
    # Area detail: a small grid shows what /households/aggregate shows for it, not the truth.
    small = loaded_city.households.grid_code.value_counts()
    assert (small < base).any(), "the demo city must have a grid with few households"
    small_code = small[small < base].index[0]
    grids = client.get("/areas", params={"level": "grid"}).json()["features"]
    gid = next(f["id"] for f in grids if f["properties"]["code"] == small_code)
    stats = client.get(f"/areas/{gid}", headers=analyst).json()["properties"]["stats"]
    by_level = client.get(
        "/households/aggregate", params={"level": "grid"}, headers=analyst
    ).json()["features"]
    same_grid = next(f["properties"] for f in by_level if f["id"] == gid)
    assert stats["households"] in (None, base)
    assert stats["households"] == same_grid["households"]
    assert stats["residents"] == same_grid["residents"]
    exact = client.get(f"/areas/{gid}").json()["properties"]["stats"]
    assert exact["households"] == small[small_code]


def test_public_layers_are_off_by_default_and_coarse_when_on(
    settings, loaded_city: DemoCity
) -> None:  # noqa: ANN001
    from geo_service.api.app import create_app

    public = settings.model_copy(deep=True)
    public.auth.public_layers = True
    with TestClient(create_app(public)) as anonymous:
        coarse = anonymous.get("/households/aggregate", params={"res": 8})
        assert coarse.status_code == 200
        for feature in coarse.json()["features"]:
            value = feature["properties"]["households"]
            assert value is None or value % settings.auth.min_cell_count == 0 < value
        assert problem(anonymous.get("/households/aggregate", params={"res": 9}))["status"] == 422
        assert (
            problem(anonymous.get("/households/aggregate", params={"level": "grid"}))["status"]
            == 403
        )
        assert problem(anonymous.get("/households", params={"grid_id": 1}))["status"] == 401
        assert problem(anonymous.get("/incidents"))["status"] == 401


def test_every_write_is_audited_and_the_log_cannot_be_changed(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict[str, str]
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    since = datetime.now(UTC).isoformat()
    made = client.post(
        "/incidents",
        headers=as_role(role_keys, "dispatcher"),
        json={"category": "traffic", "location": {"lon": lon, "lat": lat}},
    )
    entries = client.get("/audit", params={"entity": "incident", "since": since}).json()["data"]
    mine = [e for e in entries if e["entity_id"] == made.json()["id"]]
    assert len(mine) == 1 and mine[0]["who"] == "test-dispatcher (dispatcher)"
    assert mine[0]["diff"]["after"]["category"] == "traffic"
    # a naive time is local time (issue 19); an ISO week date is no time at all
    assert problem(client.get("/audit", params={"since": "2026-W01-4"}))["status"] == 422
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)("/audit").status_code == 405
    with pytest.raises(Exception, match="cannot be changed"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET who = 'someone else'"))
    with pytest.raises(Exception, match="cannot be deleted"):
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))

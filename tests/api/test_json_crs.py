"""``crs=wgs84|gcj02|bd09`` on the JSON answers that carry lon/lat outside GeoJSON, and on
the inputs where a client sends coordinates (issue 19): every position answered is the WGS84
answer's position through ``geo.crs.from_wgs84`` and nothing else changes; coordinates sent
in GCJ-02 or BD-09 are stored as WGS84 within 1 m; an unknown crs is a 422 problem (Open311:
its 400 error list) and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.geo.crs import from_wgs84
from tests.conftest import as_role, grid_point, problem

GEOD = Geod(ellps="WGS84")
Rows = Callable[[Any], list[dict[str, Any]]]


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture
def held(client: TestClient, engine: Engine) -> Iterator[None]:
    """The service's clock held just after the newest position fix (the responders fresh
    however long the session has run): ages and lateness do not move between two reads."""
    with engine.connect() as conn:
        now = conn.execute(
            text("SELECT max(position_at) + interval '1 second' FROM responders")
        ).scalar_one()
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    clock.set(now)
    try:
        yield
    finally:
        clock.release()


def _an_open_incident(client: TestClient) -> str:
    items = client.get("/console/incidents", params={"limit": 1}).json()["items"]
    assert items, "the demo city has open incidents"
    return str(items[0]["id"])


def _a_grid_with_households(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT a.id FROM areas a JOIN households h "
                    "ON ST_Contains(a.geom, h.location) WHERE a.level = 'grid' "
                    "GROUP BY a.id ORDER BY count(*) DESC LIMIT 1"
                )
            ).scalar_one()
        )


def _assert_rows_converted(
    plain: list[dict[str, Any]],
    shifted: list[dict[str, Any]],
    name: str,
    lon: str,
    lat: str,
    moving: tuple[str, ...] = (),
) -> None:
    placed = [r for r in plain if r.get(lon) is not None]
    assert placed, "the answer has positions to convert"
    assert len(plain) == len(shifted)
    x, y = from_wgs84([r[lon] for r in placed], [r[lat] for r in placed], name)
    got = [r for r in shifted if r.get(lon) is not None]
    np.testing.assert_allclose([r[lon] for r in got], x, rtol=0, atol=1e-9)
    np.testing.assert_allclose([r[lat] for r in got], y, rtol=0, atol=1e-9)
    # the shift is real in Wuhan (hundreds of metres) and nothing but positions changes
    assert _metres(placed[0][lon], placed[0][lat], got[0][lon], got[0][lat]) > 300
    for a, b in zip(plain, shifted, strict=True):
        assert {k: v for k, v in a.items() if k not in (lon, lat, *moving)} == {
            k: v for k, v in b.items() if k not in (lon, lat, *moving)
        }


@pytest.mark.parametrize("name", ["gcj02", "bd09"])
def test_json_answers_give_lon_lat_in_the_crs_asked_for(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    held: None,
    name: str,
) -> None:
    incident = _an_open_incident(client)
    grid_id = _a_grid_with_households(engine)
    lon, lat, _ = grid_point(loaded_city)
    cases: list[tuple[str, dict[str, Any], Rows, str]] = [
        ("/console/incidents", {"limit": 50}, lambda b: b["items"], "dispatcher"),
        (f"/incidents/{incident}", {}, lambda b: [b], "admin"),
        (f"/incidents/{incident}/candidates", {"k": 5}, lambda b: b["candidates"], "dispatcher"),
        ("/households", {"grid_id": grid_id}, lambda b: b["data"], "admin"),
        ("/households/visits", {"grid_id": grid_id}, lambda b: b["data"], "admin"),
    ]
    for path, params, rows, role in cases:
        headers = as_role(role_keys, role)
        plain = client.get(path, params=params, headers=headers)
        shifted = client.get(path, params={**params, "crs": name}, headers=headers)
        assert plain.status_code == shifted.status_code == 200, (path, shifted.text[:300])
        _assert_rows_converted(rows(plain.json()), rows(shifted.json()), name, "lon", "lat")
        again = client.get(path, params={**params, "crs": "wgs84"}, headers=headers)
        assert rows(again.json()) == rows(plain.json())  # nothing was converted in place
    # Open311: lat/long, in JSON and in XML
    plain = client.get("/open311/v2/requests.json").json()
    shifted = client.get("/open311/v2/requests.json", params={"crs": name}).json()
    _assert_rows_converted(plain, shifted, name, "long", "lat")
    rid = plain[0]["service_request_id"]
    (one,) = client.get(f"/open311/v2/requests/{rid}.json", params={"crs": name}).json()
    assert (one["long"], one["lat"]) == (shifted[0]["long"], shifted[0]["lat"])
    xml = client.get(f"/open311/v2/requests/{rid}.xml", params={"crs": name}).text
    assert f"<long>{one['long']}</long>" in xml
    # nearest: the point is asked in the crs, and the candidates are answered in it
    (gx,), (gy,) = from_wgs84([lon], [lat], name)
    wgs = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 3}).json()
    got = client.get(
        "/responders/nearest", params={"lon": gx, "lat": gy, "k": 3, "crs": name}
    ).json()
    assert [c["id"] for c in got["candidates"]] == [c["id"] for c in wgs["candidates"]]
    for a, b in zip(wgs["candidates"], got["candidates"], strict=True):
        assert abs(a["distance_m"] - b["distance_m"]) < 1.0
    _assert_rows_converted(
        [{k: v for k, v in c.items() if k != "distance_m"} for c in wgs["candidates"]],
        [{k: v for k, v in c.items() if k != "distance_m"} for c in got["candidates"]],
        name,
        "lon",
        "lat",
    )


def test_public_open311_positions_stay_coarse_in_gcj02(
    client: TestClient, loaded_city: DemoCity, settings: Any
) -> None:
    from geo_service.api.app import create_app

    public = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"open311_public_read": True})}
    )
    with TestClient(create_app(public)) as anonymous:
        plain = anonymous.get("/open311/v2/requests.json").json()
        shifted = anonymous.get("/open311/v2/requests.json", params={"crs": "gcj02"}).json()
    assert plain and all(r["description"] is None for r in plain)
    for a, b in zip(plain, shifted, strict=True):
        assert round(b["lat"], 3) == b["lat"] and round(b["long"], 3) == b["long"]
        (x,), (y,) = from_wgs84([a["long"]], [a["lat"]], "gcj02")
        assert abs(b["long"] - x) <= 0.0005 and abs(b["lat"] - y) <= 0.0005


def _stored(engine: Engine, sql: str, **params: Any) -> tuple[float, float]:
    with engine.connect() as conn:
        row = conn.execute(text(sql), params).one()
    return float(row[0]), float(row[1])


@pytest.mark.parametrize("name", ["gcj02", "bd09"])
def test_coordinates_sent_in_gcj02_or_bd09_are_stored_in_wgs84_within_a_metre(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    engine: Engine,
    responders_restored: None,
    name: str,
) -> None:
    lon, lat, code = grid_point(loaded_city)
    (gx,), (gy,) = from_wgs84([lon], [lat], name)
    assert _metres(lon, lat, gx, gy) > 300  # what an unconverted point would be off by
    by_incident = "SELECT ST_X(location), ST_Y(location) FROM incidents WHERE id = :id"
    # POST /incidents, as GeoJSON and as lon/lat
    for location in ({"type": "Point", "coordinates": [gx, gy]}, {"lon": gx, "lat": gy}):
        made = client.post(
            "/incidents",
            json={"category": "facilities", "crs": name, "location": location},
        )
        assert made.status_code == 201, made.text
        assert made.json()["grid"]["code"] == code
        x, y = _stored(engine, by_incident, id=made.json()["id"])
        assert _metres(lon, lat, x, y) < 1.0
        # read back in the crs it was sent in: the client's own point
        back = client.get(f"/incidents/{made.json()['id']}", params={"crs": name}).json()
        assert _metres(gx, gy, back["lon"], back["lat"]) < 1.0
    # Open311 POST, the crs as a form field (an extension)
    form = {
        "api_key": role_keys["dispatcher"],
        "service_code": "sanitation",
        "lat": str(gy),
        "long": str(gx),
        "crs": name,
    }
    filed = TestClient(client.app).post("/open311/v2/requests.json", data=form)
    assert filed.status_code == 201, filed.text
    rid = filed.json()[0]["service_request_id"]
    x, y = _stored(engine, by_incident, id=rid)
    assert _metres(lon, lat, x, y) < 1.0
    (read,) = client.get(f"/open311/v2/requests/{rid}.json", params={"crs": name}).json()
    assert _metres(gx, gy, read["long"], read["lat"]) < 1.0
    # a responder's position
    rid2 = client.get("/responders").json()["features"][0]["id"]
    fix = {"id": rid2, "lon": gx, "lat": gy, "at": datetime.now(UTC).isoformat()}
    sent = client.post(
        "/responders/positions",
        json={"crs": name, "positions": [fix]},
        headers=as_role(role_keys, "admin"),
    )
    assert sent.status_code == 200 and sent.json()["updated"] == 1, sent.text
    x, y = _stored(
        engine, "SELECT ST_X(position), ST_Y(position) FROM responders WHERE id = :id", id=rid2
    )
    assert _metres(lon, lat, x, y) < 1.0


def test_an_unknown_crs_is_refused_and_nothing_is_written(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM incidents")).scalar_one())

    def positions() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT id, position_at FROM responders")).all())

    before, fixes = count(), positions()
    for bad in ("epsg:3857", "GCJ02x", ""):
        body = {"category": "facilities", "crs": bad, "location": {"lon": lon, "lat": lat}}
        assert problem(client.post("/incidents", json=body))["status"] == 422
        form = {
            "api_key": role_keys["dispatcher"],
            "service_code": "sanitation",
            "lat": str(lat),
            "long": str(lon),
            "crs": bad or "none",
        }
        refused = TestClient(client.app).post("/open311/v2/requests.json", data=form)
        assert refused.status_code == 400, refused.text
        (error,) = refused.json()
        assert error["code"] == 400 and "crs" in error["description"]
        rid = client.get("/responders").json()["features"][0]["id"]
        fix = {"id": rid, "lon": lon, "lat": lat, "at": datetime.now(UTC).isoformat()}
        sent = client.post("/responders/positions", json={"crs": bad, "positions": [fix]})
        assert problem(sent)["status"] == 422
    assert count() == before and positions() == fixes
    incident = _an_open_incident(client)
    for path in (
        "/console/incidents",
        f"/incidents/{incident}",
        f"/incidents/{incident}/candidates",
        "/households?grid_id=1",
        "/households/visits?grid_id=1",
        f"/responders/nearest?lon={lon}&lat={lat}",
    ):
        body = problem(client.get(path, params={"crs": "wgs-84x"}))
        assert body["status"] == 422 and "crs" in str(body), path
    refused = client.get("/open311/v2/requests.json", params={"crs": "mars"})
    assert refused.status_code == 400 and refused.json()[0]["code"] == 400
    xml = client.get("/open311/v2/requests.xml", params={"crs": "mars"})
    assert xml.status_code == 400 and "<errors>" in xml.text


def test_the_console_stream_sends_positions_in_the_crs_asked_for(
    client: TestClient, loaded_city: DemoCity
) -> None:
    from types import SimpleNamespace

    from geo_service.api.routes.console import _tick
    from geo_service.services.access.auth import Principal
    from geo_service.services.access.scope import Scope
    from geo_service.services.dispatch.console import ConsoleFeed

    def first_events(crs: str) -> dict[str, list[dict[str, Any]]]:
        """The first tick of a new stream (every responder) and, from a cursor an hour back,
        the incidents changed since, as the browser reads them."""
        request = SimpleNamespace(app=client.app)
        scope = Scope(Principal(user_id=0, name="stream-test", role="dispatcher"))
        since = datetime.now(UTC).replace(year=2000)
        feed = ConsoleFeed(scope=scope, stale_s=10**9, since=since)
        text_events = _tick(request, feed, crs).decode().split("\n\n")  # type: ignore[arg-type]
        changed: dict[str, list[dict[str, Any]]] = {"incidents": [], "responders": []}
        for block in text_events:  # events come in batches: every batch's changed rows
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if lines.get("event") in changed:
                changed[lines["event"]] += json.loads(lines["data"])["changed"]
        return changed

    plain, shifted = first_events("wgs84"), first_events("gcj02")
    for name in ("incidents", "responders"):
        assert plain[name], name
        # two streams, two ticks: what is counted from the clock moves between them
        moving = ("late_s", "position_age_s", "stale")
        _assert_rows_converted(plain[name], shifted[name], "gcj02", "lon", "lat", moving)
